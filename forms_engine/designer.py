"""The form designer (FM-5): what its page draws with (widgets and their options schemas, the
entities a form may bind to with their fields, the functions conditions may call, translated
texts) and the services its admin views call: start a form, save, publish, check a condition,
preview. The page's scripts are static/lowcode/designer/shell.js and static/forms_engine/designer.js.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _

from dynamic_models import runtime
from dynamic_models.keys import key_errors
from forms_engine import starters
from lowcode.expressions import editor_check, function_registry
from metadata import services as metadata
from metadata.exceptions import DefinitionValidationError
from metadata.models import Definition

KIND = "form"
KEY_MAX = 63


def blank() -> dict:
    """An empty form: one step, no field."""
    return {"label": _("New form"), "description": "", "entity": "", "public": False,
            "schema": {"type": "object", "properties": {}, "required": []}, "fields": {},
            "layout": {"steps": [{"key": "step_1", "label": _("Step 1"), "items": []}]}, "checks": []}


def starting_body(start: str) -> dict:
    """The body a new form starts from: "blank", "template:<name>" or "entity:<entity key>".

    :raises ValueError: naming what is unknown.
    """
    from forms_engine import services  # formscore's; imported late: it imports the renderer.

    kind, _sep, name = start.partition(":")
    if kind == "blank" and not name:
        return blank()
    if kind == "template" and name in starters.STARTERS:
        return starters.starter(name)
    if kind == "entity" and name in runtime.published_entity_bodies():
        return services.form_from_entity(name)
    raise ValueError(_("There is no template or entity %(name)r to start from.") % {"name": start})


def free_key(base: str) -> str:
    """`base`, or `base_2`, `base_3`... : the first key no form has yet."""
    taken = set(Definition.objects.filter(kind=KIND, key__startswith=base).values_list("key", flat=True))
    key, number = base, 1
    while key in taken:
        number += 1
        key = f"{base}_{number}"
    return key


@dataclass
class Started:
    definition: Definition | None
    errors: dict  # {"key" or "start": [{"code", "message"}]}, empty when started.


def start_form(start: str, key: str, *, author) -> Started:
    """Create the draft of a new form from `start` (see starting_body), under `key` (empty: one
    made from the template's or entity's name)."""
    try:
        body = starting_body(start)
    except ValueError as error:
        return Started(None, {"start": [{"code": "invalid", "message": str(error)}]})
    key = key.strip() or free_key(start.partition(":")[2] or "form")
    errors = key_errors(key, what=_("form"), max_length=KEY_MAX)
    if not errors and Definition.objects.filter(kind=KIND, key=key).exists():
        errors = [{"code": "unique", "message": _("A form with the key %(key)r exists already.") % {"key": key}}]
    if errors:
        return Started(None, {"key": errors})
    try:
        return Started(metadata.save_draft(KIND, key, body, author=author), {})
    except DefinitionValidationError as error:  # A template or generated form the rules refuse: a bug, said clearly.
        return Started(None, {"start": error.errors})


def body_errors(body) -> list[dict]:
    """The `form` kind's verdict on `body`: [{"path", "code", "message"}], empty when valid."""
    if not isinstance(body, dict):
        return [{"path": "", "code": "type", "message": _("The form must be a JSON object.")}]
    try:
        metadata.validate(KIND, body)
    except DefinitionValidationError as error:
        return error.errors
    return []


def save(key: str, body: dict, *, author, publish: bool = False, note: str = "") -> Definition:
    """Save `body` as the draft of form `key`, and publish it with `publish`.

    :raises DefinitionValidationError: with the kind's errors, nothing saved.
    """
    if publish:
        return metadata.save_and_publish(KIND, key, body, author=author, note=note)
    return metadata.save_draft(KIND, key, body, author=author, note=note)


def entity_fields() -> list[dict]:
    """The published entities a form may bind to, each with the fields a form may edit as "form
    from entity" makes them (key, label, the field's spec and schema, required): the designer's
    entity picker and the palette of the bound entity's fields."""
    from forms_engine import services  # formscore's; imported late: it imports the renderer.

    entities = []
    for key, entity in sorted(runtime.published_entity_bodies().items()):
        generated = services.form_from_entity(key)
        entities.append({"key": key, "label": entity.get("label") or key, "fields": [
            {"key": name, "label": spec.get("label") or name, "spec": spec,
             "schema": generated["schema"]["properties"][name], "required": name in generated["schema"]["required"]}
            for name, spec in generated["fields"].items()]})
    return entities


def config(key: str, body: dict, *, urls: dict) -> dict:
    """The designer's data, for the page's JSON script element."""
    from forms_engine.widgets import widget_registry

    return {
        "key": key, "body": body, "urls": urls,
        "widgets": {widget.type: {"label": str(widget.verbose_name), "schema": widget.options_schema,
                                  "data": widget.json_schema if widget.has_data else None,
                                  "field_types": list(widget.field_types)}
                    for widget in widget_registry.get_all()},
        "entities": entity_fields(),
        "functions": sorted(function.type for function in function_registry.get_all()
                            if function.argument_kinds is not None),
        "text": texts(),
    }


def texts() -> dict:
    """The designer script's words, in the request's language."""
    return {
        "form": _("Form"), "widgets": _("Widgets"), "step": _("Step"), "group": _("Group"), "field": _("Field"),
        "new_step": _("New step"), "new_group": _("New group"),
        "remove": _("Remove"), "label": _("Label"), "key": _("Key"), "required": _("Required"), "help": _("Help"),
        "placeholder": _("Placeholder"), "default": _("Default"), "width": _("Width (of 12 columns)"),
        "widget": _("Widget"), "rules": _("Rules"), "options": _("Widget options"), "choices": _("Choices"),
        "choices_help": _("One value per line; the form stores the value."), "conditions": _("Conditions"),
        "show_when": _("Shown when"), "require_when": _("Required when"), "enable_when": _("Enabled when"),
        "value": _("Value (computed)"), "condition_help": _("Empty: always. An expression over the form's fields, "
                                                            "e.g. amount > 1000."),
        "insert_field": _("Insert a field…"), "insert_function": _("Insert a function…"), "checking": _("Checking…"),
        "valid": _("Valid: gives %(type)s."), "min_length": _("Shortest length"), "max_length": _("Longest length"),
        "pattern": _("Pattern (regular expression)"), "minimum": _("Minimum"), "maximum": _("Maximum"),
        "exclusive_minimum": _("More than"), "exclusive_maximum": _("Less than"),
        "min_items": _("Fewest items"), "max_items": _("Most items"), "move_to": _("Move to"),
        "move_help": _("Drag to reorder or to another step or group; or Alt+Up and Alt+Down on the item."),
        "palette_help": _("Drag a widget onto a step, or select it to add it after the selected item."),
        "description": _("Description"), "entity": _("Bound to entity"), "standalone": _("(none: standalone)"),
        "entity_pages": _("Use for the entity's pages"), "public": _("Public (no sign-in)"),
        "checks": _("Cross-field checks"), "add_check": _("Add a check"), "expression": _("Expression"),
        "message": _("Message"), "check_field": _("Shown on field"), "text": _("Text"),
        "saved": _("Draft saved (version %(version)s)."), "published": _("Published version %(version)s."),
        "errors": _("The form has errors; fix what is marked."), "json_invalid": _("This is not valid JSON: %(error)s"),
        "json_applied": _("The JSON is applied."), "no_fields": _("Drop widgets here."),
        "key_taken": _("Another field has this key."), "key_invalid": _(
            "A key starts with a lowercase letter and holds only lowercase letters, digits and underscores."),
        "state_live": _("Live"), "state_changed": _("Unpublished changes"), "state_new": _("Not published"),
        "failed": _("The server did not answer; try again."),
    }


def check_condition(body, expression: str, *, condition: bool = True) -> dict:
    """What a condition editor shows as the builder types: {"type": ..., "errors": []} or
    {"errors": [{"code", "message", "position"}]}, checked against the form's own fields."""
    from forms_engine.definitions import expression_fields
    from rbac.scopes import USER_ATTRIBUTE_TYPES

    try:
        fields = expression_fields(body)
    except (AttributeError, KeyError, TypeError):  # A body being edited may be malformed: no fields then.
        fields = {}
    return editor_check(expression, fields, user=USER_ATTRIBUTE_TYPES, database=False, condition=condition)


def preview(key: str, body: dict, *, request) -> str:
    """The form `body` rendered as its users will see it (formscore's renderer)."""
    from forms_engine import rendering, services

    return rendering.render(services.Form(key, body), request=request)
