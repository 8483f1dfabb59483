"""Entity design services: the admin, commands and (later) the API call these (DM-1, DM-3).

An entity's design lives in Entity/Field rows; `entity_body()` turns it into the metadata
body that preview and publish use, and publishing writes the body back to the rows, so
after a rollback or an import the design shows what is live.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Concat
from django.utils import timezone
from django.utils.translation import gettext as _

from dynamic_models import runtime, schema
from dynamic_models.models import Entity, Field, SchemaMigration
from metadata import services as metadata
from metadata.exceptions import DefinitionNotFound, DefinitionValidationError

KIND = "entity"
_FIELD_FLAGS = ("required", "unique", "index", "read_only", "encrypted", "show_in_list", "filterable",
                "searchable")


def entity_body(entity: Entity) -> dict:
    """Return the metadata body of an entity's current design."""
    body = {"key": entity.key, "label": entity.label, "label_plural": entity.label_plural,
            "description": entity.description, "app": entity.app, "fields": []}
    if entity.display_field:
        body["display_field"] = entity.display_field
    if entity.translations:
        body["translations"] = entity.translations
    ordering = [name.strip() for name in entity.ordering.split(",") if name.strip()]
    if ordering:
        body["ordering"] = ordering
    for field in entity.fields.order_by("position", "id"):
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
                "translations": body.get("translations", {})}
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


def preview(entity: Entity) -> dict:
    """Show what publishing the design would do: operations, SQL and data impact, no change."""
    body = validate_design(entity)
    published = metadata.get_published(KIND, entity.key)
    with transaction.atomic():
        result = schema.plan(published.body if published else None, body, execute=False)
        transaction.set_rollback(True)  # Introspection only; make sure nothing sticks.
    data = result.as_dict()
    data["from_version"] = published.version if published else None
    data["summary"] = _summary(published.body if published else None, body)
    return data


def _summary(old: dict | None, new: dict) -> list[str]:
    from metadata.diff import diff
    from metadata.registries import definition_kind_registry

    if old is None:
        return [_("Create table dm_%(key)s with %(count)d fields.") % {"key": new["key"], "count": len(new["fields"])}]
    return definition_kind_registry.get(KIND).summarize(diff(old, new))


def publish(entity: Entity, *, author=None, note: str = "", expected_version: int | None = None) -> SchemaMigration:
    """Validate, migrate and publish the design as a new version; return its migration."""
    body = validate_design(entity)
    with transaction.atomic():
        metadata.save_draft(KIND, entity.key, body, author=author, note=note)
        definition = metadata.publish(KIND, entity.key, author=author, note=note, expected_version=expected_version)
        return SchemaMigration.objects.get(entity_key=entity.key, to_version=definition.version)


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
    with transaction.atomic():
        metadata.save_draft(KIND, body["key"], body, author=author, note=note)
        definition = metadata.publish(KIND, body["key"], author=author, note=note)
        return SchemaMigration.objects.get(entity_key=body["key"], to_version=definition.version)


def rollback(entity_key: str, *, to_version: int | None = None, author=None) -> SchemaMigration:
    """Re-publish the previous (or a given) version; data of the fields it drops is kept."""
    with transaction.atomic():
        definition = metadata.rollback(KIND, entity_key, to_version=to_version, author=author)
        migration = SchemaMigration.objects.get(entity_key=entity_key, to_version=definition.version)
        SchemaMigration.objects.filter(entity_key=entity_key, to_version=migration.from_version).update(
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

    migrations = SchemaMigration.objects.filter(entity_key=entity_key)
    migration = migrations.filter(to_version=version).first() if version else migrations.first()
    if migration is None:
        raise DefinitionNotFound(_("Entity %(key)s has no migration to version %(version)s.")
                                 % {"key": entity_key, "version": version or "-"})
    return eject_migration(migration)


def restore_records(queryset) -> int:
    """Bring soft-deleted records of `queryset` back; return how many (DM-7)."""
    return queryset.filter(deleted_at__isnull=False).update(deleted_at=None, updated_at=timezone.now())


def purge_records(queryset) -> int:
    """Delete the soft-deleted records of `queryset` for good; relations' on-delete rules apply.

    :raises ProtectedError: a protecting relation still points at one of them.
    """
    count, _by_model = queryset.filter(deleted_at__isnull=False).delete()
    return count


def entity_status() -> list[dict]:
    """Every designed or published entity with its versions, rows and removed columns."""
    published = runtime.published_entity_bodies()
    rows = []
    for entity in Entity.objects.all():
        draft_body = entity_body(entity)
        live = published.get(entity.key)
        rows.append({"key": entity.key, "label": entity.label, "published_version": entity.published_version,
                     "fields": len(draft_body["fields"]), "pending_changes": live != draft_body if live else True,
                     "rows": runtime.get_model(entity.key).all_objects.count() if live else None,
                     "removed_columns": len(schema.removed_columns(entity.key)) if live else 0})
    return rows


__all__ = ["DefinitionValidationError", "eject", "entity_body", "entity_status", "preview", "publish",
           "publish_body", "purge", "purge_records", "restore_records", "rollback", "save_design", "validate_design"]
