"""Monitoring of workflow processes (WF-8): who may monitor, the instance list's filters, an
instance's state (node states for the diagram, timeline, variables, audit events) and the
statistics of a workflow (started, completed, average and p95 duration per task, overdue counts),
computed by PostgreSQL aggregates.

Staff actions (cancel, retry a failed service task, move a token) are workflows.services' own;
the monitoring admin (workflows/admin_monitoring.py) calls them.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass

from django.db.models import (
    Avg,
    CharField,
    Count,
    DateTimeField,
    Exists,
    F,
    FloatField,
    Func,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Value,
)
from django.db.models.aggregates import Aggregate
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, TruncDate
from django.utils import timezone
from viewflow.workflow.models import Process, Task
from viewflow.workflow.status import PROCESS, STATUS

from audit.models import AuditEvent
from metadata.models import Definition
from rbac import services as rbac
from workflows import runtime

#: The rbac operation of workflow monitoring (tenant admins hold every operation).
MONITOR = "workflows.process.monitor"
KIND = "workflow"
HUMAN = "HUMAN"
#: Statuses of a task that still holds a token: open, or failed and waiting for a retry.
HOLDING = (*runtime.OPEN, STATUS.ERROR)
#: The instance list's status filter: viewflow's process statuses, and running with a failed task.
FAILED = "FAILED"
DAYS = 30


def may_monitor(user) -> bool:
    """Whether `user` may open the monitoring pages and act on processes (staff with MONITOR)."""
    return bool(user is not None and user.is_authenticated and user.is_staff and rbac.check(user, MONITOR))


# ---------------------------------------------------------------- definitions and their flows


def definitions(key: str = "") -> QuerySet:
    """The workflow versions that may have run (published or archived), by key and version."""
    queryset = Definition.objects.filter(kind=KIND, status__in=[Definition.Status.PUBLISHED,
                                                                 Definition.Status.ARCHIVED])
    return (queryset.filter(key=key) if key else queryset).order_by("key", "version")


def flow_ref(definition) -> str:
    """The `flow_class` viewflow stores on the processes of `definition` (workflows.runtime names it)."""
    return f"workflows/flows.{runtime.class_name(definition)}"


def workflow_choices() -> list[tuple[str, str]]:
    """(key, label) of every workflow that may have instances, its latest label."""
    labels = {definition.key: definition.body.get("label") or definition.key for definition in definitions()}
    return sorted(labels.items(), key=lambda item: str(item[1]).lower())


def node_choices(key: str) -> list[tuple[str, str]]:
    """(node id, label) of the user tasks, service tasks, timers and call activities of `key`'s versions."""
    nodes = {}
    for definition in definitions(key):
        for node in definition.body["nodes"]:
            if node["type"] not in ("start", "end", "exclusive_gateway", "parallel_gateway"):
                nodes[node["id"]] = node.get("label") or node["id"]
    return sorted(nodes.items(), key=lambda item: str(item[1]).lower())


# ---------------------------------------------------------------- the instance list


@dataclass
class InstanceFilter:
    """What the instance list is narrowed to; empty values filter nothing."""

    workflow: str = ""
    version: int | None = None
    status: str = ""
    started_from: datetime.date | None = None
    started_until: datetime.date | None = None
    record: int | None = None
    task: str = ""


def _node_of_task(node: str) -> Q:
    return Q(flow_task__endswith=f".{runtime.NODE_PREFIX}{node}")


def instances(filters: InstanceFilter) -> QuerySet:
    """Processes of workflows matching `filters`, newest first, with their open tasks
    (`holding_tasks`, owners joined) and records prefetched: a page costs a few queries, whatever its size."""
    processes = Process.objects.filter(flow_class__startswith="workflows/flows.")
    if filters.workflow:
        versions = definitions(filters.workflow)
        if filters.version is not None:
            versions = versions.filter(version=filters.version)
        processes = processes.filter(flow_class__in=[flow_ref(definition) for definition in versions])
    if filters.status == FAILED:
        processes = processes.filter(status=PROCESS.NEW).filter(
            Exists(Task.objects.filter(process=OuterRef("pk"), status=STATUS.ERROR)))
    elif filters.status:
        processes = processes.filter(status=filters.status)
    if filters.started_from:
        processes = processes.filter(created__date__gte=filters.started_from)
    if filters.started_until:
        processes = processes.filter(created__date__lte=filters.started_until)
    if filters.record is not None:
        processes = processes.filter(artifact_object_id=filters.record)
    if filters.task:
        processes = processes.filter(Exists(Task.objects.filter(
            _node_of_task(filters.task), process=OuterRef("pk"), status__in=HOLDING)))
    holding = Task.objects.filter(status__in=HOLDING).select_related("owner").order_by("created", "pk")
    return processes.prefetch_related(Prefetch("task_set", queryset=holding, to_attr="holding_tasks")).order_by(
        "-created", "-pk")


def attach_records(processes) -> list:
    """Set `record` on each process (None: no record, or gone; one query per entity of the page) and
    `queue_label` on its holding tasks."""
    from dynamic_models import runtime as dm_runtime
    from workflows.assignment import label_queues

    processes = list(processes)
    wanted: dict[str, set] = {}
    for process in processes:
        entity = process.flow_class.body.get("entity") if process.flow_class is not None else None
        if entity and process.artifact_object_id:
            wanted.setdefault(entity, set()).add(process.artifact_object_id)
    found = {(entity, record.pk): record for entity, ids in wanted.items()
             for record in dm_runtime.get_model(entity).objects.filter(pk__in=ids)}
    for process in processes:
        entity = process.flow_class.body.get("entity") if process.flow_class is not None else None
        process.record = found.get((entity, process.artifact_object_id))
    label_queues(task for process in processes for task in getattr(process, "holding_tasks", ()))
    return processes


def status_choices() -> list[tuple[str, str]]:
    from django.utils.translation import gettext as _

    return [(PROCESS.NEW, _("Running")), (FAILED, _("Running, with a failed task")), (PROCESS.DONE, _("Done")),
            (PROCESS.CANCELED, _("Cancelled"))]


# ---------------------------------------------------------------- one instance


def node_states(history: list[dict]) -> dict[str, str]:
    """Each node's state from the process's tasks (workflows.services.history): "active" (a task
    is open), "failed" (a failed task waits for a retry), "done"; nodes not named are pending."""
    states = {}
    rank = {"done": 0, "failed": 1, "active": 2}
    for step in history:
        if not step["node"] or step["status"] in (STATUS.CANCELED, STATUS.REVIVED):
            continue
        state = ("active" if step["status"] in (*runtime.OPEN, STATUS.SCHEDULED)
                 else "failed" if step["status"] == STATUS.ERROR else "done" if step["status"] == STATUS.DONE else "")
        if state and rank[state] >= rank.get(states.get(step["node"]), -1):
            states[step["node"]] = state
    return states


def audit_trail(process, history: list[dict]) -> list[dict]:
    """The audit events of the process and of its tasks (workflows.services.history), oldest first,
    each with its action in words, what it is about (the process, or a task by its title) and its data in words."""
    from audit.actions import audit_action_registry

    titles = {str(step["task"].pk): step["title"] or step["node"] for step in history}
    events = AuditEvent.objects.filter(
        Q(target_type="viewflow.process", target_id=str(process.pk))
        | Q(target_type="viewflow.task", target_id__in=list(titles)),
        created_at__gte=process.created,  # The trail outlives rows: an id used again names new events only.
    ).order_by("seq")
    return [{"event": event, "action": audit_action_registry.describe(event.action),
             "about": titles.get(event.target_id, "") if event.target_type == "viewflow.task" else "",
             "details": readable(event.data or {})}
            for event in events]


#: Keys of process variables and event data that hold a user's id.
USER_KEYS = frozenset({"actor", "started_by", "owner", "delegated_from", "user"})


def readable(data: dict) -> list[tuple[str, str]]:
    """(key, value in words) of process variables or an event's data, for people: user ids as
    usernames, queues by their names, texts without quotes, nothing as "-"."""
    from django.contrib.auth import get_user_model

    from workflows.assignment import queue_labels

    ids = {value for key, value in data.items() if key in USER_KEYS and isinstance(value, int)}
    names = dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username")) if ids else {}
    queues = queue_labels(value for key, value in data.items() if key == "queue" and isinstance(value, str))
    shown = []
    for key, value in sorted(data.items()):
        if value is None or value == "":
            text = "-"
        elif key in USER_KEYS and isinstance(value, int):
            text = names.get(value, f"#{value}")
        elif key == "queue" and isinstance(value, str):
            text = queues[value]
        elif isinstance(value, str):
            text = value
        else:
            text = json.dumps(value, ensure_ascii=False, default=str)
        shown.append((key, text))
    return shown


def move_targets(process) -> list[tuple[str, str]]:
    """(node id, label) of the nodes a token of `process` may be moved to (any but the start)."""
    body = process.flow_class.body
    return [(node["id"], node.get("label") or node["id"]) for node in body["nodes"] if node["type"] != "start"]


# ---------------------------------------------------------------- statistics


class Percentile(Aggregate):
    """PostgreSQL's continuous percentile of an ordered set (0 < fraction < 1)."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


def _seconds(expression):
    return Func(expression, template="EXTRACT(EPOCH FROM %(expressions)s)", output_field=FloatField())


def _node_expression():
    """The node id of a task row, from its flow_task reference ("...F_acme_x_v1_ab12cd34.n_manager")."""
    return Func(F("flow_task"), Value(r"^.*\." + runtime.NODE_PREFIX), Value(""), function="regexp_replace",
                output_field=CharField())


def statistics(key: str, *, now: datetime.datetime | None = None, days: int = DAYS) -> dict:
    """The figures of workflow `key` (every version): process counts, started and completed per
    day over the last `days`, and per user task the count, average and p95 duration (seconds) of
    finished tasks and the open tasks past their deadline."""
    now = now or timezone.now()
    versions = list(definitions(key))
    refs = [flow_ref(definition) for definition in versions]
    processes = Process.objects.filter(flow_class__in=refs)
    totals = processes.aggregate(
        started=Count("pk"), completed=Count("pk", filter=Q(status=PROCESS.DONE)),
        cancelled=Count("pk", filter=Q(status=PROCESS.CANCELED)), running=Count("pk", filter=Q(status=PROCESS.NEW)))
    since = timezone.localdate(now) - datetime.timedelta(days=days - 1)
    started = dict(processes.filter(created__date__gte=since).annotate(day=TruncDate("created"))
                   .values("day").annotate(n=Count("pk")).values_list("day", "n"))
    completed = dict(processes.filter(status=PROCESS.DONE, finished__date__gte=since)
                     .annotate(day=TruncDate("finished")).values("day").annotate(n=Count("pk")).values_list("day", "n"))
    user_tasks = Task.objects.filter(process__flow_class__in=refs, flow_task_type=HUMAN).annotate(
        node=_node_expression())
    durations = {row["node"]: row for row in user_tasks.filter(status=STATUS.DONE, finished__isnull=False)
                 .values("node").annotate(count=Count("pk"), average=Avg(_seconds(F("finished") - F("created"))),
                                          p95=Percentile(_seconds(F("finished") - F("created")), 0.95))}
    deadline = Cast(KeyTextTransform("expire_at", KeyTransform("deadline", "data")), DateTimeField())
    overdue = dict(user_tasks.filter(status__in=runtime.OPEN).annotate(deadline=deadline)
                   .filter(Q(deadline__lt=now) | Q(data__escalated=True))
                   .values("node").annotate(n=Count("pk")).values_list("node", "n"))
    labels = {}
    for definition in versions:
        labels.update({node["id"]: node.get("label") or node["id"] for node in definition.body["nodes"]
                       if node["type"] == "user_task"})
    days_list = [since + datetime.timedelta(days=offset) for offset in range(days)]
    return {
        "key": key, "label": versions[-1].body.get("label", key) if versions else key, **totals,
        "days": [day.isoformat() for day in days_list],
        "started_per_day": [started.get(day, 0) for day in days_list],
        "completed_per_day": [completed.get(day, 0) for day in days_list],
        "tasks": [{"node": node, "label": label, "count": durations.get(node, {}).get("count", 0),
                   "average": durations.get(node, {}).get("average"), "p95": durations.get(node, {}).get("p95"),
                   "overdue": overdue.get(node, 0)} for node, label in labels.items()],
    }
