"""Entity design services: the admin, commands and (later) the API call these (DM-1, DM-3).

An entity's design lives in Entity/Field rows; `entity_body()` turns it into the metadata
body that preview and publish use, and publishing writes the body back to the rows, so
after a rollback or an import the design shows what is live.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Concat
from django.utils.translation import gettext as _
from jsonschema import Draft202012Validator

from audit import services as audit
from dynamic_models import audit_actions, formulas, runtime, schema, schema_online
from dynamic_models.definitions import MAX_FIELDS
from dynamic_models.keys import KEY_RE
from dynamic_models.models import Entity, Field, SchemaMigration, new_field_id
from dynamic_models.registries import field_type_registry
from lowcode.expressions import editor_check
from metadata import services as metadata
from metadata.exceptions import DefinitionNotFound, DefinitionValidationError, MetadataError
from metadata.models import Definition

KIND = "entity"
_FIELD_FLAGS = ("required", "unique", "index", "read_only", "encrypted", "show_in_list", "filterable",
                "searchable")


def entity_body(entity: Entity, *, fields: list[Field] | None = None) -> dict:
    """Return the metadata body of an entity's current design.

    :param fields: the design's fields in order, if not those stored (a form about to save them).
    """
    body = {"key": entity.key, "label": entity.label, "label_plural": entity.label_plural,
            "description": entity.description, "app": entity.app, "fields": []}
    if entity.display_field:
        body["display_field"] = entity.display_field
    if entity.translations:
        body["translations"] = entity.translations
    if entity.rules:
        body["rules"] = entity.rules
    if entity.sensitive:
        body["sensitive"] = True
    if entity.single:
        body["single"] = True
    if entity.child_of:
        body["child_of"] = entity.child_of
    ordering = [name.strip() for name in entity.ordering.split(",") if name.strip()]
    if ordering:
        body["ordering"] = ordering
    for field in entity.fields.order_by("position", "id") if fields is None else fields:
        spec = {"id": field.uid, "key": field.key, "type": field.type, "label": field.label,
                "help_text": field.help_text, "options": field.options or {},
                **{flag: getattr(field, flag) for flag in _FIELD_FLAGS}}
        if field.default is not None:
            spec["default"] = field.default
        body["fields"].append(spec)
    return body


@transaction.atomic
def save_design(body: dict, *, published_version: int | None = None) -> Entity:
    """Write a body into the Entity/Field design rows (after publish, rollback or import)."""
    defaults = {"label": body.get("label", ""), "label_plural": body.get("label_plural", ""),
                "description": body.get("description", ""), "app": body.get("app", ""),
                "display_field": body.get("display_field", ""), "ordering": ",".join(body.get("ordering", [])),
                "translations": body.get("translations", {}), "rules": body.get("rules", []),
                "sensitive": body.get("sensitive", False), "single": body.get("single", False),
                "child_of": body.get("child_of", {})}
    if published_version is not None:
        defaults["published_version"] = published_version
    entity, _created = Entity.objects.update_or_create(key=body["key"], defaults=defaults)
    wanted = {spec["id"]: (position, spec) for position, spec in enumerate(body["fields"])}
    entity.fields.exclude(uid__in=wanted).delete()
    existing = {field.uid: field for field in entity.fields.all()}
    # Park every kept key first: swapping two keys would otherwise collide on the unique constraint.
    entity.fields.update(key=Concat(Value("_tmp_"), "uid"))
    changed, created = [], []
    for uid, (position, spec) in wanted.items():
        field = existing.get(uid) or Field(entity=entity, uid=uid)
        for name, value in {"key": spec["key"], "label": spec.get("label", ""), "type": spec["type"],
                            "position": position, "default": spec.get("default"),
                            "help_text": spec.get("help_text", ""), "options": spec.get("options", {}),
                            **{flag: spec.get(flag, Field._meta.get_field(flag).default) for flag in _FIELD_FLAGS}
                            }.items():
            setattr(field, name, value)
        (changed if field.pk else created).append(field)
    if changed:
        Field.objects.bulk_update(changed, ["key", "label", "type", "position", "default", "help_text", "options",
                                            *_FIELD_FLAGS])
    Field.objects.bulk_create(created)
    return entity


def validate_design(entity: Entity) -> dict:
    """Return the design's body, or raise DefinitionValidationError."""
    body = entity_body(entity)
    metadata.validate(KIND, body)
    return body


def preview(entity: Entity, *, data_changes: dict | None = None) -> dict:
    """Show what publishing the design would do: operations, SQL and data impact, no change.

    :param data_changes: what to do with rows the change would damage, as publish() takes them.
    """
    body = validate_design(entity)
    published = metadata.get_published(KIND, entity.key)
    with transaction.atomic():
        result = schema.plan(published.body if published else None, body, execute=False, data_changes=data_changes)
        transaction.set_rollback(True)  # Introspection only; make sure nothing sticks.
    data = result.as_dict()
    # Rows a new formula would give no value: reported, never blocking.
    data["impact"] += formulas.formula_impact(published.body if published else None, body)
    data["refused"] = any(item["blocking"] for item in data["impact"])
    data["from_version"] = published.version if published else None
    data["summary"] = _summary(published.body if published else None, body)
    return data


def _summary(old: dict | None, new: dict) -> list[str]:
    from metadata.diff import diff
    from metadata.registries import definition_kind_registry

    if old is None:
        return [_("Create table dm_%(key)s with %(count)d fields.") % {"key": new["key"], "count": len(new["fields"])}]
    return definition_kind_registry.get(KIND).summarize(diff(old, new))


def publish(entity: Entity, *, author=None, note: str = "", expected_version: int | None = None,
            data_changes: dict | None = None) -> SchemaMigration:
    """Validate, migrate and publish the design as a new version; return its migration.

    :param data_changes: what to do with rows the change would otherwise damage, by field key:
        {"category": {"value_map": {"meals": "other"}}} stores another value (or null) in rows
        holding a removed choice; {"project": {"clear": true}} empties a relation that now leads
        to another entity. Without them, such a change is refused (MigrationRefused).
    """
    body = entity_body(entity)  # Validated by save_and_publish, once.
    with schema_online.online(entity.key, body, author=author, data_changes=data_changes), transaction.atomic(), \
            schema.publishing_with(entity.key, data_changes):
        definition = metadata.save_and_publish(KIND, entity.key, body, author=author, note=note,
                                               expected_version=expected_version)
        schema.run_last()
        return _migration_to(entity.key, definition.version)


def _migration_to(entity_key: str, version: int) -> SchemaMigration:
    """The migration that published `version` (not an attempt at it that failed)."""
    return SchemaMigration.objects.get(entity_key=entity_key, to_version=version, status=SchemaMigration.Status.APPLIED)


def normalize_body(body: dict) -> dict:
    """Return `body` with every field flag present, as entity_body() writes them.

    Hand-written and imported bodies may omit defaults; stored normalized, the published body
    equals the design rows it produces, so "pending changes" means real changes.
    """
    fields = []
    for spec in body.get("fields", []):
        if not isinstance(spec, dict):
            return body  # Malformed: validation will say why.
        fields.append({"label": "", "help_text": "", "options": {},
                       **{flag: Field._meta.get_field(flag).default for flag in _FIELD_FLAGS}, **spec})
    defaults = {"label": "", "label_plural": "", "description": "", "app": ""}
    return {**defaults, **body, "fields": fields}


def publish_body(body: dict, *, author=None, note: str = "") -> SchemaMigration:
    """Publish a body directly (imports, commands): the design rows follow it."""
    body = normalize_body(body)
    with schema_online.online(body.get("key"), body, author=author), transaction.atomic(), \
            schema.publishing_with(body.get("key"), None):
        definition = metadata.save_and_publish(KIND, body["key"], body, author=author, note=note)
        schema.run_last()
        return _migration_to(body["key"], definition.version)


def rollback(entity_key: str, *, to_version: int | None = None, author=None) -> SchemaMigration:
    """Re-publish the previous (or a given) version; data of the fields it drops is kept."""
    with transaction.atomic():
        definition = metadata.rollback(KIND, entity_key, to_version=to_version, author=author)
        migration = _migration_to(entity_key, definition.version)
        SchemaMigration.objects.filter(entity_key=entity_key, to_version=migration.from_version,
                                       status=SchemaMigration.Status.APPLIED).update(
            status=SchemaMigration.Status.ROLLED_BACK)
        return migration


def purge(entity_key: str) -> list[str]:
    """Drop the kept columns of removed fields of an entity."""
    if metadata.get_published(KIND, entity_key) is None:
        raise DefinitionNotFound(_("Entity %(key)s is not published.") % {"key": entity_key})
    return schema.purge_removed(entity_key)


def eject(entity_key: str, *, version: int | None = None) -> dict[str, str]:
    """Return the migration that produced `version` (default: live) as Django code."""
    from dynamic_models.eject import eject as eject_migration

    migrations = SchemaMigration.objects.exclude(status__in=[SchemaMigration.Status.PREPARING,
                                                            SchemaMigration.Status.FAILED]).filter(entity_key=entity_key)
    migration = migrations.filter(to_version=version).first() if version else migrations.first()
    if migration is None:
        raise DefinitionNotFound(_("Entity %(key)s has no migration to version %(version)s.")
                                 % {"key": entity_key, "version": version or "-"})
    return eject_migration(migration)


def entity_status() -> list[dict]:
    """Every designed or published entity with its versions, rows and removed columns."""
    published = runtime.published_entity_bodies()
    rows = []
    for entity in Entity.objects.all():
        draft_body = entity_body(entity)
        live = published.get(entity.key)
        rows.append({"key": entity.key, "label": entity.label, "published_version": entity.published_version,
                     "fields": len(draft_body["fields"]),
                     "pending_changes": design_state(entity, draft_body, published=published) != DesignState.LIVE,
                     "rows": runtime.get_model(entity.key).all_objects.count() if live else None,
                     "removed_columns": len(schema.removed_columns(entity.key)) if live else 0})
    return rows


__all__ = ["DefinitionValidationError", "eject", "entity_body", "entity_status", "preview", "publish",
           "publish_body", "purge", "rollback", "save_design", "validate_design"]


# Designing through the metadata API (DM-5): whole bodies or one field at a time. Every
# change is validated like a publish would be, so a design saved here can be previewed.


class DesignConflict(MetadataError):
    """A design change that the entity's state refuses (deleting a published entity)."""


def design_detail(entity: Entity) -> dict:
    """Return the design's body, complete, with its published version and whether it differs."""
    body = entity_body(entity)
    return {"display_field": "", "ordering": [], "translations": {}, "rules": [], **body,
            "published_version": entity.published_version,
            "pending_changes": design_state(entity, body) != DesignState.LIVE}


class DesignState:
    """How a design stands to its live version."""

    NEW = "new"  # Never published.
    CHANGED = "changed"  # Published, with unpublished changes.
    LIVE = "live"  # As published.


def design_state(entity: Entity, body: dict | None = None, *, published: dict | None = None) -> str:
    """Whether the design of `entity` (its body, if computed already) is new, changed or live.

    :param published: the published bodies by key (`runtime.published_entity_bodies()`), when
        asking for many entities; else the entity's published version is read.
    """
    if published is not None:
        live = published.get(entity.key)
    else:
        definition = metadata.get_published(KIND, entity.key)
        live = definition.body if definition else None
    if live is None:
        return DesignState.NEW
    return DesignState.LIVE if live == (body or entity_body(entity)) else DesignState.CHANGED


def design_errors(body: dict) -> list[dict]:
    """Why the design `body` could not be published, as {"path", "code", "message"}; [] if it could.

    The admin checks a design before it saves it, as the API does: an invalid design is refused
    when it is saved, not later at the preview.
    """
    try:
        metadata.validate(KIND, normalize_body(body))
    except DefinitionValidationError as error:
        return error.errors
    return []


def can_roll_back(entity_key: str) -> bool:
    """Whether the live version of the entity has an earlier version to go back to."""
    published = metadata.get_published(KIND, entity_key)
    return published is not None and Definition.objects.filter(
        kind=KIND, key=entity_key, status=Definition.Status.ARCHIVED, version__lt=published.version).exists()


def discard_changes(entity: Entity, *, author=None, request=None) -> Entity:
    """Put the design back as its live version, dropping its unpublished changes (audited).

    :raises DesignConflict: the entity was never published (delete the design instead).
    :raises PermissionDenied: `author` may not design.
    """
    if author is not None and not metadata.may_design(author):
        raise PermissionDenied(_("Only designers (staff users with designer access) change definitions."))
    with transaction.atomic():
        entity = Entity.objects.select_for_update().get(pk=entity.pk)
        published = metadata.get_published(KIND, entity.key)
        if published is None:
            raise DesignConflict(_("%(key)s was never published: there is no live version to go back to; delete "
                                   "the design instead.") % {"key": entity.key})
        dropped = _summary(published.body, entity_body(entity))
        entity = save_design(published.body, published_version=published.version)
        audit.record(audit_actions.DESIGN_DISCARD, target=entity, actor=author, request=request,
                     data={"version": published.version, "dropped": dropped})
    return entity


def unpublished_summary(entity: Entity) -> list[str]:
    """The design's changes since its live version, in words (what discarding would drop)."""
    published = metadata.get_published(KIND, entity.key)
    return _summary(published.body, entity_body(entity)) if published else []


def check_expression(entity_key: str, fields: list, expression: str) -> dict:
    """What a formula editor shows while the builder types: {"type": "a number"} or {"errors": [...]}.

    :param fields: the design's fields as the editor has them (unsaved); those whose spec is not
        valid yet are left out, so the expression is checked against the others.
    """
    # No more than a design may have: the check stays cheap.
    body = {"key": entity_key, "fields": [spec for spec in fields[:MAX_FIELDS] if _usable_in_expressions(spec)]}
    return editor_check(expression, formulas.expression_fields(body, database=True))


def _usable_in_expressions(spec) -> bool:
    """A field spec whose key, type and options are valid, so its expression type can be known."""
    if not isinstance(spec, dict) or not isinstance(spec.get("key"), str) or not KEY_RE.match(spec["key"]) \
            or not field_type_registry.is_registered(str(spec.get("type"))) or not isinstance(spec.get("options"), dict):
        return False
    field_type = field_type_registry.get(spec["type"])
    return not any(Draft202012Validator(field_type.options_schema).iter_errors(spec["options"]))


def entity_overview() -> list[dict]:
    """entity_status() with each entity's app."""
    apps = dict(Entity.objects.values_list("key", "app"))
    return [{**row, "app": apps.get(row["key"], "")} for row in entity_status()]


def _with_field_ids(body, entity: Entity | None):
    """Give each field spec without an id the id of the design's field of the same key, or a new one."""
    if not isinstance(body, dict) or not isinstance(body.get("fields"), list):
        return body  # Malformed: validation will say why.
    uids = dict(entity.fields.values_list("key", "uid")) if entity is not None else {}
    fields = []
    for spec in body["fields"]:
        if isinstance(spec, dict) and "id" not in spec:
            key = spec.get("key")
            spec = {"id": (uids.get(key) if isinstance(key, str) else None) or new_field_id(), **spec}
        fields.append(spec)
    return {**body, "fields": fields}


def create_design(body: dict) -> Entity:
    """Create the design of a new entity from a full body; fields without an id get one.

    :raises DefinitionValidationError: the body is invalid, or an entity of its key exists.
    """
    body = _with_field_ids(body, None)
    metadata.validate(KIND, body)
    with transaction.atomic():
        if Entity.objects.filter(key=body["key"]).exists() or \
                Definition.objects.filter(kind=KIND, key=body["key"]).exists():
            raise DefinitionValidationError([{"path": "key", "code": "unique", "message": _(
                "An entity with the key %(key)r exists already.") % {"key": body["key"]}}])
        return save_design(body)


def replace_design(entity: Entity, body: dict) -> Entity:
    """Replace an entity's design with a full body (its key cannot change).

    A field without an id keeps the id of the design's field of the same key, so its data stays.

    :raises DefinitionValidationError: the body is invalid or names another key.
    """
    if isinstance(body, dict) and "key" not in body:
        body = {**body, "key": entity.key}
    with transaction.atomic():
        entity = Entity.objects.select_for_update().get(pk=entity.pk)
        body = _with_field_ids(body, entity)
        metadata.validate(KIND, body)
        if body["key"] != entity.key:
            raise DefinitionValidationError([{"path": "key", "code": "immutable", "message": _(
                "The key names the table and cannot change; create another entity instead.")}])
        return save_design(body)


def delete_design(entity: Entity) -> None:
    """Delete a design that was never published.

    :raises DesignConflict: the entity has published versions (its table holds data).
    """
    with transaction.atomic():
        if entity.published_version is not None or Definition.objects.filter(kind=KIND, key=entity.key).exclude(
                status=Definition.Status.DRAFT).exists():
            raise DesignConflict(_("%(key)s is published: its table and records exist, so its design cannot be "
                                   "deleted. Remove fields and publish instead.") % {"key": entity.key})
        Definition.objects.filter(kind=KIND, key=entity.key, status=Definition.Status.DRAFT).delete()
        entity.delete()


def _field_index(body: dict, field_key: str) -> int:
    for index, spec in enumerate(body["fields"]):
        if spec["key"] == field_key:
            return index
    raise DefinitionNotFound(_("Entity %(entity)s has no field %(key)r.") % {"entity": body["key"], "key": field_key})


def _relative_errors(errors: list[dict], prefix: str) -> list[dict]:
    """Make the paths of errors under `prefix` relative to it ("fields/3/key" -> "key")."""
    result = []
    for error in errors:
        path = error["path"]
        if path == prefix or path.startswith(prefix + "/"):
            path = path[len(prefix) + 1:]
        result.append({**error, "path": path})
    return result


def _save_field(body: dict, index: int) -> dict:
    """Validate and save a body changed at field `index`; return that field as stored."""
    try:
        metadata.validate(KIND, body)
    except DefinitionValidationError as error:
        raise DefinitionValidationError(_relative_errors(error.errors, f"fields/{index}")) from None
    field_id = body["fields"][index]["id"]
    entity = save_design(body)
    return next(spec for spec in entity_body(entity)["fields"] if spec["id"] == field_id)


def get_field(entity: Entity, field_key: str) -> dict:
    """Return one field spec of the design.

    :raises DefinitionNotFound: the design has no such field.
    """
    body = entity_body(entity)
    return body["fields"][_field_index(body, field_key)]


def add_field(entity: Entity, spec: dict) -> dict:
    """Append a field to the design; return it as stored (with a new id unless it has one).

    :raises DefinitionValidationError: the design with this field is invalid; the field's
        own errors have paths relative to it ("key", "options/max_length").
    """
    with transaction.atomic():
        entity = Entity.objects.select_for_update().get(pk=entity.pk)
        body = entity_body(entity)
        if isinstance(spec, dict) and "id" not in spec:
            spec = {"id": new_field_id(), **spec}
        body["fields"].append(spec)
        return _save_field(body, len(body["fields"]) - 1)


def update_field(entity: Entity, field_key: str, changes: dict) -> dict:
    """Change some attributes of a field of the design (a new key renames it; data stays).

    :raises DefinitionNotFound: the design has no such field.
    :raises DefinitionValidationError: the changed design is invalid, or `changes` alters the id.
    """
    if not isinstance(changes, dict):
        raise DefinitionValidationError([{"path": "", "code": "type", "message": _("Expected a JSON object.")}])
    with transaction.atomic():
        entity = Entity.objects.select_for_update().get(pk=entity.pk)
        body = entity_body(entity)
        index = _field_index(body, field_key)
        if "id" in changes and changes["id"] != body["fields"][index]["id"]:
            raise DefinitionValidationError([{"path": "id", "code": "immutable", "message": _(
                "A field's id cannot change: it links the field to its column.")}])
        body["fields"][index] = {**body["fields"][index], **changes}
        return _save_field(body, index)


def remove_field(entity: Entity, field_key: str) -> None:
    """Remove a field from the design; publishing keeps its column until a purge.

    :raises DefinitionNotFound: the design has no such field.
    :raises DefinitionValidationError: the design without it is invalid (the display field, ...).
    """
    with transaction.atomic():
        entity = Entity.objects.select_for_update().get(pk=entity.pk)
        body = entity_body(entity)
        del body["fields"][_field_index(body, field_key)]
        metadata.validate(KIND, body)
        save_design(body)
