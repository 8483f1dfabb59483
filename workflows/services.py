"""The workflow services (WF-2..WF-5, WF-8): start, complete, claim, reassign, delegate, escalate,
cancel, retry, move a token, timers and deadlines, the inbox and notifications.

Views, admin, API, commands and Celery tasks call these. Every step runs under viewflow's
process lock (SELECT ... FOR UPDATE on the process row) and is audited; signals go out when
the transaction commits.
"""

from __future__ import annotations

import datetime
import logging
from contextlib import contextmanager

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from viewflow.workflow.context import Context
from viewflow.workflow.models import Process, Task
from viewflow.workflow.status import PROCESS, STATUS
from viewflow.workflow.token import Token

from audit import services as audit
from workflows import audit_actions, context, flows, monitoring, runtime, signals, timers, validation
from workflows.assignment import assign, may_complete, queue_members, queues_of, task_users
from workflows.context import StepContext, system_user
from workflows.exceptions import WorkflowError
from workflows.models import Delegation, Notification, TaskDecision

logger = logging.getLogger(__name__)

HUMAN = "HUMAN"
INBOX_KINDS = ("mine", "claimable", "delegated", "done")


# ---------------------------------------------------------------- links and notifications


def task_link(task) -> str:
    """The task's page in the end-user inbox ("" where no URLconf has the inbox)."""
    try:
        return reverse("workflows:task", args=[task.pk])
    except NoReverseMatch:
        return ""


def process_link(process) -> str:
    try:
        return reverse("workflows:process", args=[process.pk])
    except NoReverseMatch:
        return ""


def notify(users, *, kind: str, text: str, link: str = "") -> list[Notification]:
    """Create in-app notifications; `signals.notified` lets other channels (email) deliver them on commit."""
    created = Notification.objects.bulk_create(
        [Notification(user=user, kind=kind, text=text[:5000], link=link) for user in {u.pk: u for u in users}.values()])
    for notification in created:
        transaction.on_commit(lambda n=notification: signals.notified.send(sender=Notification, notification=n))
    return created


def recipients(to: dict, step: StepContext) -> list:
    """The users a notification goes to: `{"field": user field}` of the record, or an assignment."""
    if "field" in to:
        user = context.user(getattr(step.record, f"{to['field']}_id", None)) if step.record is not None else None
        return [user] if user else []
    assignee = runtime.resolve_assignment(to, step, committee=True)
    return list(assignee.users) or list(queue_members(assignee.queue))


# ---------------------------------------------------------------- start


def start(key: str, record=None, *, user=None, variables: dict | None = None) -> Process:
    """Start the published version of workflow `key` on `record`, as `user` (None: by itself).

    Service tasks that fail leave their task in ERROR (staff retry it); the start itself commits.
    :raises WorkflowError: no published workflow `key`, or a task found nobody to assign.
    """
    flow = flows.published_flow(key)
    if flow is None:
        raise WorkflowError(_("No published workflow %(key)r.") % {"key": key}, code="unknown_workflow")
    return runtime.start_process(flow, record, user=user, variables=variables)


def _workflows_started_by(matches) -> list[str]:
    from metadata import services as metadata

    return [key for key, definition in sorted(metadata.published_bodies("workflow").items())
            if any(node["type"] == "start" and matches(node.get("trigger") or {}, definition.body)
                   for node in definition.body["nodes"])]


def start_for_form(form_key: str, record, *, user=None) -> list[Process]:
    """Start every published workflow whose start event waits for a submission of `form_key`."""
    keys = _workflows_started_by(lambda trigger, body: trigger.get("form") == form_key)
    return [process for key in keys if (process := _start_safely(key, record, user)) is not None]


def start_for_record(event: str, record, *, user=None) -> list[Process]:
    """Start every published workflow whose start event waits for `event` ("created"/"updated") of
    `record`'s entity and whose `when` condition holds. Writes of workflows themselves start nothing."""
    from lowcode.expressions import compile_expression

    if user is not None and user.username == context.SYSTEM_USERNAME:
        return []
    entity = record.lowcode_entity["key"]
    expression_context = StepContext(process=None, node={}, record=record, actor=user).expression_context()

    def matches(trigger, body) -> bool:
        if trigger.get("record") != event or body.get("entity") != entity:
            return False
        return not trigger.get("when") or compile_expression(trigger["when"]).is_true(expression_context)

    return [process for key in _workflows_started_by(matches) if (process := _start_safely(key, record, user))]


def _start_safely(key, record, user) -> Process | None:
    """Start from an event: a start that fails is logged and audited, never breaks the event's sender
    (its transaction has committed already)."""
    try:
        return start(key, record, user=user)
    except Exception as error:  # noqa: BLE001 - whatever went wrong, the submission stands.
        reason = error.messages[0] if isinstance(error, WorkflowError) else repr(error)
        logger.warning("Workflow %s did not start on %s: %s", key, getattr(record, "pk", None), reason,
                       exc_info=not isinstance(error, WorkflowError))
        audit.record(audit_actions.PROCESS_START, target_type="viewflow.process", target_id="", result="error",
                     actor=user or system_user(), data={"workflow": key, "error": reason})
        return None


# ---------------------------------------------------------------- user tasks


@contextmanager
def _locked(task):
    """Hold viewflow's lock of the task's process; yields the task row, re-read FOR UPDATE."""
    with task.flow_task.flow_class.lock(task.process_id):
        yield Task.objects.select_for_update(of=("self",)).select_related("process", "owner").get(pk=task.pk)


def _refuse_closed(task) -> None:
    if task.status in runtime.OPEN:
        return
    if task.status == STATUS.DONE:
        decision = task.decisions.select_related("user").order_by("-decided_at").first()
        who = decision.user if decision and decision.user else task.owner
        raise WorkflowError(_("This task was already completed by %(user)s.") % {"user": who or _("someone")},
                            code="already_completed")
    raise WorkflowError(_("This task is no longer open (%(status)s).") % {"status": task.get_status_display()},
                        code="closed")


def complete(task, *, user, outcome: str, comment: str = "", data: dict | None = None) -> Task:
    """Decide `task` as `user` with `outcome` (approved/rejected, or completed for a form task).

    Exactly once: the process row and the task row are locked and the task's status re-read;
    a second click gets WorkflowError "already completed by ...". Completing a queued task claims it.
    :raises PermissionDenied: `user` may not decide the task.
    """
    with transaction.atomic(), _locked(task) as task:
        _refuse_closed(task)
        if not may_complete(task, user):
            raise PermissionDenied(_("This task is not yours to complete."))
        spec = task.flow_task.spec
        allowed = validation.outcomes(spec)
        if outcome not in allowed:
            raise WorkflowError({"outcome": [_("Choose one of %(allowed)s.") % {"allowed": ", ".join(allowed)}]})
        activation = task.flow_task.activation_class(task)
        if task.status == STATUS.NEW:
            activation.assign(user)
        if task.status == STATUS.ASSIGNED:
            activation.start(None)
        now = timezone.now()
        TaskDecision.objects.create(task=task, user=user, outcome=outcome, comment=comment, decided_at=now)
        task.data.update(outcome=outcome, comment=comment, **({"data": data} if data else {}))
        activation.complete()
        audit.record_later(audit_actions.TASK_COMPLETE, target=task, actor=user,
                           data={"outcome": outcome, "comment": comment, "node": runtime.node_id(task.flow_task)})
        transaction.on_commit(lambda: signals.task_completed.send(
            sender=Process, task=task, user=user, outcome=outcome, comment=comment))
        decided = _committee_outcome(task) if task.data.get("committee") else outcome
        if decided:
            _close_siblings(task)
            process = activation.process
            process.data.update(outcome=decided, comment=comment, actor=user.pk)
            if data:
                process.data.setdefault("data", {})[runtime.node_id(task.flow_task)] = data
            process.save(update_fields=["data"])
            with Context(propagate_exception=False):
                activation.activate_next()
    return task


def _siblings(task) -> QuerySet:
    """The rows of the same committee round as `task` (itself included)."""
    return Task.objects.filter(process_id=task.process_id, flow_task=task.flow_task,
                               data__committee__round=task.data["committee"]["round"])


def _committee_outcome(task) -> str | None:
    """The committee's outcome once its rule decides it, else None (others still to decide)."""
    rule = task.data["committee"]
    siblings = list(_siblings(task).exclude(status=STATUS.CANCELED).values_list("pk", flat=True))
    decisions = list(TaskDecision.objects.filter(task_id__in=siblings).values_list("outcome", flat=True))
    members, approvals, rejections = len(siblings), decisions.count("approved"), decisions.count("rejected")
    needed = {"all": members, "n_of_m": min(rule.get("n") or members, members)}[rule["rule"]]
    if approvals >= needed:
        return "approved"
    if rejections > members - needed:
        return "rejected"
    return None


def _close_siblings(task) -> None:
    """Cancel the committee rows (or any other row of the same node and token) nobody decided."""
    open_rows = Task.objects.filter(process_id=task.process_id, flow_task=task.flow_task, token=task.token,
                                    status__in=runtime.OPEN).exclude(pk=task.pk)
    for row in open_rows:
        row.flow_task.activation_class(row).cancel()


def claim(task, *, user) -> Task:
    """Take a queued task: it leaves the queue and becomes `user`'s."""
    with transaction.atomic(), _locked(task) as task:
        _refuse_closed(task)
        if task.owner_id:
            raise WorkflowError(_("%(user)s already took this task.") % {"user": task.owner}, code="claimed")
        if not may_complete(task, user):
            raise PermissionDenied(_("This task is not in one of your queues."))
        task.flow_task.activation_class(task).assign(user)
        task.assigned = timezone.now()
        task.save(update_fields=["assigned", "status"])
        audit.record_later(audit_actions.TASK_CLAIM, target=task, actor=user, data={"queue": task.owner_permission})
    return task


def _may_manage(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active
                and (user.is_superuser or user.has_perm("viewflow.manage_process") or monitoring.may_monitor(user)))


def reassign(task, *, user, to) -> Task:
    """Give an open task to `to`: its owner or a workflow manager may."""
    with transaction.atomic(), _locked(task) as task:
        _refuse_closed(task)
        if task.owner_id != user.pk and not _may_manage(user):
            raise PermissionDenied(_("Only the task's owner or a workflow manager may reassign it."))
        if task.status == STATUS.STARTED:
            raise WorkflowError(_("The task is being completed."), code="started")
        assign(task, to, "")
        task.save()
        runtime.announce(task, reason="reassigned", actor=user)
    return task


def escalate(task, *, user=None) -> Task:
    """Hand an open task to its deadline's `escalate_to` (a role's queue, usually) and tell them."""
    with transaction.atomic(), _locked(task) as task:
        _refuse_closed(task)
        _escalate(task, actor=user)
    return task


def _escalate(task, *, actor) -> None:
    spec = task.flow_task.spec
    target = (spec.get("deadline") or {}).get("escalate_to")
    if not target:
        raise WorkflowError(_("This task says nobody to escalate to."), code="no_escalation")
    assignee = runtime.resolve_assignment(target, context.for_process(task.process, spec))
    previous = task.owner
    assign(task, assignee.users[0] if assignee.users else None, assignee.queue)
    task.data["escalated"] = True
    task.save()
    audit.record(audit_actions.TASK_ESCALATE, target=task, actor=actor or system_user(),
                 data={"from": getattr(previous, "pk", None), "owner": task.owner_id, "queue": task.owner_permission or ""})
    notify(task_users(task), kind=Notification.Kind.ESCALATION, link=task_link(task),
           text=_("Escalated to you: %(task)s (%(process)s #%(id)s).") % _task_words(task))
    transaction.on_commit(lambda: signals.task_assigned.send(
        sender=Process, task=task, users=task_users(task), queue=task.owner_permission or "", reason="escalated"))


def _task_words(task) -> dict:
    return {"task": task.flow_task.task_title, "process": task.flow_task.flow_class.process_title,
            "id": task.process_id}


def delegate(user, to, *, starts: datetime.datetime, ends: datetime.datetime, actor=None) -> Delegation:
    """Out of office: tasks for `user` go to `to` between `starts` and `ends`; open tasks move now
    if the period has begun."""
    if to.pk == user.pk:
        raise WorkflowError({"delegate": [_("Delegate to someone else.")]})
    if ends <= starts:
        raise WorkflowError({"ends": [_("The end must come after the start.")]})
    with transaction.atomic():
        delegation = Delegation.objects.create(user=user, delegate=to, starts=starts, ends=ends)
        audit.record(audit_actions.DELEGATE, target=delegation, actor=actor or user,
                     data={"user": user.pk, "delegate": to.pk, "starts": starts.isoformat(), "ends": ends.isoformat()})
        now = timezone.now()
        if starts <= now < ends:
            for task in Task.objects.filter(owner=user, status=STATUS.ASSIGNED, flow_task_type=HUMAN):
                with _locked(task) as locked:
                    if locked.owner_id == user.pk and locked.status == STATUS.ASSIGNED:
                        assign(locked, user, "")
                        locked.save()
                        runtime.announce(locked, reason="delegated", actor=actor or user)
    return delegation


# ---------------------------------------------------------------- service tasks and staff actions


def cancel(process, *, user) -> Process:
    """Stop a running process (and its sub-processes): every open task is cancelled."""
    if not _may_manage(user):
        raise PermissionDenied(_("Only a workflow manager may cancel a process."))
    with transaction.atomic():
        process = Process.objects.select_for_update().get(pk=process.pk)
        if process.status != PROCESS.NEW:
            raise WorkflowError(_("The process is not running."), code="not_running")
        for child in Process.objects.filter(parent_task__process=process, status=PROCESS.NEW):
            cancel(child, user=user)
        process.flow_class.instance.cancel(process)
        process.data["result"] = "cancelled"
        process.save(update_fields=["data"])
        audit.record(audit_actions.PROCESS_CANCEL, target=process, actor=user)
        transaction.on_commit(lambda: signals.process_finished.send(sender=Process, process=process,
                                                                    outcome="cancelled"))
    return process


def retry(task, *, user) -> Task:
    """Run a failed service task again (viewflow's revive); it may fail again, staying retryable."""
    if not _may_manage(user):
        raise PermissionDenied(_("Only a workflow manager may retry a task."))
    with transaction.atomic(), _locked(task) as task:
        if task.status != STATUS.ERROR:
            raise WorkflowError(_("Only a failed task can be retried."), code="not_failed")
        with Context(propagate_exception=False):
            revived = task.flow_task.activation_class(task).revive()
        audit.record(audit_actions.TASK_RETRY, target=task, actor=user, data={"new_task": revived.pk})
    return revived


def move_token(process, node_id: str, *, user) -> Task:
    """Cancel the process's open tasks and continue from node `node_id` (staff repair)."""
    if not _may_manage(user):
        raise PermissionDenied(_("Only a workflow manager may move a token."))
    flow = process.flow_class
    node = flow.instance.node(runtime.NODE_PREFIX + node_id, no_obsolete=True)
    if node is None or isinstance(node, runtime.StartNode):
        raise WorkflowError({"node": [_("No node %(node)r to move to.") % {"node": node_id}]})
    with transaction.atomic(), flow.lock(process.pk):
        process = Process.objects.get(pk=process.pk)
        if process.status != PROCESS.NEW:
            raise WorkflowError(_("The process is not running."), code="not_running")
        open_tasks = list(process.task_set.exclude(status__in=[STATUS.DONE, STATUS.CANCELED, STATUS.REVIVED]))
        for task in open_tasks:
            activation = task.flow_task.activation_class(task)
            if task.status == STATUS.ERROR or getattr(activation, "cancel", None) is None:
                task.status, task.finished = STATUS.CANCELED, timezone.now()
                task.save(update_fields=["status", "finished"])
            else:
                activation.cancel()
        last = process.task_set.order_by("-pk").first()
        previous = last.flow_task.activation_class(last)
        with Context(propagate_exception=False):
            previous._activate_next({node._create(previous, Token("start"))})
        audit.record(audit_actions.TOKEN_MOVE, target=process, actor=user,
                     data={"to": node_id, "cancelled": [task.pk for task in open_tasks]})
    return process.task_set.order_by("-pk").first()


# ---------------------------------------------------------------- timers and deadlines


def tick(now: datetime.datetime | None = None) -> dict:
    """Fire due timers and deadlines of the connection's tenant (the beat task calls it per tenant;
    tests pass `now`, the controllable clock). Returns counts of what happened."""
    now = now or timezone.now()
    counts = {"timers": 0, "reminders": 0, "expired": 0}
    for task in Task.objects.filter(flow_task_type="TIMER", status=STATUS.SCHEDULED, scheduled__lte=now).order_by("pk"):
        with transaction.atomic(), task.activation() as activation:
            if activation.start.can_proceed():
                activation.start()
                activation.execute()
                counts["timers"] += 1
    due = Task.objects.filter(flow_task_type=HUMAN, status__in=[STATUS.NEW, STATUS.ASSIGNED], scheduled__lte=now)
    for task in due.order_by("scheduled", "pk"):
        with transaction.atomic(), _locked(task) as locked:
            if locked.status in (STATUS.NEW, STATUS.ASSIGNED):
                for step in _deadline_steps(locked, now):
                    counts[step] += 1
    return counts


def _deadline_steps(task, now) -> list[str]:
    """Do what is due on an open task at `now`: remind, then escalate or auto-complete it."""
    due = timers.due_steps(task, now)
    task.save(update_fields=["data", "scheduled"])
    done = []
    if "remind_at" in due:
        notify(task_users(task), kind=Notification.Kind.REMINDER, link=task_link(task),
               text=_("Reminder: %(task)s (%(process)s #%(id)s) is waiting for you.") % _task_words(task))
        audit.record(audit_actions.TASK_REMIND, target=task, actor=system_user())
        done.append("reminders")
    if "expire_at" in due:
        done.append("expired")
        on_expiry = (task.flow_task.spec.get("deadline") or {}).get("on_expiry", "escalate")
        if on_expiry == "escalate":
            _escalate(task, actor=None)
        else:
            complete(task, user=_expiry_user(task), outcome="approved" if on_expiry == "approve" else "rejected",
                     comment=_("Decided automatically: the deadline passed."))
    return done


def _expiry_user(task):
    """Who auto-completes an expired task: its owner, else the workflow user takes it from the queue."""
    if task.owner_id:
        return task.owner
    user = system_user()
    task.owner, task.status = user, STATUS.ASSIGNED
    task.save(update_fields=["owner", "status"])
    return user


# ---------------------------------------------------------------- the inbox


def inbox(user, *, kind: str = "mine") -> QuerySet:
    """The user tasks of `user`'s inbox, newest first (the inbox pages page through it):

    - mine: open tasks assigned to the user; claimable: unclaimed tasks of the user's queues;
    - delegated: open tasks the user delegated to someone; done: tasks the user decided.
    """
    tasks = Task.objects.filter(flow_task_type=HUMAN).select_related("process", "owner")
    if kind == "mine":
        return tasks.filter(owner=user, status__in=[STATUS.ASSIGNED, STATUS.STARTED]).order_by("-created", "-pk")
    if kind == "claimable":
        return tasks.filter(owner__isnull=True, status=STATUS.NEW,
                            owner_permission__in=queues_of(user)).order_by("-created", "-pk")
    if kind == "delegated":
        return tasks.filter(data__delegated_from=user.pk, status__in=runtime.OPEN).order_by("-created", "-pk")
    if kind == "done":
        return tasks.filter(decisions__user=user, status=STATUS.DONE).distinct().order_by("-finished", "-pk")
    raise ValueError(f"Unknown inbox {kind!r}; use one of {INBOX_KINDS}.")


def history(process) -> list[dict]:
    """The process's steps in order: node, status, who, when, and each decision with its comment."""
    decisions = {}
    for decision in TaskDecision.objects.filter(task__process=process).select_related("user"):
        decisions.setdefault(decision.task_id, []).append(decision)
    return [{"task": task, "node": runtime.node_id(task.flow_task) if task.flow_task else "",
             "title": task.flow_task.task_title if task.flow_task else "", "status": task.status,
             "owner": task.owner, "created": task.created, "finished": task.finished,
             "decisions": decisions.get(task.pk, [])}
            for task in process.task_set.select_related("owner").order_by("created", "pk")]
