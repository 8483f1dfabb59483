"""The rules of a workflow body beyond its JSON Schema (WF-1, WF-7).

Publishing, the designer and BPMN import share `problems(body)`: each problem names the
element (node or flow id, "" for the whole body) so the designer can mark it on the diagram.
"""

from __future__ import annotations

from collections import defaultdict, deque

from django.utils.dateparse import parse_duration
from django.utils.translation import gettext as _

from lowcode.expressions import ExpressionError, compile_expression
from lowcode.expressions import types as expression_types

NODE_TYPES = ("start", "end", "user_task", "service_task", "exclusive_gateway", "parallel_gateway",
              "timer", "call_activity")
#: How a process may end; the outcome of the end reached is the process's result.
END_OUTCOMES = ("approved", "rejected", "cancelled", "completed")
#: The decisions of an approval task; a form task completes with "completed".
APPROVAL_OUTCOMES = ("approved", "rejected")
FORM_OUTCOME = "completed"
ON_EXPIRY = ("escalate", "approve", "reject")
#: Process variables expressions read like record fields: the last decision on a user task.
VARIABLE_TYPES = {"outcome": expression_types.TEXT, "comment": expression_types.TEXT}


def _problem(element: str, code: str, message: str, path: str = "") -> dict:
    return {"node": element, "path": path, "code": code, "message": message}


class Graph:
    """The nodes and flows of a body, indexed; tolerant of a body that breaks the rules."""

    def __init__(self, body: dict):
        self.nodes = {node["id"]: node for node in body.get("nodes", [])}
        self.flows = [flow for flow in body.get("flows", []) if flow["source"] in self.nodes
                      and flow["target"] in self.nodes]
        self.outgoing = defaultdict(list)
        self.incoming = defaultdict(list)
        for flow in self.flows:
            self.outgoing[flow["source"]].append(flow)
            self.incoming[flow["target"]].append(flow)

    def of_type(self, node_type: str) -> list[dict]:
        return [node for node in self.nodes.values() if node["type"] == node_type]

    def is_join(self, node: dict) -> bool:
        return node["type"] == "parallel_gateway" and len(self.incoming[node["id"]]) > 1

    def reachable(self, starts, *, backwards: bool = False) -> set[str]:
        edges = self.incoming if backwards else self.outgoing
        seen, queue = set(starts), deque(starts)
        while queue:
            for flow in edges[queue.popleft()]:
                other = flow["source"] if backwards else flow["target"]
                if other not in seen:
                    seen.add(other)
                    queue.append(other)
        return seen


def problems(body: dict) -> list[dict]:
    """Return what keeps `body` (schema-valid) from running, as {"node", "path", "code", "message"}."""
    result = _identity_problems(body)
    if result:
        return result
    graph = Graph(body)
    fields = _expression_fields(body, result)
    result += _structure_problems(graph)
    flow_paths = {flow["id"]: f"flows/{index}" for index, flow in enumerate(body["flows"])}
    for index, node in enumerate(body["nodes"]):
        for problem in _node_problems(graph, node, body, fields):
            base = flow_paths.get(problem["node"]) or f"nodes/{index}"
            result.append({**problem, "path": "/".join(filter(None, [base, problem["path"]]))})
    for index, flow in enumerate(body["flows"]):
        if flow.get("condition") and fields is not None:
            result += _expression_problem(flow["condition"], fields, flow["id"], f"flows/{index}/condition",
                                          condition=True)
    return result


def _identity_problems(body: dict) -> list[dict]:
    result, seen = [], set()
    for kind, items in (("nodes", body["nodes"]), ("flows", body["flows"])):
        for index, item in enumerate(items):
            if item["id"] in seen:
                result.append(_problem(item["id"], "duplicate_id", _("Two elements use the id %(id)r.")
                                       % {"id": item["id"]}, f"{kind}/{index}/id"))
            seen.add(item["id"])
    nodes = {node["id"] for node in body["nodes"]}
    for index, flow in enumerate(body["flows"]):
        for end, message in (("source", _("The flow starts at %(id)r, which is no node.")),
                             ("target", _("The flow leads to %(id)r, which is no node."))):
            if flow[end] not in nodes:
                result.append(_problem(flow["id"], "unknown_node", message % {"id": flow[end]}, f"flows/{index}/{end}"))
    return result


def _expression_fields(body: dict, result: list[dict]) -> dict | None:
    """The types expressions of `body` may read (None: the entity is unknown, reported here)."""
    from dynamic_models import formulas, runtime

    if not body.get("entity"):
        return dict(VARIABLE_TYPES)
    entity = runtime.published_entity_bodies().get(body["entity"])
    if entity is None:
        result.append(_problem("", "unknown_entity", _("No published entity %(key)r.") % {"key": body["entity"]},
                               "entity"))
        return None
    return {**formulas.expression_fields(entity, database=False, formulas=True), **VARIABLE_TYPES}


def _expression_problem(source: str, fields: dict, element: str, path: str, *, condition: bool) -> list[dict]:
    from rbac.scopes import USER_ATTRIBUTE_TYPES

    try:
        compile_expression(source).check(fields, user=USER_ATTRIBUTE_TYPES, database=False, condition=condition)
    except ExpressionError as error:
        return [_problem(element, getattr(error, "code", None) or "expression", str(error), path)]
    return []


def _structure_problems(graph: Graph) -> list[dict]:
    result = []
    starts, ends = graph.of_type("start"), graph.of_type("end")
    if len(starts) != 1:
        result.append(_problem("", "start_count", _("A workflow has exactly one start event.")))
    if not ends:
        result.append(_problem("", "no_end", _("A workflow needs an end event.")))
    reached = graph.reachable([node["id"] for node in starts])
    finishing = graph.reachable([node["id"] for node in ends], backwards=True)
    for node_id in graph.nodes:
        if starts and node_id not in reached:
            result.append(_problem(node_id, "unreachable", _("No path from the start reaches this node.")))
        elif ends and node_id not in finishing:
            result.append(_problem(node_id, "no_path_to_end", _("No path leads from this node to an end.")))
    for join in filter(graph.is_join, graph.nodes.values()):
        if not _matching_split(graph, join):
            result.append(_problem(join["id"], "join_without_split",
                                   _("This join has no parallel split that all its incoming branches come from.")))
    return result


def _matching_split(graph: Graph, join: dict) -> bool:
    """Whether one parallel split lies behind every incoming branch of `join`."""
    common = None
    for flow in graph.incoming[join["id"]]:
        behind = graph.reachable([flow["source"]], backwards=True)
        splits = {node_id for node_id in behind if graph.nodes[node_id]["type"] == "parallel_gateway"
                  and len(graph.outgoing[node_id]) > 1}
        common = splits if common is None else common & splits
    return bool(common)


def _count_problems(graph: Graph, node: dict) -> list[dict]:
    node_id, node_type = node["id"], node["type"]
    incoming, outgoing = len(graph.incoming[node_id]), len(graph.outgoing[node_id])
    if node_type == "start" and incoming:
        return [_problem(node_id, "start_incoming", _("A start event has no incoming flow."))]
    if node_type == "end" and outgoing:
        return [_problem(node_id, "end_outgoing", _("An end event has no outgoing flow."))]
    if node_type not in ("end",) and not outgoing:
        return [_problem(node_id, "no_outgoing", _("This node needs an outgoing flow."))]
    if node_type in ("start", "service_task", "timer", "call_activity") and outgoing > 1:
        return [_problem(node_id, "many_outgoing",
                         _("This node has one outgoing flow; split with a gateway."))]
    if node_type == "parallel_gateway" and incoming > 1 and outgoing > 1:
        return [_problem(node_id, "split_and_join", _("A parallel gateway either splits or joins, not both."))]
    return []


def _node_problems(graph: Graph, node: dict, body: dict, fields: dict | None) -> list[dict]:
    result = _count_problems(graph, node)
    checker = _NODE_CHECKS.get(node["type"])
    if checker:
        result += checker(graph, node, body, fields)
    return result


def _start_problems(graph, node, body, fields) -> list[dict]:
    from metadata import services as metadata

    trigger = node.get("trigger") or {}
    result = []
    if trigger.get("form"):
        form = metadata.get_published("form", trigger["form"])
        if form is None:
            result.append(_problem(node["id"], "unknown_form", _("No published form %(key)r.") % {"key": trigger["form"]},
                                   "trigger/form"))
        elif body.get("entity") and form.body.get("entity") != body["entity"]:
            result.append(_problem(node["id"], "form_entity", _("Form %(form)s is not bound to %(entity)s.")
                                   % {"form": trigger["form"], "entity": body["entity"]}, "trigger/form"))
    if trigger.get("record") and not body.get("entity"):
        result.append(_problem(node["id"], "record_trigger_without_entity",
                               _("A record event starts only a workflow bound to an entity."), "trigger/record"))
    if trigger.get("form") and trigger.get("record"):
        result.append(_problem(node["id"], "two_triggers", _("Start on a form or on a record event, not both."),
                               "trigger"))
    if trigger.get("when") and fields is not None:
        result += _expression_problem(trigger["when"], fields, node["id"], "", condition=True)
    return result


def assignment_problems(assign: dict, body: dict, fields: dict | None, element: str) -> list[dict]:
    """Problems of an assignment ({"user": ...} or role, department, manager_of, expression)."""
    from workflows.registries import assignment_kind_registry

    (kind, value), = assign.items()
    if not assignment_kind_registry.is_registered(kind):
        return [_problem(element, "unknown_assignment", _("Assign to one of %(kinds)s, not %(kind)r.")
                         % {"kinds": ", ".join(assignment_kind_registry.get_types()), "kind": kind})]
    return [_problem(element, code, message) for code, message in
            assignment_kind_registry.get(kind).problems(value, body, fields)]


def outcomes(node: dict) -> tuple[str, ...]:
    """The outcomes a user task completes with."""
    return APPROVAL_OUTCOMES if (node.get("task") or {}).get("kind", "approval") == "approval" else (FORM_OUTCOME,)


def _user_task_problems(graph, node, body, fields) -> list[dict]:
    from metadata import services as metadata

    node_id, result = node["id"], []
    if not node.get("assign"):
        result.append(_problem(node_id, "no_assignee", _("Say who does this task.")))
    else:
        result += assignment_problems(node["assign"], body, fields, node_id)
    task = node.get("task") or {"kind": "approval"}
    if task["kind"] == "form":
        form = metadata.get_published("form", task.get("form") or "")
        if form is None:
            result.append(_problem(node_id, "unknown_form", _("No published form %(key)r.") % {"key": task.get("form")}))
        elif body.get("entity") and form.body.get("entity") != body["entity"]:
            result.append(_problem(node_id, "form_entity", _("Form %(form)s is not bound to %(entity)s.")
                                   % {"form": task["form"], "entity": body["entity"]}))
    approvers = node.get("approvers") or {"rule": "any"}
    if approvers["rule"] == "n_of_m" and not approvers.get("n"):
        result.append(_problem(node_id, "n_missing", _("Say how many approvals of the committee are needed.")))
    if approvers["rule"] != "any" and task["kind"] != "approval":
        result.append(_problem(node_id, "committee_form", _("Only approvals can be decided by a committee.")))
    result += _deadline_problems(node, body, fields)
    result += _outcome_flow_problems(graph, node)
    return result


def _outcome_flow_problems(graph, node) -> list[dict]:
    flows, allowed = graph.outgoing[node["id"]], outcomes(node)
    if len(flows) == 1 and not flows[0].get("outcome"):
        return []  # Every outcome follows the one flow.
    result, taken = [], set()
    for flow in flows:
        outcome = flow.get("outcome")
        if not outcome:
            result.append(_problem(flow["id"], "flow_without_outcome",
                                   _("A flow leaving a task with several flows names the outcome it follows.")))
        elif outcome not in allowed:
            result.append(_problem(flow["id"], "unknown_outcome", _("%(outcome)r is not an outcome of this task (%(allowed)s).")
                                   % {"outcome": outcome, "allowed": ", ".join(allowed)}))
        elif outcome in taken:
            result.append(_problem(flow["id"], "duplicate_outcome", _("Two flows follow the outcome %(outcome)r.")
                                   % {"outcome": outcome}))
        taken.add(outcome)
    missing = [outcome for outcome in allowed if outcome not in taken]
    if flows and not result and missing:
        result.append(_problem(node["id"], "outcome_without_flow", _("No flow follows the outcome %(outcome)r.")
                               % {"outcome": missing[0]}))
    return result


def _deadline_problems(node, body, fields) -> list[dict]:
    deadline, result = node.get("deadline") or {}, []
    for name in ("remind_after", "escalate_after"):
        if name in deadline and not _positive_duration(deadline[name]):
            result.append(_problem(node["id"], "bad_duration", _("%(value)r is no ISO 8601 duration such as P2D or PT4H.")
                                   % {"value": deadline[name]}, f"deadline/{name}"))
    on_expiry = deadline.get("on_expiry", "escalate" if deadline.get("escalate_after") else None)
    if on_expiry and not deadline.get("escalate_after"):
        result.append(_problem(node["id"], "expiry_without_deadline", _("Say after how long the task expires."),
                               "deadline/escalate_after"))
    if on_expiry == "escalate":
        if not deadline.get("escalate_to"):
            result.append(_problem(node["id"], "escalate_to_missing", _("Say to whom the task escalates."),
                                   "deadline/escalate_to"))
        else:
            result += assignment_problems(deadline["escalate_to"], body, fields, node["id"])
    return result


def _positive_duration(text: str) -> bool:
    duration = parse_duration(text) if text.startswith("P") else None
    return duration is not None and duration.total_seconds() > 0


def _service_task_problems(graph, node, body, fields) -> list[dict]:
    from workflows.registries import service_action_registry

    if not service_action_registry.is_registered(node.get("action") or ""):
        return [_problem(node["id"], "unknown_action", _("No service action %(action)r; choose one of %(known)s.")
                         % {"action": node.get("action"), "known": ", ".join(service_action_registry.get_types())},
                         "action")]
    action = service_action_registry.get(node["action"])
    return [_problem(node["id"], code, message) for code, message in action.problems(node, body, fields)]


def _exclusive_gateway_problems(graph, node, body, fields) -> list[dict]:
    flows = graph.outgoing[node["id"]]
    if len(flows) < 2:
        return []  # A merge.
    ids = [flow["id"] for flow in flows]
    if not node.get("default"):
        return [_problem(node["id"], "no_default", _("A gateway with several paths needs a default path."), "default")]
    if node["default"] not in ids:
        return [_problem(node["id"], "unknown_default", _("The default path must leave this gateway."), "default")]
    return [_problem(flow["id"], "no_condition", _("A path other than the default needs a condition."))
            for flow in flows if flow["id"] != node["default"] and not flow.get("condition")]


def _timer_problems(graph, node, body, fields) -> list[dict]:
    if _positive_duration(node.get("duration") or ""):
        return []
    return [_problem(node["id"], "bad_duration", _("%(value)r is no ISO 8601 duration such as P2D or PT4H.")
                     % {"value": node.get("duration")}, "duration")]


def _call_activity_problems(graph, node, body, fields) -> list[dict]:
    from metadata import services as metadata

    if not node.get("workflow"):
        return [_problem(node["id"], "no_workflow", _("Choose the workflow to call."), "workflow")]
    if metadata.get_published("workflow", node["workflow"]) is None:
        return [_problem(node["id"], "unknown_workflow", _("No published workflow %(key)r.") % {"key": node["workflow"]},
                         "workflow")]
    return []


_NODE_CHECKS = {
    "start": _start_problems, "user_task": _user_task_problems, "service_task": _service_task_problems,
    "exclusive_gateway": _exclusive_gateway_problems, "timer": _timer_problems,
    "call_activity": _call_activity_problems
}
