"""The `entity` kind of metadata definition: its JSON Schema, rules and publish hook."""

from __future__ import annotations

import json
import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from jsonschema import Draft202012Validator

from dynamic_models import formulas
from dynamic_models.keys import ENTITY_KEY_MAX, FIELD_KEY_MAX, key_errors
from dynamic_models.registries import field_type_registry
from metadata.registries import DefinitionKind

_TEXT = {"type": "string", "maxLength": 200}
#: The most fields an entity may have.
MAX_FIELDS = 300


def field_schema() -> dict:
    return {
        "type": "object",
        "required": ["id", "key", "type"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "pattern": "^[a-z0-9]{6,32}$"},
            "key": {"type": "string"},
            "type": {"enum": field_type_registry.get_types()},
            "label": _TEXT,
            "help_text": {"type": "string", "maxLength": 500},
            "required": {"type": "boolean"},
            "unique": {"type": "boolean"},
            "index": {"type": "boolean"},
            "default": {},
            "read_only": {"type": "boolean"},
            "encrypted": {"type": "boolean"},
            "show_in_list": {"type": "boolean"},
            "filterable": {"type": "boolean"},
            "searchable": {"type": "boolean"},
            "options": {"type": "object"},
        },
    }


def rule_schema() -> dict:
    """A cross-field rule (DM-6): the record is refused when `expression` is false."""
    return {
        "type": "object",
        "required": ["key", "expression", "message"],
        "additionalProperties": False,
        "properties": {
            "key": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,39}$"},
            "expression": {"type": "string", "minLength": 1, "maxLength": 2000},
            "message": {"type": "string", "minLength": 1, "maxLength": 500},
            "field": {"type": "string", "description": "The field the error is shown on; else the whole record."},
            "translations": {"type": "object", "propertyNames": {"enum": [code for code, _name in settings.LANGUAGES]},
                             "additionalProperties": {"type": "string", "maxLength": 500}},
        },
    }


class EntityKind(DefinitionKind):
    type = "entity"
    verbose_name = gettext_lazy("Entity")
    bundle_parameter = "entity"
    view_permissions = ("dynamic_models.view_entity",)
    import_permissions = ("dynamic_models.add_entity", "dynamic_models.change_entity")

    @property
    def schema(self) -> dict:
        return {
            "type": "object",
            "required": ["key", "fields"],
            "additionalProperties": False,
            "properties": {
                "key": {"type": "string"},
                "label": _TEXT,
                "label_plural": _TEXT,
                "description": {"type": "string", "maxLength": 2000},
                "app": {"type": "string", "maxLength": 63},
                "sensitive": {"type": "boolean", "description": "Reads through API keys are audited."},
                "single": {"type": "boolean", "description": "Settings: exactly one record."},
                "child_of": {
                    "type": "object", "required": ["relation", "order_field"], "additionalProperties": False,
                    "description": "Ordered child rows edited inline in their parent (dynamic_models.children).",
                    "properties": {"relation": {"type": "string"}, "order_field": {"type": "string"}},
                },
                "display_field": {"type": "string"},
                "ordering": {"type": "array", "maxItems": 5, "items": {"type": "string"}},
                "translations": {
                    "type": "object",
                    "propertyNames": {"enum": [code for code, _name in settings.LANGUAGES]},
                    "additionalProperties": {
                        "type": "object", "additionalProperties": False,
                        "properties": {"label": _TEXT, "label_plural": _TEXT,
                                       "fields": {"type": "object", "additionalProperties": _TEXT}},
                    },
                },
                "fields": {"type": "array", "maxItems": MAX_FIELDS, "items": field_schema()},
                "rules": {"type": "array", "maxItems": 50, "items": rule_schema()},
            },
        }

    def validate(self, body: dict) -> list[dict]:
        from dynamic_models import runtime

        errors = [{"path": "key", **error}
                  for error in key_errors(body["key"], what="entity", max_length=ENTITY_KEY_MAX)]
        entity_keys = set(runtime.published_entity_bodies()) | {body["key"]}
        field_keys = {f["key"] for f in body["fields"]}
        seen_keys, seen_ids = set(), set()
        for index, spec in enumerate(body["fields"]):
            path = f"fields/{index}"
            errors += [{"path": f"{path}/key", **error}
                       for error in key_errors(spec["key"], what="field", max_length=FIELD_KEY_MAX)]
            if spec["key"] in seen_keys:
                errors.append({"path": f"{path}/key", "code": "duplicate",
                               "message": _("Two fields use the key %(key)r.") % {"key": spec["key"]}})
            if spec["id"] in seen_ids:
                errors.append({"path": f"{path}/id", "code": "duplicate", "message": _("Two fields share one id.")})
            seen_keys.add(spec["key"])
            seen_ids.add(spec["id"])
            field_type = field_type_registry.get(spec["type"])
            options_validator = Draft202012Validator(field_type.options_schema)
            option_errors = [{"path": f"{path}/options/{'/'.join(map(str, e.absolute_path))}".rstrip("/"),
                              "code": e.validator, "message": option_error_message(e)}
                             for e in options_validator.iter_errors(spec.get("options", {}))]
            errors += option_errors
            if not option_errors:
                errors += [{**e, "path": f"{path}/{e['path'].replace('.', '/')}"}
                           for e in field_type.validate_spec({**spec, "options": spec.get("options", {})},
                                                             entity_keys, field_keys)]
            if spec.get("encrypted") and not field_type.can_encrypt:
                errors.append({"path": f"{path}/encrypted", "code": "encrypted",
                               "message": _("A %(type)s field cannot be encrypted.") % {"type": spec["type"]}})
            if spec.get("encrypted") and (spec.get("searchable") or spec.get("filterable")):
                errors.append({"path": f"{path}/encrypted", "code": "encrypted",
                               "message": _("An encrypted field is found by exact value only: it cannot be "
                                            "searchable or filterable.")})
            if spec.get("unique") and not field_type.can_be_unique:
                errors.append({"path": f"{path}/unique", "code": "unique",
                               "message": _("A %(type)s field cannot be unique.") % {"type": spec["type"]}})
        for code, texts in body.get("translations", {}).items():
            for name in sorted(set(texts.get("fields", {})) - field_keys):
                errors.append({"path": f"translations/{code}/fields/{name}", "code": "unknown_field",
                               "message": _("Unknown field %(key)r.") % {"key": name}})
        for name in ("display_field",):
            if body.get(name) and body[name] not in field_keys:
                errors.append({"path": name, "code": "unknown_field",
                               "message": _("Unknown field %(key)r.") % {"key": body[name]}})
        errors += _rule_errors(body.get("rules", []), field_keys)
        errors += _child_of_errors(body)
        errors += formulas.expression_errors(body)
        errors += formulas.related_errors(body)
        errors += _default_errors(body)
        errors += _column_errors(body)
        errors += _read_only_errors(body)
        published = runtime.published_entity_bodies()
        errors += _database_name_errors(body, published)
        errors += _change_errors(body, published.get(body["key"]))
        for index, name in enumerate(body.get("ordering", [])):
            if name.lstrip("-") not in field_keys | {"id", "created_at", "updated_at"}:
                errors.append({"path": f"ordering/{index}", "code": "unknown_field",
                               "message": _("Unknown field %(key)r.") % {"key": name}})
        return [_naming_the_field(error, body["fields"]) for error in errors]

    def publish(self, definition, previous, *, author=None) -> None:
        from dynamic_models import schema, services

        schema.apply_entity_version(definition, previous, author=author)
        services.save_design(definition.body, published_version=definition.version)

    def dependencies(self, body: dict) -> list[tuple[str, str]]:
        """Return the entities this one relates to (other than itself): they are published first."""
        result = []
        fields = body.get("fields") if isinstance(body, dict) else None
        for spec in fields if isinstance(fields, list) else []:
            if not isinstance(spec, dict) or not field_type_registry.is_registered(str(spec.get("type"))):
                continue
            options = spec.get("options")
            target = options.get("target") if isinstance(options, dict) else None
            if field_type_registry.get(spec["type"]).is_relation and isinstance(target, str) \
                    and target != body.get("key") and ("entity", target) not in result:
                result.append(("entity", target))
            # A rollup or count over `entity.field` (a relation pointing here) reads that entity.
            source, _dot, _field = str(options.get("relation", "") if isinstance(options, dict) else "").rpartition(".")
            if source and source != body.get("key") and ("entity", source) not in result:
                result.append(("entity", source))
        return result

    def without_dependencies(self, body: dict, dependencies: set[tuple[str, str]]) -> dict:
        """`body` without its relations to `dependencies` and what reads them (formulas, rules,
        the display field, ordering, translations): its table can be created before theirs."""
        targets = {key for kind, key in dependencies if kind == self.type}
        dropped = {spec["key"] for spec in body["fields"] if field_type_registry.is_registered(spec["type"])
                   and field_type_registry.get(spec["type"]).is_relation
                   and (spec.get("options") or {}).get("target") in targets}
        for spec in body["fields"]:  # What reads a dropped field or entity goes too (formulas read no formulas).
            source = str((spec.get("options") or {}).get("relation", "")).rpartition(".")[0]
            if spec["key"] not in dropped and (dropped & formulas.references(spec) or source in targets):
                dropped.add(spec["key"])
        result = {**body, "fields": [spec for spec in body["fields"] if spec["key"] not in dropped]}
        result["rules"] = [rule for rule in body.get("rules", []) if rule.get("field") not in dropped
                           and not dropped & formulas.expression_references(rule.get("expression"))]
        if body.get("display_field") in dropped:
            result.pop("display_field")
        if (body.get("child_of") or {}).get("relation") in dropped:
            result.pop("child_of")  # Back with the relation, in the second step.
        result["ordering"] = [name for name in body.get("ordering", []) if name.lstrip("-") not in dropped]
        result["translations"] = {code: {**texts, "fields": {name: text for name, text in texts.get("fields", {}).items()
                                                             if name not in dropped}}
                                  for code, texts in body.get("translations", {}).items()}
        return {name: value for name, value in result.items() if value or name in body}

    def preview(self, body: dict, *, key: str, published) -> dict:
        """Preview publishing `body` as services.preview() does for a design, changing nothing.

        Conflicts: rows the migration would refuse, a published entity of the same key that
        shares no field with `body`, and an unpublished design that the import would overwrite.
        """
        from django.db import transaction

        from dynamic_models import services
        from dynamic_models.models import Entity

        with transaction.atomic():
            existing = Entity.objects.filter(key=key).first()
            pending = services.entity_body(existing) if existing is not None else None
            # Compare designs as rows store them: a hand-written body may omit defaults.
            live = services.entity_body(services.save_design(published.body)) if published else None
            entity = services.save_design(body)
            incoming = services.entity_body(entity)
            result = services.preview(entity)
            transaction.set_rollback(True)
        conflicts = [item["message"] for item in result["impact"] if item["blocking"]]
        live_ids = {spec["id"] for spec in published.body["fields"]} if published else set()
        if live_ids and not live_ids & {spec["id"] for spec in body["fields"]}:
            # Fields are matched by id: none in common means another entity under the same key,
            # and "updating" would retire every field it has.
            conflicts.append(_("%(key)s here is a different entity (no field in common with the bundle's); "
                               "importing would replace all its fields.") % {"key": key})
        if pending is not None and pending not in (live, incoming):
            conflicts.append(_("The design of %(key)s has unpublished changes that the import would overwrite; "
                               "publish or discard them first.") % {"key": key})
        return {**result, "conflicts": conflicts}

    def normalize(self, body: dict) -> dict:
        from dynamic_models import services

        return services.normalize_body(body)

    def summarize(self, changes: list[dict]) -> list[str]:
        lines = []
        for change in changes:
            path, op = change["path"], change["op"]
            field = re.fullmatch(r"fields\[(\w+)\](?:\.(.+))?", path)
            if field and field[2] is None and op in ("added", "removed"):
                item = change["new"] or change["old"]
                verb = _("Added field") if op == "added" else _("Removed field")
                lines.append(f"{verb} {item['key']} ({item['type']})")
            elif field and field[2] == "key":
                lines.append(_("Renamed field %(old)s to %(new)s") % {"old": change["old"], "new": change["new"]})
            elif field:
                lines.append(_("Changed field %(key)s, %(attribute)s: %(old)s → %(new)s") % {
                    "key": field[1], "attribute": field[2], "old": _compact(change["old"]),
                    "new": _compact(change["new"])})
            elif op == "reordered":
                lines.append(_("Reordered fields"))
            else:
                lines.append(_("Changed %(path)s: %(old)s → %(new)s")
                             % {"path": path, "old": _compact(change["old"]), "new": _compact(change["new"])})
        return lines


#: Options of the built-in field types in words, for messages and the designer's widgets.
OPTION_LABELS = {
    "max_length": gettext_lazy("maximum length"), "min_length": gettext_lazy("minimum length"),
    "regex": gettext_lazy("pattern"), "min": gettext_lazy("minimum"), "max": gettext_lazy("maximum"),
    "exclusive_min": gettext_lazy("minimum excluded"), "max_digits": gettext_lazy("digits in all"),
    "decimal_places": gettext_lazy("decimal places"), "not_in_future": gettext_lazy("not in the future"),
    "choices": gettext_lazy("choices"), "prefix": gettext_lazy("prefix"), "digits": gettext_lazy("digits"),
    "on_delete": gettext_lazy("when the related record is deleted"),
    "acting_user_on_create": gettext_lazy("set to the acting user on create"),
    "target": gettext_lazy("related entity"), "cardinality": gettext_lazy("cardinality"),
    "expression": gettext_lazy("expression"), "allowed_types": gettext_lazy("allowed file types"),
    "max_size": gettext_lazy("maximum size in bytes"), "multiple": gettext_lazy("several files"),
    "value": gettext_lazy("value"), "label": gettext_lazy("label"), "color": gettext_lazy("colour"),
    "currency": gettext_lazy("currency"), "currency_field": gettext_lazy("field holding the currency"),
    "region": gettext_lazy("phone region"), "pattern": gettext_lazy("pattern"),
    "entities": gettext_lazy("entities it may link to"),
}
#: What a missing required option asks the builder to do.
_MISSING_OPTION = {
    "choices": gettext_lazy("add at least one choice."),
    "target": gettext_lazy("choose the entity it relates to."),
    "expression": gettext_lazy("write its expression."),
}
_JSON_TYPES = {
    "integer": gettext_lazy("a whole number"), "number": gettext_lazy("a number"),
    "boolean": gettext_lazy("yes or no (true or false)"), "string": gettext_lazy("text"),
    "array": gettext_lazy("a list"), "object": gettext_lazy("an object"),
}


def option_label(name) -> str:
    return str(OPTION_LABELS.get(name, str(name).replace("_", " ")))


def option_error_message(error) -> str:
    """A JSON Schema error of a field's options in words naming the option ("add at least one
    choice.", "the option “maximum length” must be at least 1."), not as a schema path."""
    path = list(error.absolute_path)
    kind, limit = error.validator, error.validator_value
    if kind == "required":
        missing = [name for name in limit if name not in error.instance][:1] or limit[:1]
        return str(_MISSING_OPTION.get(missing[0], "")) or _("the option “%(option)s” is required.") % {
            "option": option_label(missing[0])}
    if kind == "minItems" and path == ["choices"]:
        return str(_MISSING_OPTION["choices"])
    if kind == "additionalProperties":
        known = set(error.schema.get("properties", {}))
        return _("unknown option %(names)s.") % {
            "names": ", ".join(f"“{name}”" for name in sorted(set(error.instance) - known))}
    subject = _("the option “%(option)s”") % {"option": option_label(path[0])} if path else _("the options")
    if len(path) > 1:  # Inside a list option: "choices", item 2, "value".
        subject = ", ".join([subject, *(_("item %(number)d") % {"number": part + 1} if isinstance(part, int)
                                        else f"“{option_label(part)}”" for part in path[1:])])
    sentences = {
        "type": lambda: _("%(subject)s must be %(type)s.") % {
            "subject": subject, "type": _JSON_TYPES.get(limit if isinstance(limit, str) else "", limit)},
        "enum": lambda: _("%(subject)s must be one of: %(values)s.") % {
            "subject": subject, "values": ", ".join(str(value) for value in limit)},
        "minimum": lambda: _("%(subject)s must be at least %(limit)s.") % {"subject": subject, "limit": limit},
        "maximum": lambda: _("%(subject)s must be at most %(limit)s.") % {"subject": subject, "limit": limit},
        "minLength": lambda: _("%(subject)s must not be empty.") % {"subject": subject} if limit == 1 else
        _("%(subject)s must have at least %(limit)s characters.") % {"subject": subject, "limit": limit},
        "maxLength": lambda: _("%(subject)s must have at most %(limit)s characters.")
        % {"subject": subject, "limit": limit},
        "maxItems": lambda: _("%(subject)s may hold at most %(limit)s items.") % {"subject": subject, "limit": limit},
        "uniqueItems": lambda: _("%(subject)s lists an item twice.") % {"subject": subject},
        "pattern": lambda: _("%(subject)s has characters it may not have.") % {"subject": subject},
    }
    return sentences[kind]() if kind in sentences else f"{subject}: {error.message}"


def _naming_the_field(error: dict, fields: list[dict]) -> dict:
    """Start the message of an error about a field with the field's name: the admin shows it in a
    list of errors, and the API's path ("fields/3/options") is no name for a person."""
    match = re.match(r"fields/(\d+)(/|$)", error["path"])
    if not match:
        return error
    spec = fields[int(match[1])]
    name = spec.get("label") or spec.get("key") or _("number %(number)d") % {"number": int(match[1]) + 1}
    return {**error, "message": _("Field “%(field)s”: %(message)s") % {"field": name, "message": error["message"]}}


def _compact(value) -> str:
    """Show a JSON value as a builder wrote it (`["travel", "meals"]` for choice lists)."""
    if isinstance(value, list) and all(isinstance(item, dict) and "value" in item for item in value):
        value = [item["value"] for item in value]
    return json.dumps(value, ensure_ascii=False, default=str)


def _rule_errors(rules: list[dict], field_keys: set[str]) -> list[dict]:
    """Duplicate keys and unknown fields of rules; their expressions are checked with the formulas."""
    errors, seen = [], set()
    for index, rule in enumerate(rules):
        path = f"rules/{index}"
        if rule["key"] in seen:
            errors.append({"path": f"{path}/key", "code": "duplicate",
                           "message": _("Two rules use the key %(key)r.") % {"key": rule["key"]}})
        seen.add(rule["key"])
        if rule.get("field") and rule["field"] not in field_keys:
            errors.append({"path": f"{path}/field", "code": "unknown_field",
                           "message": _("Unknown field %(key)r.") % {"key": rule["field"]}})
    return errors


def _child_of_errors(body: dict) -> list[dict]:
    """The option `child_of` names a many-to-one relation of the entity (to its parent) and an integer
    field holding the children's order."""
    option = body.get("child_of")
    if not option:
        return []
    specs = {spec["key"]: spec for spec in body["fields"]}
    errors = []
    relation = specs.get(option["relation"])
    if relation is None:
        errors.append({"path": "child_of/relation", "code": "unknown_field", "message": _(
            "Child of: unknown relation %(key)r.") % {"key": option["relation"]}})
    elif relation["type"] != "relation" \
            or (relation.get("options") or {}).get("cardinality", "many_to_one") != "many_to_one":
        errors.append({"path": "child_of/relation", "code": "not_many_to_one", "message": _(
            "Child of: %(key)r is not a many-to-one relation to the parent entity.") % {"key": option["relation"]}})
    order = specs.get(option["order_field"])
    if order is None or order["type"] != "integer":
        errors.append({"path": "child_of/order_field", "code": "order_field", "message": _(
            "Child of: the order field %(key)r must be an integer field of this entity.") % {
            "key": option["order_field"]}})
    return errors


def _column_errors(body: dict) -> list[dict]:
    """Field keys that another field's column or attribute takes: `project_id` beside the relation `project`."""
    taken = {}  # column or attribute name -> key of the field that has it
    for spec in body["fields"]:
        field_type = field_type_registry.get(spec["type"])
        if not field_type.has_column:
            continue
        try:
            model_field = field_type.get_model_field({**spec, "entity": body["key"], "options": spec.get("options", {})})
        except (LookupError, TypeError, ValueError):
            continue  # Invalid options: their own errors say why.
        model_field.set_attributes_from_name(spec["key"])
        for name in {model_field.attname, model_field.column} - {spec["key"], None}:
            taken.setdefault(name, spec["key"])
    return [{"path": f"fields/{index}/key", "code": "duplicate",
             "message": _("%(key)r is taken by field %(other)s: its column in the database.")
             % {"key": spec["key"], "other": taken[spec["key"]]}}
            for index, spec in enumerate(body["fields"]) if spec["key"] in taken]


#: PostgreSQL cuts longer identifiers to this many bytes (NAMEDATALEN - 1): two names alike so far are one.
IDENTIFIER_MAX_BYTES = 63


def _relation_names(body: dict, field_types: dict) -> list[tuple[str, str, str]]:
    """The tables and sequences named after the keys of `body`, as (path, name, what); they share
    one namespace in the schema (a sequence cannot take a table's name).

    :param field_types: the registry's field types by name, asked once for all the bodies.
    """
    names = [("key", f"dm_{body['key']}", _("table"))]
    for index, spec in enumerate(body["fields"]):
        options = spec.get("options") or {}
        field_type = field_types.get(spec["type"])
        if field_type is None:  # A plugin's type, the plugin disabled since: it names nothing new.
            continue
        if field_type.is_relation and options.get("cardinality") == "many_to_many":
            names.append((f"fields/{index}/key", f"dm_{body['key']}_{spec['key']}", _("link table")))
        sequence = field_type.sequence_name(body["key"], spec["key"])
        if sequence:
            names.append((f"fields/{index}/key", sequence, _("sequence")))
    return names


def _database_name_errors(body: dict, published: dict[str, dict]) -> list[dict]:
    """Tables and sequences the design would name as another entity's (or longer than PostgreSQL
    keeps, where two names sharing their first 63 bytes become one), found before any SQL runs.

    A name the entity's published version has already is left alone: it exists as it is.
    """
    field_types = {field_type.type: field_type for field_type in field_type_registry.get_all()}
    owners = {}  # name -> (what, entity) owning it in another entity; in words for an error only
    for key, other in published.items():
        if key != body["key"]:
            for _path, name, what in _relation_names(other, field_types):
                owners[name] = (what, key)
    live = {name for _path, name, _what in _relation_names(published[body["key"]], field_types)} \
        if body["key"] in published else set()
    errors, seen = [], {}
    for path, name, what in _relation_names(body, field_types):
        size = len(name.encode())
        if size > IDENTIFIER_MAX_BYTES and name not in live:
            errors.append({"path": path, "code": "too_long", "message": _(
                "its %(what)s would be named %(name)s, %(size)d characters; PostgreSQL keeps %(max)d: "
                "shorten the key by %(excess)d characters.") % {
                "what": what, "name": name, "size": size, "max": IDENTIFIER_MAX_BYTES,
                "excess": size - IDENTIFIER_MAX_BYTES}})
        elif name in owners or name in seen:
            errors.append({"path": path, "code": "table_taken", "message": _(
                "its %(what)s would be named %(name)s, which is already %(owner)s: choose another key.") % {
                "what": what, "name": name, "owner": _("the %(what)s of entity %(entity)s") % {
                    "what": owners[name][0], "entity": owners[name][1]} if name in owners else seen[name]}})
        seen.setdefault(name, _("the %(what)s of another field") % {"what": what})
    return errors


def _change_errors(body: dict, live: dict | None) -> list[dict]:
    """Changes from the published version that no migration can make.

    A relation cannot turn from one record into many (or back): its ids live in a column, the
    many in a link table. A field cannot take the key of another that stays when a table or a
    sequence is named after the key (a link table, an auto number's sequence): renamed in turn,
    the first rename would meet the other's name.
    """
    if live is None:
        return []
    live_specs = {spec["id"]: spec for spec in live["fields"]}
    staying = {live_specs[spec["id"]]["key"]: spec for spec in body["fields"] if spec["id"] in live_specs}
    errors = []
    for index, spec in enumerate(body["fields"]):
        old = live_specs.get(spec["id"])
        if old is None:
            continue
        if _many(old) != _many(spec):
            path = "options/cardinality" if spec["type"] == old["type"] else "type"
            errors.append({"path": f"fields/{index}/{path}", "code": "cardinality", "message": _(
                "it cannot change between one related record and many (%(old)s → %(new)s): add a new field "
                "and remove this one.") % {"old": _cardinality(old), "new": _cardinality(spec)}})
        other = staying.get(spec["key"])
        if spec["key"] != old["key"] and other is not None and other["id"] != spec["id"] \
                and (_named_after_key(spec, body["key"]) or _named_after_key(other, body["key"])):
            errors.append({"path": f"fields/{index}/key", "code": "swapped_keys", "message": _(
                "it takes the key %(key)s, which the field now named %(other)s still has in the database (a "
                "table or sequence is named after it): rename one of them to a free key, publish, then rename "
                "again.") % {"key": spec["key"], "other": other["key"]}})
    return errors


def _many(spec: dict) -> bool:
    return field_type_registry.get(spec["type"]).is_relation and \
        (spec.get("options") or {}).get("cardinality") == "many_to_many"


def _cardinality(spec: dict) -> str:
    if not field_type_registry.get(spec["type"]).is_relation:
        return spec["type"]
    return (spec.get("options") or {}).get("cardinality", "many_to_one").replace("_", "-")


def _named_after_key(spec: dict, entity_key: str) -> bool:
    return _many(spec) or bool(field_type_registry.get(spec["type"]).sequence_name(entity_key, spec["key"]))


def _read_only_errors(body: dict) -> list[dict]:
    """A required field that nobody may fill (read-only, no default): no record could ever be created."""
    errors = []
    for index, spec in enumerate(body["fields"]):
        field_type = field_type_registry.get(spec["type"])
        if spec.get("required") and spec.get("read_only") and spec.get("default") is None \
                and field_type.has_column and not field_type.filled_by_database \
                and not (spec.get("options") or {}).get("acting_user_on_create"):
            errors.append({"path": f"fields/{index}/read_only", "code": "required_read_only", "message": _(
                "a required field that is read-only needs a default: else no record can be created.")})
    return errors


def _default_errors(body: dict) -> list[dict]:
    """Defaults that their field cannot hold ("abc" for an integer): publishing would fail on them."""
    errors = []
    for index, spec in enumerate(body["fields"]):
        field_type = field_type_registry.get(spec["type"])
        if spec.get("default") is None or not field_type.has_column or field_type.is_relation:
            continue
        try:
            model_field = field_type.get_model_field({**spec, "default": None})
        except (LookupError, TypeError, ValueError):
            continue  # The type needs more context to build its field (auto numbers): not a default's fault.
        if model_field.is_relation:
            continue
        try:
            model_field.clean(field_type.to_python(spec["default"]), None)
        except ValidationError as error:
            message = " ".join(error.messages)
        except (ValueError, TypeError, ArithmeticError):
            message = _("Not a valid %(type)s value.") % {"type": field_type.verbose_name}
        else:
            continue
        errors.append({"path": f"fields/{index}/default", "code": "invalid_default",
                       "message": _("Invalid default: %(message)s") % {"message": message}})
    return errors
