"""The workflow designer (WF-7): the services its admin views call and the data its page draws with.

The page (static/workflows/designer.js) edits BPMN 2.0 XML in the vendored bpmn-js modeler; the
server reads every save and check through workflows.bpmn.import_xml, so what is stored is the
body the BPMN import makes, and the diagram is the body's export: one path in, one path out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.utils.translation import gettext as _

from dynamic_models.keys import key_errors
from lowcode.expressions import editor_check
from metadata import services as metadata
from metadata.exceptions import DefinitionValidationError
from metadata.models import Definition
from workflows import bpmn

KIND = "workflow"
KEY_MAX = 63
USERS_LISTED = 500  # The assignee picker's suggestions; more users are typed by name.


def blank(label: str) -> dict:
    """A new workflow: a start joined to an end, laid out."""
    return {
        "label": label, "nodes": [{"id": "start", "type": "start", "label": _("Start"), "trigger": {}},
                                  {"id": "end", "type": "end", "label": _("Done"), "outcome": "completed"}],
        "flows": [{"id": "flow_1", "source": "start", "target": "end"}],
        "diagram": {"nodes": {"start": {"x": 180, "y": 160, "width": 36, "height": 36},
                              "end": {"x": 640, "y": 160, "width": 36, "height": 36}},
                    "flows": {"flow_1": [[216, 178], [640, 178]]}},  # Room to drop tasks on the flow.
    }


def start_workflow(key: str, label: str, *, author) -> tuple[Definition | None, dict]:
    """Create the draft of a new workflow; (definition, {}) or (None, {"key"|"label": [errors]})."""
    key, label = key.strip(), label.strip()
    errors = {}
    key_problems = key_errors(key, what=_("workflow"), max_length=KEY_MAX)
    if not key_problems and Definition.objects.filter(kind=KIND, key=key).exists():
        key_problems = [{"code": "unique", "message": _("A workflow with the key %(key)r exists already.") % {"key": key}}]
    if key_problems:
        errors["key"] = key_problems
    if not label:
        errors["label"] = [{"code": "required", "message": _("Give the workflow a name.")}]
    if errors:
        return None, errors
    return metadata.save_draft(KIND, key, blank(label), author=author), {}


def export_xml(definition: Definition) -> str:
    return bpmn.export(definition.body, key=definition.key)


# ---- Checking and saving what the modeler drew ----

@dataclass
class Checked:
    """A diagram read back: the body (None when the XML is refused) and what to show on it.

    `errors` and `warnings` are the BPMN import's ({"element", "type", "line", "code", "message"});
    `problems` the definition's ({"node": element id or "", "path", "code", "message"}).
    """

    body: dict | None
    warnings: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    problems: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.body is not None and not self.errors and not self.problems

    def as_json(self) -> dict:
        return {"warnings": self.warnings, "errors": self.errors, "problems": self.problems}


def _element_of(body: dict, path: str) -> str:
    """The node or flow id a validation path ("nodes/3/assign/role") is about ("" : the workflow)."""
    match = re.match(r"(nodes|flows)/(\d+)", path or "")
    items = body.get(match.group(1)) if match else None
    if not match or not isinstance(items, list) or int(match.group(2)) >= len(items):
        return ""
    item = items[int(match.group(2))]
    return item.get("id", "") if isinstance(item, dict) else ""


def check(xml: str) -> Checked:
    """Read the modeler's XML as a body and judge it: what the designer marks on the diagram."""
    body, warnings, errors = bpmn.import_xml(xml, assignable=bpmn.existing_assignment)
    if body is None:
        return Checked(None, warnings, errors)
    try:
        metadata.validate(KIND, body)
    except DefinitionValidationError as error:
        nodes = _problem_nodes(body)
        return Checked(body, warnings, [], [
            {**problem, "node": nodes.get((problem.get("path"), problem["code"], problem["message"]))
             or _element_of(body, problem.get("path", ""))} for problem in error.errors])
    return Checked(body, warnings)


def _problem_nodes(body: dict) -> dict:
    """The element each of validation.problems names, by (path, code, message): the kind's errors
    leave it out, and problems of the whole graph (unreachable, join without split) have no path."""
    from workflows import validation

    try:
        return {(problem["path"], problem["code"], problem["message"]): problem["node"]
                for problem in validation.problems(body)}
    except (KeyError, TypeError, AttributeError, ValueError):  # A body the schema refuses: paths only.
        return {}


def save(key: str, xml: str, *, author, publish: bool = False, note: str = "") -> tuple[Definition | None, Checked]:
    """Save the diagram as the draft of workflow `key` (and publish it with `publish`).

    Returns (definition, checked); definition is None when the XML is refused or has problems.
    """
    checked = check(xml)
    if not checked.ok:
        return None, checked
    store = metadata.save_and_publish if publish else metadata.save_draft
    return store(KIND, key, checked.body, author=author, note=note), checked


def check_expression(entity: str, expression: str, *, condition: bool = True) -> dict:
    """A condition or value as the builder types it: {"type", "errors": []} or {"errors": [...]},
    checked against the entity's fields and the process variables (outcome, comment)."""
    from dynamic_models import formulas, runtime
    from rbac.scopes import USER_ATTRIBUTE_TYPES
    from workflows.validation import VARIABLE_TYPES

    body = runtime.published_entity_bodies().get(entity) if entity else None
    fields = {**(formulas.expression_fields(body, database=False, formulas=True) if body else {}), **VARIABLE_TYPES}
    return editor_check(expression, fields, user=USER_ATTRIBUTE_TYPES, database=False, condition=condition)


# ---- The page's data ----

def choices() -> dict:
    """What the properties panel offers: entities, forms, workflows, roles, departments, users,
    service actions with their options."""
    from dynamic_models import runtime
    from rbac.models import Department, Role
    from workflows.registries import service_action_registry

    published = Definition.objects.filter(status=Definition.Status.PUBLISHED)
    return {
        "entities": [{"key": key, "label": body.get("label") or key}
                     for key, body in sorted(runtime.published_entity_bodies().items())],
        "forms": [{"key": key, "label": body.get("label") or key, "entity": body.get("entity") or ""}
                  for key, body in published.filter(kind="form").order_by("key").values_list("key", "body")],
        "workflows": list(published.filter(kind=KIND).order_by("key").values_list("key", flat=True)),
        "roles": [{"key": key, "label": name} for key, name in Role.objects.order_by("key").values_list("key", "name")],
        "departments": list(Department.objects.order_by("name").values_list("name", flat=True)),
        "users": list(get_user_model().objects.filter(is_active=True).order_by("username")
                      .values_list("username", flat=True)[:USERS_LISTED]),
        "actions": [{"type": action.type, "label": str(action.verbose_name or action.type), "options": list(action.options)}
                    for action in service_action_registry.get_all()],
    }


def config(definition: Definition, *, urls: dict) -> dict:
    """The designer's data, for the page's JSON script element."""
    return {"key": definition.key, "xml": export_xml(definition), "urls": urls, "choices": choices(),
            "namespace": bpmn.LC, "text": texts()}


def texts() -> dict:
    """The designer script's words, in the request's language."""
    return {
        "workflow": _("Workflow"), "label": _("Label"), "description": _("Description"), "entity": _("Entity"),
        "none": _("(none)"), "id": _("Id"), "type": _("Type"),
        "start": _("Start"), "user_task": _("User task"), "service_task": _("Service task"),
        "exclusive_gateway": _("Exclusive gateway"), "parallel_gateway": _("Parallel gateway"), "timer": _("Timer"),
        "call_activity": _("Call activity"), "end": _("End"), "flow": _("Flow"), "unsupported": _(
            "This element is not supported: replace it (wrench) with a user task, service task, gateway or event."),
        "trigger": _("Started by"), "trigger_manual": _("By hand or the API"), "trigger_form": _("A form submission"),
        "trigger_record": _("A record event"), "form": _("Form"), "record_created": _("Created"),
        "record_updated": _("Updated"), "when": _("When (condition)"),
        "task_kind": _("Task"), "approval": _("Approve or reject"), "fill_form": _("Fill a form"),
        "assign": _("Assignee"), "assign_user": _("A user"), "assign_role": _("A role (queue)"),
        "assign_department": _("A department (queue)"), "assign_manager_of": _("The manager of (user field)"),
        "assign_expression": _("An expression giving a user name"), "approvers": _("Approvers"),
        "rule_any": _("Any of them"), "rule_all": _("All of them"), "rule_n_of_m": _("N of them"), "n": _("N"),
        "deadline": _("Deadline"), "remind_after": _("Remind after (e.g. P2D)"),
        "escalate_after": _("Escalate after (e.g. P5D)"), "escalate_to": _("Escalate to"),
        "on_expiry": _("When the deadline passes"), "on_expiry_escalate": _("Escalate"),
        "on_expiry_approve": _("Approve"), "on_expiry_reject": _("Reject"),
        "action": _("Action"), "option_help": _("Text, or JSON for objects, e.g. {\"status\": \"'approved'\"}."),
        "duration": _("Wait (ISO 8601 duration, e.g. PT1H or P2D)"), "workflow_called": _("Workflow to run"),
        "outcome": _("Outcome"), "condition": _("Condition"), "condition_help": _(
            "An expression over the entity's fields, outcome and comment, e.g. amount > 1000."),
        "default_flow": _("Default path"), "is_default": _("Taken when no condition holds"),
        "flow_outcome": _("Taken when the task ends with"), "any_outcome": _("(any)"),
        "checking": _("Checking…"), "valid": _("Valid: gives %(type)s."),
        "saved": _("Draft saved (version %(version)s)."), "published": _("Published version %(version)s."),
        "has_problems": _("The workflow has problems; they are marked on the diagram."),
        "refused": _("The diagram cannot be read; see the list."), "no_problems": _("No problems."),
        "problems": _("Problems"), "warnings": _("Ignored on import"), "line": _("line %(line)s"),
        "failed": _("The server did not answer; try again."), "unsaved": _("Unsaved changes"),
        "state_live": _("Live"), "state_changed": _("Unpublished changes"),
        "imported": _("The file is open in the designer; save to keep it."),
        "select_hint": _("Select an element to edit it; nothing selected edits the workflow."),
        "approved": _("approved"), "rejected": _("rejected"), "cancelled": _("cancelled"), "completed": _("completed"),
        "palette_user_task": _("Create a user task"), "palette_service_task": _("Create a service task"),
        "palette_timer": _("Create a timer"),
    }
