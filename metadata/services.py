"""Definition lifecycle: draft -> publish -> archive -> roll back (MD-1, MD-2, MD-3).

Every domain app stores its designs through these functions; a kind's `publish` hook makes a
version live inside the same transaction (an entity publish runs its schema migration).
"""

from __future__ import annotations

import hashlib
import json
import uuid

from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Case, Exists, F, Func, JSONField, Max, OuterRef, Subquery, Value, When
from django.utils.translation import gettext as _
from django_tenants.utils import get_tenant_model
from jsonschema import Draft202012Validator

from audit import services as audit
from metadata import audit_actions as metadata_actions
from metadata.diff import diff
from metadata.exceptions import DefinitionNotFound, DefinitionValidationError, PublishConflict
from metadata.models import Definition
from metadata.registries import definition_kind_registry
from metadata.signals import definition_published

Status = Definition.Status


def checksum(body: dict) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate(kind: str, body: dict) -> None:
    """Raise DefinitionValidationError unless `body` satisfies the kind's schema and rules."""
    definition_kind = definition_kind_registry.get(kind)
    validator = Draft202012Validator(definition_kind.schema)
    errors = _null_characters(body) or [
        {"path": "/".join(str(p) for p in error.absolute_path), "code": error.validator, "message": error.message}
        for error in sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
    ]
    if not errors:
        errors = definition_kind.validate(body)
    if errors:
        raise DefinitionValidationError(errors)


def _null_characters(value, path: str = "") -> list[dict]:
    """Text holding NUL, which PostgreSQL cannot store (text or jsonb)."""
    if isinstance(value, str):
        return [{"path": path, "code": "null_characters_not_allowed",
                 "message": _("Null characters are not allowed.")}] if "\x00" in value else []
    if isinstance(value, dict):
        return [error for name, item in value.items()
                for error in _null_characters(name, path) + _null_characters(item, f"{path}/{name}".lstrip("/"))]
    if isinstance(value, list):
        return [error for index, item in enumerate(value) for error in _null_characters(item, f"{path}/{index}".lstrip("/"))]
    return []


_designer_checks: list = []


def add_designer_check(check) -> None:
    """Add a test `check(user) -> bool` a designer must pass besides being staff (rbac's
    `designer.access`, added by the app that wires rbac in: metadata imports no rbac)."""
    _designer_checks.append(check)


def may_design(user) -> bool:
    """Whether `user` may change definitions: staff passing every designer check (none added: nobody)."""
    return bool(user is not None and user.is_authenticated and user.is_staff and _designer_checks
                and all(check(user) for check in _designer_checks))


def _check_author(author) -> None:
    """Refuse a change by an author who may not design; None is the system (seed data, commands)."""
    if author is not None and not may_design(author):
        raise PermissionDenied(_("Only designers (staff users with designer access) change definitions."))


def save_draft(kind: str, key: str, body: dict, *, author=None, note: str = "") -> Definition:
    """Create or replace the draft of (kind, key) after validating it."""
    _check_author(author)
    validate(kind, body)
    return _store_draft(kind, key, body, author=author, note=note)


def _store_draft(kind: str, key: str, body: dict, *, author, note: str) -> Definition:
    with transaction.atomic():
        draft = Definition.objects.select_for_update().filter(kind=kind, key=key, status=Status.DRAFT).first()
        if draft is None:
            latest = Definition.objects.filter(kind=kind, key=key).aggregate(v=Max("version"))["v"] or 0
            draft = Definition(kind=kind, key=key, version=latest + 1, status=Status.DRAFT)
        draft.body = body
        draft.checksum = checksum(body)
        draft.author = author
        draft.change_note = note
        draft.save()
    return draft


def get_published(kind: str, key: str) -> Definition | None:
    return Definition.objects.filter(kind=kind, key=key, status=Status.PUBLISHED).first()


def get_draft(kind: str, key: str) -> Definition | None:
    return Definition.objects.filter(kind=kind, key=key, status=Status.DRAFT).first()


def current(kind: str, key: str) -> Definition | None:
    """What a designer opens: the draft, else the published version, else the newest."""
    rank = Case(When(status=Status.DRAFT, then=0), When(status=Status.PUBLISHED, then=1), default=2)
    return Definition.objects.filter(kind=kind, key=key).order_by(rank, "-version").first()


def listed(kind: str, queryset):
    """`queryset` down to one row per `kind` definition (its newest version), annotated with the
    published version (`published_version`) and whether it has a draft (`has_draft`)."""
    same_key = Definition.objects.filter(kind=kind, key=OuterRef("key"))
    newest = same_key.values("key").annotate(newest=Max("version")).values("newest")
    return queryset.filter(kind=kind, version=Subquery(newest)).annotate(
        published_version=Subquery(same_key.filter(status=Status.PUBLISHED).values("version")[:1]),
        has_draft=Exists(same_key.filter(status=Status.DRAFT)))


def versions(kind: str, key: str) -> list[Definition]:
    """Every version of a definition, newest first, with its author."""
    return list(Definition.objects.filter(kind=kind, key=key).select_related("author").order_by("-version"))


def get_version(kind: str, key: str, version: int) -> Definition:
    try:
        return Definition.objects.get(kind=kind, key=key, version=version)
    except Definition.DoesNotExist:
        raise DefinitionNotFound(_("%(kind)s %(key)s has no version %(version)s.")
                                 % {"kind": kind, "key": key, "version": version}) from None


def lock_tenant_metadata() -> None:
    """Take the tenant's publish lock for this transaction, or raise PublishConflict at once.

    One publish at a time per tenant: a second one fails clearly instead of waiting and then
    applying a migration computed against a schema that changed under it.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(hashtext('lowcode.publish'), hashtext(%s))",
                       [connection.schema_name])
        if not cursor.fetchone()[0]:
            raise PublishConflict(_("Another publish is running in this workspace; try again when it has finished."))


def save_and_publish(kind: str, key: str, body: dict, *, author=None, note: str = "",
                     expected_version: int | None = None) -> Definition:
    """Save `body` as the draft of (kind, key) and publish it, in one transaction.

    The tenant's publish lock is taken before the draft is touched: two publishes at once
    would otherwise both number a new draft version, and the slower one would fail on the
    version's unique constraint instead of getting PublishConflict. `body` is validated once,
    here, not again as the draft it becomes.
    """
    _check_author(author)
    validate(kind, body)
    with transaction.atomic():
        lock_tenant_metadata()
        _store_draft(kind, key, body, author=author, note=note)
        return _publish_draft(kind, key, author=author, note=note, expected_version=expected_version, validated=True)


def publish(kind: str, key: str, *, author=None, note: str = "", expected_version: int | None = None) -> Definition:
    """Publish the draft of (kind, key) as its new live version; archive the previous one.

    :param expected_version: the published version the caller previewed against; if another
        publish happened since, raise PublishConflict instead of applying a stale plan.
    """
    _check_author(author)
    return _publish_draft(kind, key, author=author, note=note, expected_version=expected_version, validated=False)


def preview_body(kind: str, key: str, body: dict) -> dict:
    """Describe what publishing `body` as (kind, key) would change, changing nothing (the kind's
    `preview` hook): at least `summary` lines and `conflicts`, the reasons to refuse it."""
    return definition_kind_registry.get(kind).preview(body, key=key, published=get_published(kind, key))


def import_body(kind: str, key: str, body: dict, *, author=None, note: str = "") -> Definition:
    """Publish an imported `body` as the new live version of (kind, key), as the kind stores it."""
    body = definition_kind_registry.get(kind).normalize(body)
    return save_and_publish(kind, key, body, author=author, note=note)


def _publish_draft(kind, key, *, author, note, expected_version, validated: bool) -> Definition:
    """:param validated: the draft's body was validated in this transaction already."""
    definition_kind = definition_kind_registry.get(kind)
    tenant = connection.tenant
    tokens = tenant.definition_versions
    try:
        return _publish(definition_kind, kind, key, author=author, note=note, expected_version=expected_version,
                        validated=validated)
    except BaseException:
        tenant.definition_versions = tokens  # Rolled back: so are the tokens set in memory.
        raise


def _publish(definition_kind, kind, key, *, author, note, expected_version, validated) -> Definition:
    with transaction.atomic():
        lock_tenant_metadata()
        draft = Definition.objects.select_for_update().filter(kind=kind, key=key, status=Status.DRAFT).first()
        if draft is None:
            raise DefinitionNotFound(_("%(kind)s %(key)s has no draft to publish.") % {"kind": kind, "key": key})
        if not validated:  # A stored draft: the rules may depend on definitions published since.
            validate(kind, draft.body)
        previous = Definition.objects.select_for_update().filter(
            kind=kind, key=key, status=Status.PUBLISHED).first()
        current = previous.version if previous else 0  # 0: nothing published yet.
        if expected_version is not None and current != expected_version:
            raise PublishConflict(_("%(key)s was published by someone else since you previewed it (now version "
                                    "%(version)s); preview again.") % {"key": key, "version": current or "-"})
        if previous:
            previous.flow.archive()
            previous.save(update_fields=["status", "updated_at"])
        draft.flow.publish()
        draft.author = author or draft.author
        draft.change_note = note or draft.change_note
        draft.save()
        definition_kind.publish(draft, previous, author=author)
        audit.record(metadata_actions.PUBLISH.of(kind), target_type=f"metadata.{kind}", target_id=key,
                     target_repr=str(draft.body.get("label") or key), actor=author,
                     data={"version": draft.version, "previous_version": current or None, "note": draft.change_note})
        _bump_definition_version(kind)
        schema_name = connection.schema_name
        transaction.on_commit(lambda: definition_published.send(
            sender=Definition, kind=kind, key=key, version=draft.version, schema_name=schema_name))
    return draft


def rollback(kind: str, key: str, *, to_version: int | None = None, author=None) -> Definition:
    """Publish an older version's body again, as a new version (MD-2).

    Without `to_version`, go back to the version published before the current one.
    """
    _check_author(author)
    current = get_published(kind, key)
    if current is None:
        raise DefinitionNotFound(_("%(kind)s %(key)s is not published.") % {"kind": kind, "key": key})
    if to_version is None:
        older = Definition.objects.filter(kind=kind, key=key, status=Status.ARCHIVED,
                                          version__lt=current.version).order_by("-version").first()
        if older is None:
            raise DefinitionNotFound(_("%(key)s has no earlier version to roll back to.") % {"key": key})
    else:
        older = get_version(kind, key, to_version)
    with transaction.atomic():
        published = save_and_publish(kind, key, older.body, author=author, expected_version=current.version,
                                     note=_("Roll back to version %(version)s") % {"version": older.version})
        audit.record(metadata_actions.ROLLBACK.of(kind), target_type=f"metadata.{kind}", target_id=key,
                     target_repr=str(published.body.get("label") or key), actor=author,
                     data={"version": published.version, "from_version": current.version, "to_version": older.version})
    return published


def archive(kind: str, key: str) -> None:
    """Take (kind, key) out of service: its published version becomes archived."""
    with transaction.atomic():
        published = Definition.objects.select_for_update().filter(kind=kind, key=key, status=Status.PUBLISHED).first()
        if published is not None:
            published.flow.archive()
            published.save(update_fields=["status", "updated_at"])
        _bump_definition_version(kind)


def compare(kind: str, key: str, old_version: int, new_version: int) -> dict:
    """Diff two versions: {"changes": [...], "summary": [...]}."""
    old, new = get_version(kind, key, old_version), get_version(kind, key, new_version)
    changes = diff(old.body, new.body)
    return {"changes": changes, "summary": definition_kind_registry.get(kind).summarize(changes)}


def _bump_definition_version(kind: str) -> None:
    """Give `kind` a new token in the tenant row (`definition_versions`); every process rebuilds
    its runtime of that kind, and only that kind, on its next request."""
    token = str(uuid.uuid4())
    tenant = connection.tenant
    # Merged into the row's current JSON, not written from this copy of it: the copy may miss
    # another kind's newer token.
    get_tenant_model().objects.filter(pk=tenant.pk).update(definition_versions=Func(
        F("definition_versions"), Value({kind: token}, output_field=JSONField()), template="%(expressions)s",
        arg_joiner=" || "))
    # At once, not on commit: the rest of this transaction (an import publishing several
    # entities) must see the new state. Other connections load the row and see it on commit.
    tenant.definition_versions = {**tenant.definition_versions, kind: token}


def published_bodies(kind: str) -> dict[str, Definition]:
    """Return the current tenant's published definitions of `kind`, by key."""
    return {d.key: d for d in Definition.objects.filter(kind=kind, status=Status.PUBLISHED)}
