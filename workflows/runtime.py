"""Compile a published `workflow` definition into a django-viewflow Flow class (WF-2).

Each (tenant, key, version) gets its own class, `F_<schema>_<key>_v<version>_<checksum>`,
attached to workflows.flows; viewflow stores that dotted path on every process and task and
imports it back, and workflows.flows rebuilds a missing class from its Definition, so any worker
can load an old instance. Running instances keep the class (the version) they started with.

Nodes are viewflow's own (StartHandle, View, Function, Switch, Split, Join, Timer, End,
Handle), with activations extended only where viewflow lacks something: user tasks route by
outcome, assign through workflows.assignment, and may be committee tasks (one row per
approver); a call activity starts a sub-process and waits for it.
"""

from __future__ import annotations

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from viewflow import this
from viewflow.workflow import lock
from viewflow.workflow.activation import Activation
from viewflow.workflow.base import Edge, Flow
from viewflow.workflow.context import Context
from viewflow.workflow.fields import import_flow_by_ref
from viewflow.workflow.lock import after_lock_released
from viewflow.workflow.nodes import (
    End,
    EndActivation,
    Function,
    Handle,
    HandleActivation,
    Join,
    Split,
    StartHandle,
    Switch,
    Timer,
    View,
    ViewActivation,
)
from viewflow.workflow.status import STATUS

from audit import services as audit
from lowcode.expressions import compile_expression
from workflows import audit_actions, context, signals, timers
from workflows.assignment import assign, may_complete, task_users
from workflows.exceptions import WorkflowError
from workflows.registries import assignment_kind_registry, service_action_registry

#: The prefix of node attributes on a Flow class (node ids could clash with Flow's own names).
NODE_PREFIX = "n_"
#: Process rows are locked with SELECT ... FOR UPDATE (waiting, not failing) around every step:
#: concurrent completions and parallel branches reaching a join run one after the other.
PROCESS_LOCK = lock.SelectForUpdateLock(nowait=False, attempts=1)
#: Statuses of a task still to be done.
OPEN = (STATUS.NEW, STATUS.ASSIGNED, STATUS.STARTED)


def node_id(flow_task) -> str:
    """The id in the definition body of a node of a compiled flow."""
    return flow_task.name[len(NODE_PREFIX):]


def _ref(node_id_: str):
    return getattr(this, NODE_PREFIX + node_id_)


class WorkflowFlow(Flow):
    """The base of compiled flows: the definition they come from (key, version, body; each node
    keeps its part of the body as `spec`), and viewflow's process lock."""

    lock_impl = PROCESS_LOCK
    key: str = ""
    version: int = 0
    body: dict = {}


# ---------------------------------------------------------------- start


def _start_process(activation, *, record=None, user=None, variables=None):
    """StartHandle's function: bind the record and the starter to the new process."""
    from django.contrib.contenttypes.models import ContentType

    process = activation.process
    process.data = {**(variables or {}), "started_by": user.pk if user is not None else None}
    if record is not None:
        process.artifact_content_type = ContentType.objects.get_for_model(type(record))
        process.artifact_object_id = record.pk
    activation.task.owner = user
    return process


class StartNode(StartHandle):
    """The start event: processes start from code (a form submission, a record event, a person)."""

    def __init__(self, spec: dict):
        super().__init__(func=_start_process)
        self.spec = spec


# ---------------------------------------------------------------- user tasks


class UserTaskActivation(ViewActivation):
    """A user task: assigned on creation (a user, a queue, or one row per committee member)."""

    @classmethod
    def create(cls, flow_task, prev_activation, token, data=None, seed=None):
        return cls(create_user_tasks(flow_task, prev_activation, token)[0])

    @Activation.status.super()
    def create_next(self):
        routes = self.flow_task._routes
        outcome = self.process.data.get("outcome")
        target = routes.get(outcome) or routes.get(None)
        yield target._create(self, self.task.token)


class UserTaskNode(View):
    """A user task: an approval (approved / rejected) or a form to fill, routed by its outcome."""

    activation_class = UserTaskActivation

    def __init__(self, spec: dict):
        super().__init__(view=None)
        self.spec = spec
        self._routes = {}

    def Route(self, outcome: str | None, node):
        self._routes[outcome] = node
        return self

    def _resolve(self, instance):
        super()._resolve(instance)
        self._routes = {outcome: this.resolve(instance, node) for outcome, node in self._routes.items()}

    def _outgoing(self):
        for outcome, node in self._routes.items():
            yield Edge(src=self, dst=node, edge_class="next", label=outcome)

    def can_execute(self, user, task):
        return may_complete(task, user)


# ---------------------------------------------------------------- service tasks, gateways, timers


class ServiceTaskNode(Function):
    """A service task: runs its registered action (workflows.registries.service_action_registry)."""

    def __init__(self, spec: dict):
        super().__init__(func=self._run_action)
        self.spec = spec

    def _run_action(self, activation):
        step = context.for_activation(activation)
        service_action_registry.get(self.spec["action"]).run(step)
        activation.process.save(update_fields=["data"])


def _condition(source: str):
    expression = compile_expression(source)

    def holds(activation) -> bool:
        return expression.is_true(context.for_activation(activation).expression_context())

    return holds


class EndNodeActivation(EndActivation):
    @Activation.status.super()
    def activate(self):
        self.process.data["result"] = self.flow_task.spec.get("outcome", "completed")
        self.process.save(update_fields=["data"])
        super().activate.original()


class EndNode(End):
    activation_class = EndNodeActivation

    def __init__(self, spec: dict):
        super().__init__()
        self.spec = spec


class CallActivityActivation(HandleActivation):
    """Starts the called workflow on the same record; the sub-process's end completes this task."""

    @Activation.status.super()
    def activate(self):
        process = self.process
        definition = _published_definition(self.flow_task.spec["workflow"])
        start_process(import_flow_by_ref(f"workflows/flows.{class_name(definition)}"), context.record_of(process),
                      user=context.user(process.data.get("started_by")), parent_task=self.task)


class CallActivityNode(Handle):
    activation_class = CallActivityActivation

    def __init__(self, spec: dict):
        super().__init__()
        self.spec = spec


class _Spec:
    """Keeps the body's node on a plain viewflow node (gateways, timers)."""

    def __init__(self, spec: dict, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.spec = spec


class GatewayNode(_Spec, Switch):
    pass


class SplitNode(_Spec, Split):
    pass


class JoinNode(_Spec, Join):
    pass


class TimerNode(_Spec, Timer):
    pass


# ---------------------------------------------------------------- compile


def class_name(definition) -> str:
    return f"F_{connection.schema_name}_{definition.key}_v{definition.version}_{definition.checksum[:8]}"


def _node(spec: dict, outgoing: list[dict], incoming: list[dict]):
    kind = spec["type"]
    label = spec.get("label") or spec["id"]
    if kind == "start":
        node = StartNode(spec).Next(_ref(outgoing[0]["target"]))
    elif kind == "user_task":
        node = UserTaskNode(spec)
        for flow in outgoing:
            node.Route(flow.get("outcome"), _ref(flow["target"]))
    elif kind == "service_task":
        node = ServiceTaskNode(spec).Next(_ref(outgoing[0]["target"]))
    elif kind == "exclusive_gateway":
        node = GatewayNode(spec)
        default = spec.get("default") if len(outgoing) > 1 else outgoing[0]["id"]
        for flow in outgoing:
            if flow["id"] != default:
                node.Case(_ref(flow["target"]), _condition(flow["condition"]))
        node.Default(_ref(next(flow["target"] for flow in outgoing if flow["id"] == default)))
    elif kind == "parallel_gateway" and len(incoming) > 1:
        node = JoinNode(spec).Next(_ref(outgoing[0]["target"]))
    elif kind == "parallel_gateway":
        node = SplitNode(spec)
        for flow in outgoing:
            node.Always(_ref(flow["target"]))
    elif kind == "timer":
        node = TimerNode(spec, timers.duration(spec["duration"])).Next(_ref(outgoing[0]["target"]))
    elif kind == "call_activity":
        node = CallActivityNode(spec).Next(_ref(outgoing[0]["target"]))
    elif kind == "end":
        node = EndNode(spec)
    else:  # pragma: no cover - the schema allows no other type
        raise ValueError(kind)
    return node.Annotation(title=label)


def build(definition, name: str) -> type[WorkflowFlow]:
    """A new Flow class for a (valid) published definition."""
    body = definition.body
    attributes = {
        "__module__": "workflows.flows", "__doc__": body["label"], "process_title": body["label"],
        "key": definition.key, "version": definition.version, "body": body,
    }
    for spec in body["nodes"]:
        outgoing = [flow for flow in body["flows"] if flow["source"] == spec["id"]]
        incoming = [flow for flow in body["flows"] if flow["target"] == spec["id"]]
        attributes[NODE_PREFIX + spec["id"]] = _node(spec, outgoing, incoming)
    return type(name, (WorkflowFlow,), attributes)


def _published_definition(key: str):
    from metadata import services as metadata

    definition = metadata.get_published("workflow", key)
    if definition is None:
        raise WorkflowError(_("No published workflow %(key)r.") % {"key": key}, code="unknown_workflow")
    return definition


# ---------------------------------------------------------------- running


def start_process(flow, record=None, *, user=None, variables: dict | None = None, parent_task=None):
    """Run `flow`'s start event on `record` as `user` (audited); service tasks that fail stay in ERROR."""
    start_node = next(node for node in flow.instance.nodes() if isinstance(node, StartNode))
    kwargs = {"_parent_task": parent_task} if parent_task is not None else {}
    with transaction.atomic(), Context(propagate_exception=False):
        process = start_node.run(record=record, user=user, variables=variables, **kwargs)
        audit.record(audit_actions.PROCESS_START, target=process, actor=user or context.system_user(),
                     data={"workflow": flow.key, "version": flow.version, "record": getattr(record, "pk", None),
                           "parent_task": getattr(parent_task, "pk", None)})
    return process


def resume_parent(process) -> None:
    """A child process ended: its call activity task completes and the parent goes on (once the
    child's lock is released: viewflow's rule for locks of two processes)."""
    from viewflow.workflow.models import Task

    def resume():
        task = Task.objects.get(pk=process.parent_task_id)
        if task.status == STATUS.NEW:
            with Context(propagate_exception=False):
                task.flow_task.run(task)

    after_lock_released(resume)


def resolve_assignment(assign_spec: dict, step: context.StepContext, *, committee: bool = False):
    (kind, value), = assign_spec.items()
    return assignment_kind_registry.get(kind).resolve(value, step, committee=committee)


def create_user_tasks(flow_task, prev_activation, token) -> list:
    """Create a user task's rows: one for a user or a queue, one per member for a committee."""
    spec = flow_task.spec
    step = context.for_process(prev_activation.process, spec)
    approvers = spec.get("approvers") or {"rule": "any"}
    committee = approvers["rule"] != "any"
    assignee = resolve_assignment(spec["assign"], step, committee=committee)
    if committee and not assignee.users:
        raise WorkflowError(_("Nobody is on the committee of task %(task)s.") % {"task": spec.get("label") or spec["id"]})
    tasks = []
    for owner in assignee.users or (None,):
        task = flow_task.flow_class.task_class(process=prev_activation.process, flow_task=flow_task, token=token)
        task.data = {"committee": {**approvers, "round": prev_activation.task.pk}} if committee else {}
        assign(task, owner, assignee.queue)
        timers.schedule(task, spec, timezone.now())
        task.save()
        task.previous.add(prev_activation.task)
        tasks.append(task)
        announce(task, reason="assigned")
    return tasks


def announce(task, *, reason: str, actor=None) -> None:
    """Audit an assignment and send task_assigned (notifications) when the transaction commits."""
    action = audit_actions.TASK_ASSIGN if reason == "assigned" else audit_actions.TASK_REASSIGN
    audit.record_later(action, target=task, actor=actor or context.system_user(),
                       data={"owner": task.owner_id, "queue": task.owner_permission or "", "reason": reason})
    transaction.on_commit(lambda: signals.task_assigned.send(
        sender=type(task.process), task=task, users=task_users(task), queue=task.owner_permission or "",
        reason=reason))
