"""Record services (DM-7): the one write path of runtime records, as admin, the API, bulk
writes, imports and restores of a version make it, with its audit event in the same
transaction (AD-1, AD-3), and the one way to read a record's history.

Every service takes the acting `user` (None only for the system: seed data, migrations) and
checks it first (RB-4, RB-5): the data scope of the action and its conditions, on the record as
it was and as it will be; read-only, masked and hidden fields unchanged; owner fields set by
the server. A caller cannot skip what the service checks.
"""

from __future__ import annotations

import copy
import datetime
import html
import json
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import formats, timezone
from django.utils.html import strip_tags
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from guardian.conf import settings as guardian_settings

from audit import services as audit
from audit.models import AuditEvent
from dynamic_models import audit_actions as dm_actions
from dynamic_models import file_fields, signals, validation
from dynamic_models.encryption import EncryptedTextField
from lowcode.tenancy import quotas
from rbac import columns as rbac_columns
from rbac import services as rbac

#: What the audit trail stores instead of a value encrypted at rest.
ENCRYPTED = "<encrypted>"
_SYSTEM = {"id", "created_at", "updated_at", "created_by", "updated_by", "deleted_at"}


def _json(value):
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _json_value(field: models.Field, value):
    return ENCRYPTED if isinstance(field, EncryptedTextField) else _json(value)


def values(record: models.Model) -> dict:
    """The record's stored field values as JSON (relations as ids, files as ids and names), system
    columns left out."""
    specs = file_fields.file_specs(type(record))
    result = {field.name: _json_value(field, field.value_from_object(record))
              for field in record._meta.concrete_fields if field.name not in _SYSTEM and field.name not in specs}
    for key, (field_type, spec) in specs.items():
        result[key] = file_fields.audit_value(file_fields.current_files(record, key), field_type.is_multiple(spec))
    return result


def _loaded_values(record: models.Model) -> dict:
    """The record's values when it was loaded (by attname); read again if it was built by hand."""
    loaded = getattr(record, "loaded_values", None)
    if loaded is None:
        names = [field.attname for field in record._meta.concrete_fields]
        loaded = dict(zip(names, type(record).all_objects.filter(pk=record.pk).values_list(*names).get(), strict=True))
    return loaded


def _action(record: models.Model, verb: str) -> str:
    return dm_actions.RECORD_ACTIONS[verb].of(record._meta.model_name)


def _as_loaded(record: models.Model, loaded: dict) -> models.Model:
    """A copy of `record` with the values it was loaded with (its formulas computed from them)."""
    before = copy.copy(record)
    before.__dict__.update(loaded)
    _forget_formulas(before)
    return before


def _forget_formulas(record: models.Model) -> None:
    # Formula values annotated by the query that loaded the record are stale once it changes.
    for key in record.lowcode_formulas:
        record.__dict__.pop(key, None)


def _allowed(user, action: str, record: models.Model, request=None) -> bool:
    return rbac.check(user, rbac.entity_operation(record.lowcode_entity["key"], action), record, request=request)


def _not_yours() -> PermissionDenied:
    return PermissionDenied(_("You may not do this to this record."))


def _check_write(record: models.Model, user, *, adding: bool, loaded: dict, changed: list, request) -> None:
    """Refuse a write `user` may not make: columns and owner fields first, then the scope of the action.

    :raises ValidationError: a field the user may not write has another value (code `read_only`).
    :raises PermissionDenied: the record, as it was or as it would be, is outside the user's scope.
    """
    access = rbac_columns.column_access(user, type(record), request=request)
    refused = {}
    for field in changed:
        if access.can_write(field.name):
            continue
        if adding and field.name in access.owner_fields and getattr(record, field.attname) == user.pk:
            continue
        if adding and field.name not in access.owner_fields and getattr(record, field.attname) == field.get_default():
            continue
        refused[field.name] = ValidationError(_("You may not change this field."), code="read_only")
    if refused:
        raise ValidationError(refused)
    if adding:
        if not _allowed(user, "add", record, request):
            raise _not_yours()
    elif not (_allowed(user, "change", _as_loaded(record, loaded), request) and _allowed(user, "change", record, request)):
        raise _not_yours()


def _acting_user_fields(record: models.Model) -> list[str]:
    """User fields the entity fills with whoever creates a record (the user type's option)."""
    return [spec["key"] for spec in type(record).lowcode_entity["fields"]
            if spec["type"] == "user" and spec.get("options", {}).get("acting_user_on_create")]


def save(record: models.Model, *, user, action: str = "", data: dict | None = None, request=None,
         files: dict[str, list] | None = None) -> models.Model:
    """Save a validated record as `user` and audit the fields that changed, in one transaction.

    On create, owner fields (the data scope's) and user fields "set to the acting user on create",
    when left empty, get the acting user. File and image fields take their new files from `files` ({field key: StoredFiles, ids or uploaded files}; fields left out keep
    theirs), checked and attached by dynamic_models.file_fields.

    :raises django.core.exceptions.ValidationError: a field the user may not write was changed
        (`read_only`), a unique value was taken meanwhile (see validation.save_record), a file
        the user may not use or that breaks its field's rules; the caller's transaction stays usable.
    :raises django.core.exceptions.PermissionDenied: the record is outside the user's scope for
        the write, before or after it.
    """
    adding = record._state.adding
    file_keys = set(file_fields.file_specs(type(record)))
    fields = [field for field in record._meta.concrete_fields if field.name not in _SYSTEM | file_keys]
    with transaction.atomic():
        loaded = {} if adding else _loaded_values(record)
        _forget_formulas(record)
        access = None
        if user is not None:
            if adding:
                for name in {*rbac_columns.owner_fields(user, type(record), request=request), *_acting_user_fields(record)}:
                    field = record._meta.get_field(name)
                    if getattr(record, field.attname) is None:
                        setattr(record, field.attname, user.pk)
            changed = [field for field in fields if adding or loaded.get(field.attname) != getattr(record, field.attname)]
            _check_write(record, user, adding=adding, loaded=loaded, changed=changed, request=request)
            access = rbac_columns.column_access(user, type(record), request=request)
        file_changes = file_fields.prepare(record, files or {}, user=user, adding=adding, loaded=loaded,
                                           writable=access)
        validation.save_record(record, user=user)
        file_fields.attach(record, file_changes, user=user)
        changed = [field for field in fields if adding or loaded.get(field.attname) != getattr(record, field.attname)]
        before = {f.name: _json_value(f, loaded.get(f.attname)) for f in changed if not adding}
        after = {f.name: _json_value(f, getattr(record, f.attname)) for f in changed}
        for change in file_changes:
            if change.changed:
                if not adding:
                    before[change.key] = file_fields.audit_value(change.before, change.multiple)
                after[change.key] = file_fields.audit_value(change.after, change.multiple)
        if adding or after or action:
            audit.record_later(action or _action(record, "create" if adding else "update"), target=record,
                               before=before, after=after, actor=user, data=data)
        if adding or after:
            signal, changed_keys = (signals.record_created if adding else signals.record_updated), sorted(after)
            transaction.on_commit(lambda: signal.send(sender=type(record), record=record, user=user,
                                                      changed=changed_keys))
    record.loaded_values = {field.attname: getattr(record, field.attname) for field in record._meta.concrete_fields}
    return record


def pickable(user, model: type[models.Model], *, request=None, keep=()) -> models.QuerySet:
    """The records of `model` that `user` may see: offered in relation pickers and filters, and
    accepted as a relation's value. Entity records need view (or change) permission on their
    entity and are cut to its data scope; users are the tenant's active people.

    :param keep: ids to accept besides (a relation's current values, so that saving a record
        keeps a value its editor may not see).
    """
    if not hasattr(model, "lowcode_entity"):
        # django-guardian's stand-in for anonymous visitors is a user row, not a person.
        visible = model.objects.filter(is_active=True).exclude(username=guardian_settings.ANONYMOUS_USER_NAME)
    elif any(rbac.check(user, rbac.entity_operation(model._meta.model_name, action), request=request)
             for action in ("view", "change")):
        visible = rbac.scope_queryset(user, model.objects.all(), request=request)
    else:
        visible = model.objects.none()
    keep = [pk for pk in keep if pk is not None]
    if not keep:
        return visible
    return model._default_manager.filter(models.Q(pk__in=visible.values("pk")) | models.Q(pk__in=keep))


def _check(user, action: str, record: models.Model, request=None) -> None:
    if user is not None and not _allowed(user, action, record, request):
        raise _not_yours()


def delete(record: models.Model, *, user, request=None) -> None:
    """Soft-delete a record; relations' on-delete rules apply to its dependants (DM-7).

    :raises ProtectedError: a protecting relation points at it.
    :raises PermissionDenied: the record is outside the user's delete scope.
    """
    _check(user, "delete", record, request)
    with transaction.atomic():
        record.soft_delete()
        audit.record_later(_action(record, "delete"), target=record, actor=user)


def restore(queryset, *, user, request=None) -> int:
    """Bring soft-deleted records of `queryset` back (those the user may change); return how many.

    :raises lowcode.tenancy.quotas.QuotaExceeded: they would pass the tenant's records quota.
    """
    with transaction.atomic():
        # Only the records' rows: a list's queryset may follow nullable relations (an outer join).
        records = [record for record in queryset.filter(deleted_at__isnull=False).select_for_update(of=("self",))
                   if user is None or _allowed(user, "change", record, request)]
        quotas.check("records", adding=len(records))
        for record in records:
            record.deleted_at, record.updated_at = None, timezone.now()
            if user is not None and user.is_authenticated:
                record.updated_by = user
            record.save(update_fields=["deleted_at", "updated_at", "updated_by"])
            audit.record(_action(record, "restore"), target=record, actor=user)
    return len(records)


def purge(queryset, *, user, request=None) -> int:
    """Delete the soft-deleted records of `queryset` (those the user may delete) for good; return how many.

    :raises ProtectedError: a protecting relation still points at one of them.
    """
    with transaction.atomic():
        records = [record for record in queryset.filter(deleted_at__isnull=False)
                   if user is None or _allowed(user, "delete", record, request)]
        for record in records:
            audit.record(_action(record, "purge"), target=record, before=values(record), actor=user)
            file_fields.release(record)
        queryset.filter(pk__in=[record.pk for record in records]).delete()
    return len(records)


def _events(record: models.Model):
    """The record's audit events since it was created: a record that once had the same id (an
    entity deleted and designed again starts its ids anew) has a history of its own."""
    events = audit.history(record._meta.label_lower, str(record.pk))
    created = events.filter(action=_action(record, "create")).order_by("-seq").values_list("seq", flat=True).first()
    return events if created is None else events.filter(seq__gte=created)


@dataclass(frozen=True)
class Change:
    """One field of a version as its reader sees it: its label and its values before and after as text."""

    field: str
    label: str
    before: str
    after: str


@dataclass(frozen=True)
class Version:
    """One event of a record's history, with the values its reader may see (RB-5)."""

    event: AuditEvent
    before: dict
    after: dict
    #: The fields whose shown value changed, readable (labels, names, choice labels).
    changes: tuple[Change, ...] = ()
    #: Who did it, by name (the name the trail kept if they are gone).
    actor: str = ""

    @property
    def verb(self) -> str:
        return self.event.action.rsplit(".", 1)[-1]


class _Reader:
    """Audited values as a reader sees them: relations by the display field of the records they
    may see (others as "#id"), users by name, choices by label, rich text as plain text."""

    def __init__(self, model: type[models.Model], user, request=None):
        self.model, self.user, self.request = model, user, request
        self.access = rbac_columns.column_access(user, model, request=request)
        self.files = set(file_fields.file_specs(model))
        self.rich_text = {spec["key"] for spec in model.lowcode_entity["fields"] if spec["type"] == "rich_text"}
        self.order = {spec["key"]: position for position, spec in enumerate(model.lowcode_entity["fields"])}
        self._names: dict[type, dict] = {}

    def _field(self, key: str) -> models.Field | None:
        try:
            return self.model._meta.get_field(key)
        except FieldDoesNotExist:  # Removed since the event: shown by its key.
            return None

    def label(self, key: str) -> str:
        model_field = self._field(key)
        return capfirst(model_field.verbose_name) if model_field is not None else key

    def _names_of(self, related_model: type[models.Model], pks: list) -> list[str]:
        names = self._names.setdefault(related_model, {})
        missing = {pk for pk in pks if pk not in names}
        if missing:
            if hasattr(related_model, "lowcode_entity"):
                readable = pickable(self.user, related_model, request=self.request).filter(pk__in=missing)
                names.update((record.pk, str(record)) for record in readable)
            else:  # People, by name.
                names.update((person.pk, person.get_full_name() or person.get_username())
                             for person in get_user_model()._default_manager.filter(pk__in=missing))
        return [names.get(pk, f"#{pk}") for pk in pks]

    def person(self, pk) -> str:
        """A user's name, or "" if there is no such user."""
        name = self._names_of(get_user_model(), [pk])[0]
        return "" if name == f"#{pk}" else name

    def text(self, key: str, value) -> str:
        """`value` of field `key`, as stored in the audit trail (after the column rules), as text."""
        if value in (None, "", [], {}):
            return ""
        if value == ENCRYPTED:
            return _("(encrypted)")
        if self.access.is_masked(key):
            return str(value)
        if key in self.files:
            return ", ".join(item["name"] for item in (value if isinstance(value, list) else [value]) if item)
        if key in self.rich_text:
            return html.unescape(strip_tags(value))
        model_field = self._field(key)
        items = value if isinstance(value, list) else [value]
        if model_field is not None and model_field.is_relation:
            return ", ".join(self._names_of(model_field.related_model, items))
        choices = getattr(getattr(model_field, "base_field", model_field), "flatchoices", None)
        if choices:
            labels = dict(choices)
            return ", ".join(str(labels.get(item, item)) for item in items)
        if isinstance(value, bool):
            return _("Yes") if value else _("No")
        if isinstance(model_field, models.DateTimeField | models.DateField | models.TimeField) \
                and isinstance(value, str):
            parsed = model_field.to_python(value)
            if isinstance(parsed, datetime.datetime) and timezone.is_aware(parsed):
                parsed = timezone.localtime(parsed)
            return formats.localize(parsed)
        if isinstance(value, dict | list):
            return json.dumps(value, ensure_ascii=False)
        return str(value)

    def changes(self, before: dict, after: dict) -> tuple[Change, ...]:
        """The fields of `after` whose text differs from `before` (None and "" are both empty), in
        the entity's order."""
        result = []
        for key, value in sorted(after.items(), key=lambda item: self.order.get(item[0], len(self.order))):
            old, new = self.text(key, before.get(key)), self.text(key, value)
            if old != new:
                result.append(Change(key, self.label(key), old, new))
        return tuple(result)


def history(record: models.Model, *, user, request=None) -> list[Version]:
    """The record's audit events, oldest first, as `user` may see them (AD-3, RB-5).

    Hidden fields are left out and masked ones masked, in the values before and after each
    change; a change of hidden fields only is left out altogether, so its time tells nothing.
    Each version names what changed in words (`Version.changes`); an update that changed
    nothing the reader sees (an empty note saved as "") is left out too.
    """
    reader = _Reader(type(record), user, request)
    versions = []
    for event in _events(record):
        before, after = reader.access.present(event.before), reader.access.present(event.after)
        changes = reader.changes(before, after)
        if event.after and not changes and not event.action.endswith((".create", ".restore_version")):
            continue
        actor = event.actor_repr
        if event.actor_id is not None:
            actor = reader.person(event.actor_id) or actor
        versions.append(Version(event=event, before=before, after=after, changes=changes, actor=actor))
    return versions


def history_event(record: models.Model, seq: int) -> AuditEvent:
    """The record's audit event `seq`.

    :raises AuditEvent.DoesNotExist: the record has no event `seq`.
    """
    return _events(record).get(seq=seq)


def _restorable_state(record: models.Model, event: AuditEvent) -> dict:
    """The record's values right after `event` that a restore writes: not those encrypted at
    rest (not in the trail), nor system columns."""
    state = audit.state_at(record._meta.label_lower, str(record.pk), event, values(record))
    return {key: value for key, value in state.items() if key not in _SYSTEM and value != ENCRYPTED}


def restore_changes(record: models.Model, seq: int, *, user, request=None) -> list[Change]:
    """What restoring the record's version `seq` would change, as `user` may see it: each field
    with its value now and its restored value (shown on the confirmation page before the restore).

    :raises AuditEvent.DoesNotExist: the record has no event `seq`.
    """
    event = history_event(record, seq)
    current = values(record)
    restored = {key: value for key, value in _restorable_state(record, event).items()
                if key in current and value != current[key]}
    reader = _Reader(type(record), user, request)
    now = reader.access.present({key: current[key] for key in restored})
    return list(reader.changes(now, reader.access.present(restored)))


def restore_version(record: models.Model, seq: int, *, user, request=None) -> AuditEvent:
    """Give the record the values it had right after its event `seq` and return that event; the
    restore is audited too (AD-3).

    It is a write like any other: the values must be ones `user` may write (a version with
    another value in a read-only, masked or hidden field is refused). Values encrypted at rest
    are not in the trail and stay as they are.

    :raises AuditEvent.DoesNotExist: the record has no event `seq`.
    :raises django.core.exceptions.ValidationError: the former values break today's rules (a
        unique value taken since...), or change a field the user may not write.
    :raises django.core.exceptions.PermissionDenied: outside the user's change scope, before or after.
    """
    event = history_event(record, seq)
    state = _restorable_state(record, event)
    record.loaded_values = _loaded_values(record)
    file_keys = set(file_fields.file_specs(type(record)))
    for model_field in record._meta.concrete_fields:
        if model_field.name in state and model_field.name not in file_keys:
            setattr(record, model_field.attname, model_field.to_python(state[model_field.name]))
    # Files by their ids: a record keeps the files it once held (FileAttachment rows are kept).
    files = {key: [item["id"] for item in (value if isinstance(value, list) else [value]) if item]
             for key, value in state.items() if key in file_keys}
    exclude = {f.name for f in record._meta.fields if not f.editable} | file_keys
    validation.clean_record(record, exclude=exclude)
    save(record, user=user, action=_action(record, "restore_version"), request=request, files=files,
         data={"version_of": event.created_at.isoformat(), "event": event.seq})
    return event
