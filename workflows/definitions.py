"""The `workflow` kind of metadata definition (WF-1): its JSON Schema, rules and publish hook.

The body is described in /work/briefs/workflows_design.md: `nodes` (start, user and service
tasks, gateways, timers, call activities, ends), `flows` between them and the BPMNDI `diagram`.
Rules beyond the schema live in workflows.validation, shared with the designer and BPMN import.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy

from metadata.registries import DefinitionKind
from workflows.validation import END_OUTCOMES, NODE_TYPES, ON_EXPIRY, problems

#: Node and flow ids: they become attribute names of the runtime Flow class (see workflows.runtime).
ELEMENT_ID = r"^[A-Za-z][A-Za-z0-9_]{0,62}$"
_TEXT = {"type": "string", "maxLength": 200}
_EXPRESSION = {"type": "string", "maxLength": 2000}
_KEY = {"type": "string", "minLength": 1, "maxLength": 63}
#: ISO 8601 durations as django.utils.dateparse.parse_duration reads them (checked by validation).
_DURATION = {"type": "string", "minLength": 2, "maxLength": 40}

ASSIGNMENT_SCHEMA = {
    "type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": False,
    "properties": {"user": _KEY, "role": _KEY, "department": _TEXT, "manager_of": _KEY, "expression": _EXPRESSION},
}


def _node_schema() -> dict:
    return {
        "type": "object", "required": ["id", "type"],
        # Service tasks carry their action's options beside these (checked by the action).
        "properties": {
            "id": {"type": "string", "pattern": ELEMENT_ID},
            "type": {"enum": list(NODE_TYPES)},
            "label": _TEXT,
            "documentation": {"type": "string", "maxLength": 2000},
            "trigger": {"type": "object", "additionalProperties": False, "properties": {
                "form": _KEY, "record": {"enum": ["created", "updated"]}, "when": _EXPRESSION}},
            "task": {"type": "object", "required": ["kind"], "additionalProperties": False, "properties": {
                "kind": {"enum": ["approval", "form"]}, "form": _KEY}},
            "assign": ASSIGNMENT_SCHEMA,
            "approvers": {"type": "object", "required": ["rule"], "additionalProperties": False, "properties": {
                "rule": {"enum": ["any", "all", "n_of_m"]}, "n": {"type": "integer", "minimum": 1, "maximum": 100}}},
            "deadline": {"type": "object", "additionalProperties": False, "properties": {
                "remind_after": _DURATION, "escalate_after": _DURATION, "escalate_to": ASSIGNMENT_SCHEMA,
                "on_expiry": {"enum": list(ON_EXPIRY)}}},
            "default": {"type": "string", "pattern": ELEMENT_ID},
            "action": _KEY,
            "duration": _DURATION,
            "workflow": _KEY,
            "outcome": {"enum": list(END_OUTCOMES)},
        },
    }


def body_schema() -> dict:
    return {
        "type": "object",
        "required": ["label", "nodes", "flows"],
        "additionalProperties": False,
        "properties": {
            "label": {**_TEXT, "minLength": 1},
            "description": {"type": "string", "maxLength": 2000},
            "app": {"type": "string", "maxLength": 63, "description": "Bundles export it with its app."},
            "entity": {"type": "string", "maxLength": 40},
            "nodes": {"type": "array", "minItems": 1, "maxItems": 500, "items": _node_schema()},
            "flows": {"type": "array", "maxItems": 1000, "items": {
                "type": "object", "required": ["id", "source", "target"], "additionalProperties": False,
                "properties": {
                    "id": {"type": "string", "pattern": ELEMENT_ID}, "label": _TEXT,
                    "source": {"type": "string"}, "target": {"type": "string"},
                    "condition": _EXPRESSION, "outcome": {"type": "string", "maxLength": 40},
                }}},
            "diagram": {"type": "object", "additionalProperties": False, "properties": {
                "nodes": {"type": "object", "additionalProperties": {"type": "object"}},
                "flows": {"type": "object", "additionalProperties": {"type": "array"}},
                # Label bounds (BPMNLabel) of nodes and flows, by id: BPMN import/export keeps them.
                "labels": {"type": "object", "additionalProperties": {"type": "object"}}}},
        },
    }


class WorkflowKind(DefinitionKind):
    type = "workflow"
    verbose_name = gettext_lazy("Workflow")
    bundle_parameter = "workflow"
    view_permissions = ("workflows.view_workflowdefinition",)
    import_permissions = ("workflows.add_workflowdefinition", "workflows.change_workflowdefinition")

    @property
    def schema(self) -> dict:
        return body_schema()

    def validate(self, body: dict) -> list[dict]:
        return [{"path": problem["path"], "code": problem["code"], "message": problem["message"]}
                for problem in problems(body)]

    def publish(self, definition, previous, *, author=None) -> None:
        """Build the version's Flow class now, so a body that cannot run is refused at publish."""
        from workflows import flows

        flows.flow_class(definition)

    def dependencies(self, body: dict) -> list[tuple[str, str]]:
        if not isinstance(body, dict):
            return []
        result = []
        if isinstance(body.get("entity"), str) and body["entity"]:
            result.append(("entity", body["entity"]))
        for node in body.get("nodes") or []:
            if not isinstance(node, dict):
                continue
            trigger = node.get("trigger") if isinstance(node.get("trigger"), dict) else {}
            task = node.get("task") if isinstance(node.get("task"), dict) else {}
            for kind, key in (("form", trigger.get("form")), ("form", task.get("form")),
                              ("workflow", node.get("workflow") if node.get("type") == "call_activity" else None)):
                if isinstance(key, str) and key and (kind, key) not in result:
                    result.append((kind, key))
        return result
