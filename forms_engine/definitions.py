"""The `form` kind of metadata definition (FM-1): its JSON Schema, rules and publish check.

The body is described in /work/briefs/forms_design.md: a JSON Schema of the data, a UI spec per
field (`fields`), the `layout` (steps, groups, items on a 12-column grid) and `checks`.
"""

from __future__ import annotations

import json

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from jsonschema import Draft202012Validator

from forms_engine.widgets import widget_registry
from lowcode.expressions import ExpressionError, compile_expression
from lowcode.expressions import types as expression_types
from metadata.exceptions import DefinitionValidationError
from metadata.registries import DefinitionKind

_TEXT = {"type": "string", "maxLength": 200}
_CONDITION = {"type": "string", "maxLength": 2000}
#: The most fields a form may have.
MAX_FIELDS = 300
#: Field keys: lowercase identifiers, like entity field keys.
FIELD_KEY = r"^[a-z][a-z0-9_]{0,49}$"
#: Conditions of a field; those of groups and steps are `GROUP_CONDITIONS`.
FIELD_CONDITIONS = ("show_when", "require_when", "enable_when", "value")
GROUP_CONDITIONS = ("show_when", "enable_when")
#: The types of numbers of standalone forms as their expressions read them: up to 16 digits (6 after
#: the point), so that two multiplied stay within the 40 digits expressions compute exactly.
FORM_NUMBER = expression_types.number(10**15, 6)
FORM_INTEGER = expression_types.number(10**15)


def _field_spec_schema() -> dict:
    return {
        "type": "object", "required": ["widget"], "additionalProperties": False,
        "properties": {
            "widget": {"enum": widget_registry.get_types()},
            "label": _TEXT, "help": {"type": "string", "maxLength": 1000},
            "placeholder": _TEXT, "default": {}, "options": {"type": "object"},
            "text": {"type": "string", "maxLength": 5000},
            **dict.fromkeys(FIELD_CONDITIONS, _CONDITION),
        },
    }


def _layout_schema() -> dict:
    return {
        "type": "object", "required": ["steps"], "additionalProperties": False,
        "properties": {"steps": {"type": "array", "minItems": 1, "maxItems": 20, "items": {"$ref": "#/$defs/step"}}},
    }


def _defs() -> dict:
    width = {"type": "integer", "minimum": 1, "maximum": 12}
    return {
        "step": {"type": "object", "required": ["key", "items"], "additionalProperties": False, "properties": {
            "key": {"type": "string", "pattern": FIELD_KEY}, "label": _TEXT,
            **dict.fromkeys(GROUP_CONDITIONS, _CONDITION),
            "items": {"type": "array", "items": {"$ref": "#/$defs/item"}}}},
        "item": {"oneOf": [
            {"type": "object", "required": ["field"], "additionalProperties": False,
             "properties": {"field": {"type": "string"}, "width": width}},
            {"type": "object", "required": ["group", "items"], "additionalProperties": False, "properties": {
                "group": {"type": "string", "pattern": FIELD_KEY}, "label": _TEXT, "width": width,
                "columns": width, **dict.fromkeys(GROUP_CONDITIONS, _CONDITION),
                "items": {"type": "array", "items": {"$ref": "#/$defs/item"}}}},
        ]},
    }


def walk_items(items: list[dict], path: str, groups: tuple[dict, ...] = ()):
    """Yield (item, path, enclosing groups) for every item of a layout list, groups' items too."""
    for index, item in enumerate(items):
        item_path = f"{path}/{index}"
        yield item, item_path, groups
        if "group" in item:
            yield from walk_items(item.get("items", []), f"{item_path}/items", (*groups, item))


def data_keys(body: dict) -> list[str]:
    """The keys of the fields holding data, in layout order."""
    keys = []
    for step in body.get("layout", {}).get("steps", []):
        for item, _path, _groups in walk_items(step.get("items", []), ""):
            spec = body.get("fields", {}).get(item.get("field"))
            if spec and widget_registry.is_registered(spec["widget"]) and widget_registry.get(spec["widget"]).has_data:
                keys.append(item["field"])
    return keys


def entity_fields(body: dict) -> dict[str, dict]:
    """The field specs of a bound form's published entity, by key ({} for standalone forms)."""
    from dynamic_models import runtime

    entity = runtime.published_entity_bodies().get(body.get("entity") or "")
    return {spec["key"]: spec for spec in entity["fields"]} if entity else {}


def expression_fields(body: dict) -> dict:
    """The type of each data field as the form's expressions read it (see lowcode.expressions)."""
    from dynamic_models.registries import field_type_registry

    bound = entity_fields(body)
    result = {}
    for key, spec in body.get("fields", {}).items():
        widget = widget_registry.get(spec["widget"]) if widget_registry.is_registered(spec.get("widget", "")) else None
        if widget is None or not widget.has_data:
            continue
        if key in bound and field_type_registry.is_registered(bound[key]["type"]):
            spec = {**bound[key], "entity": body["entity"], "options": bound[key].get("options", {})}
            try:
                result[key] = field_type_registry.get(spec["type"]).expression_type(spec)
            except (LookupError, TypeError, ValueError):
                result[key] = None  # A field expressions cannot read.
            continue
        prop = body.get("schema", {}).get("properties", {}).get(key, {})
        result[key] = {
            "number": FORM_INTEGER if prop.get("type") == "integer" else FORM_NUMBER,
            "text": expression_types.TEXT, "boolean": expression_types.BOOLEAN, "date": expression_types.DATE,
            "datetime": expression_types.DATETIME, "time": expression_types.TIME,
            "list": expression_types.list_of(expression_types.TEXT),
        }[widget.value_kind]
    return result


class FormKind(DefinitionKind):
    type = "form"
    verbose_name = gettext_lazy("Form")
    bundle_parameter = "form"
    view_permissions = ("forms_engine.view_formdefinition",)
    import_permissions = ("forms_engine.add_formdefinition", "forms_engine.change_formdefinition")

    @property
    def schema(self) -> dict:
        return {
            "type": "object",
            "required": ["label", "schema", "fields", "layout"],
            "additionalProperties": False,
            "$defs": _defs(),
            "properties": {
                "label": {**_TEXT, "minLength": 1},
                "description": {"type": "string", "maxLength": 2000},
                "app": {"type": "string", "maxLength": 63, "description": "Bundles export it with its app."},
                "entity": {"type": "string", "maxLength": 40},
                "entity_pages": {"type": "boolean"},
                "public": {"type": "boolean"},
                "schema": {"type": "object"},
                "fields": {"type": "object", "maxProperties": MAX_FIELDS,
                           "propertyNames": {"pattern": FIELD_KEY}, "additionalProperties": _field_spec_schema()},
                "layout": _layout_schema(),
                "checks": {"type": "array", "maxItems": 50, "items": {
                    "type": "object", "required": ["expression", "message"], "additionalProperties": False,
                    "properties": {"expression": {**_CONDITION, "minLength": 1},
                                   "message": {"type": "string", "minLength": 1, "maxLength": 500},
                                   "field": {"type": "string"}}}},
            },
        }

    def validate(self, body: dict) -> list[dict]:
        errors = _schema_errors(body["schema"])
        if errors:
            return errors
        bound = entity_fields(body)
        if body.get("entity") and not bound:
            errors.append({"path": "entity", "code": "unknown_entity",
                           "message": _("No published entity %(key)r.") % {"key": body["entity"]}})
        if body.get("public") and body.get("entity"):
            errors.append({"path": "public", "code": "public_bound",
                           "message": _("Only a standalone form can be public: a record needs a signed-in author.")})
        if body.get("entity_pages") and not body.get("entity"):
            errors.append({"path": "entity_pages", "code": "entity_pages_standalone",
                           "message": _("Only a form bound to an entity can serve its pages.")})
        errors += _field_errors(body, bound)
        errors += _layout_errors(body)
        errors += _expression_errors(body)
        return errors

    def publish(self, definition, previous, *, author=None) -> None:
        from metadata import services as metadata

        entity = definition.body.get("entity")
        if not (entity and definition.body.get("entity_pages")):
            return
        others = [key for key, other in metadata.published_bodies("form").items()
                  if key != definition.key and other.body.get("entity") == entity and other.body.get("entity_pages")]
        if others:
            raise DefinitionValidationError([{
                "path": "entity_pages", "code": "entity_pages_taken",
                "message": _("Form %(other)s already serves the pages of %(entity)s; an entity has one such form.")
                % {"other": others[0], "entity": entity}}])

    def summarize(self, changes: list[dict]) -> list[str]:
        """Readable lines of a diff: fields by key, the schema, layout and checks as a whole."""
        lines = []
        for change in changes:
            path, op = change["path"], change["op"]
            parts = path.split(".", 2)
            if parts[0] == "fields" and len(parts) == 2 and op in ("added", "removed"):
                item = change["new"] or change["old"]
                line = (_("Added field %(key)s (%(widget)s)") if op == "added" else _("Removed field %(key)s")) % {
                    "key": parts[1], "widget": item.get("widget") if isinstance(item, dict) else ""}
            elif parts[0] == "fields" and len(parts) == 3:
                line = _("Changed field %(key)s, %(attribute)s: %(old)s → %(new)s") % {
                    "key": parts[1], "attribute": parts[2], "old": _compact(change["old"]), "new": _compact(change["new"])}
            elif parts[0] in ("schema", "layout", "checks"):
                line = {"schema": _("Changed the data schema"), "layout": _("Changed the layout"),
                        "checks": _("Changed the checks")}[parts[0]]
            else:
                line = _("Changed %(path)s: %(old)s → %(new)s") % {
                    "path": path, "old": _compact(change["old"]), "new": _compact(change["new"])}
            if line not in lines:
                lines.append(line)
        return lines

    def dependencies(self, body: dict) -> list[tuple[str, str]]:
        entity = body.get("entity") if isinstance(body, dict) else None
        return [("entity", entity)] if isinstance(entity, str) and entity else []


def _compact(value) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _schema_errors(schema: dict) -> list[dict]:
    """The data schema must be a draft 2020-12 schema of an object that server and browser check alike."""
    from forms_engine import schema_validation

    errors = [{**error, "path": "/".join(filter(None, ["schema", error["path"]]))}
              for error in schema_validation.check_schema(schema)]
    if not errors and schema.get("type") != "object":
        errors.append({"path": "schema/type", "code": "invalid_schema",
                       "message": _("The data schema must be of type object.")})
    return errors


def _field_errors(body: dict, bound: dict[str, dict]) -> list[dict]:
    properties = body["schema"].get("properties", {})
    errors = []
    for key, spec in body["fields"].items():
        path = f"fields/{key}"
        widget = widget_registry.get(spec["widget"])
        errors += [{"path": "/".join([path, "options", *map(str, e.absolute_path)]), "code": "invalid_option",
                    "message": _("Widget option: %(reason)s") % {"reason": e.message}}
                   for e in Draft202012Validator(widget.options_schema).iter_errors(spec.get("options", {}))]
        if not widget.has_data:
            if key in properties:
                errors.append({"path": path, "code": "static_with_data",
                               "message": _("A %(widget)s holds no data; remove %(key)r from the schema.")
                               % {"widget": widget.type, "key": key}})
            continue
        if key not in properties:
            errors.append({"path": path, "code": "not_in_schema",
                           "message": _("Field %(key)r has no property in the schema.") % {"key": key}})
        elif _json_types(properties[key]) - _json_types(widget.json_schema):
            errors.append({"path": f"schema/properties/{key}/type", "code": "widget_type",
                           "message": _("A %(widget)s gives %(type)s values.")
                           % {"widget": widget.type, "type": widget.json_schema["type"]}})
        if body.get("entity") and bound:
            if key not in bound:
                errors.append({"path": path, "code": "unknown_field",
                               "message": _("%(entity)s has no field %(key)r.") % {"entity": body["entity"], "key": key}})
            elif not widget.compatible(bound[key]["type"]):
                errors.append({"path": f"{path}/widget", "code": "incompatible_widget",
                               "message": _("A %(widget)s cannot edit a %(type)s field.")
                               % {"widget": widget.type, "type": bound[key]["type"]}})
        elif widget.type == "relation":
            from dynamic_models import runtime

            target = spec.get("options", {}).get("entity")
            if target not in runtime.published_entity_bodies():
                errors.append({"path": f"{path}/options/entity", "code": "unknown_entity",
                               "message": _("Choose a published entity for the relation picker.")})
    for key in sorted(set(properties) - set(body["fields"])):
        errors.append({"path": f"schema/properties/{key}", "code": "no_widget",
                       "message": _("Property %(key)r has no field in `fields`.") % {"key": key}})
    return errors


def _json_types(schema) -> set[str]:
    """The JSON types a (sub)schema names (a "number" may be an "integer"); empty: any."""
    types = schema.get("type", []) if isinstance(schema, dict) else []
    types = {types} if isinstance(types, str) else set(types)
    return types | {"integer"} if "number" in types else types


def _layout_errors(body: dict) -> list[dict]:
    errors, placed, groups = [], set(), set()
    steps = body["layout"]["steps"]
    step_keys = [step["key"] for step in steps]
    for index, key in enumerate(step_keys):
        if key in step_keys[:index]:
            errors.append({"path": f"layout/steps/{index}/key", "code": "duplicate",
                           "message": _("Two steps use the key %(key)r.") % {"key": key}})
    for step_index, step in enumerate(steps):
        for item, path, _groups in walk_items(step["items"], f"layout/steps/{step_index}/items"):
            if "group" in item:
                if item["group"] in groups:
                    errors.append({"path": f"{path}/group", "code": "duplicate",
                                   "message": _("Two groups use the key %(key)r.") % {"key": item["group"]}})
                groups.add(item["group"])
                continue
            key = item["field"]
            if key not in body["fields"]:
                errors.append({"path": f"{path}/field", "code": "unknown_field",
                               "message": _("The layout places an unknown field %(key)r.") % {"key": key}})
            elif key in placed:
                errors.append({"path": f"{path}/field", "code": "duplicate",
                               "message": _("The layout places %(key)r twice.") % {"key": key}})
            placed.add(key)
    for key in sorted(set(body["fields"]) - placed):
        errors.append({"path": f"fields/{key}", "code": "not_placed",
                       "message": _("Field %(key)r is not placed in the layout.") % {"key": key}})
    return errors


def _expression_errors(body: dict) -> list[dict]:
    """Every condition, value and check parses and reads only the form's own fields and the user."""
    from rbac.scopes import USER_ATTRIBUTE_TYPES

    fields = expression_fields(body)

    def check(source: str, path: str, *, condition: bool) -> list[dict]:
        if not source:
            return []
        try:
            compile_expression(source).check(fields, user=USER_ATTRIBUTE_TYPES, database=False, condition=condition)
        except ExpressionError as error:
            return [{"path": path, "code": getattr(error, "code", None) or "expression", "message": str(error)}]
        return []

    errors = []
    for key, spec in body["fields"].items():
        for name in FIELD_CONDITIONS:
            errors += check(spec.get(name, ""), f"fields/{key}/{name}", condition=name != "value")
    for step_index, step in enumerate(body["layout"]["steps"]):
        for name in GROUP_CONDITIONS:
            errors += check(step.get(name, ""), f"layout/steps/{step_index}/{name}", condition=True)
        for item, path, _groups in walk_items(step["items"], f"layout/steps/{step_index}/items"):
            for name in GROUP_CONDITIONS if "group" in item else ():
                errors += check(item.get(name, ""), f"{path}/{name}", condition=True)
    for index, rule in enumerate(body.get("checks", [])):
        errors += check(rule["expression"], f"checks/{index}/expression", condition=True)
        if rule.get("field") and rule["field"] not in body["fields"]:
            errors.append({"path": f"checks/{index}/field", "code": "unknown_field",
                           "message": _("Unknown field %(key)r.") % {"key": rule["field"]}})
    return errors
