"""Record services (DM-7): every write of a runtime record, as admin, the API and imports make
it, with its audit event in the same transaction (AD-1, AD-3)."""

from __future__ import annotations

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import timezone

from audit import services as audit
from dynamic_models import validation
from dynamic_models.encryption import EncryptedTextField

#: What the audit trail stores instead of a value encrypted at rest.
ENCRYPTED = "<encrypted>"
_SYSTEM = {"id", "created_at", "updated_at", "created_by", "updated_by", "deleted_at"}


def _json(value):
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _json_value(field: models.Field, value):
    return ENCRYPTED if isinstance(field, EncryptedTextField) else _json(value)


def values(record: models.Model) -> dict:
    """The record's stored field values as JSON (relations as ids), system columns left out."""
    return {field.name: _json_value(field, field.value_from_object(record))
            for field in record._meta.concrete_fields if field.name not in _SYSTEM}


def _loaded_values(record: models.Model) -> dict:
    """The record's values when it was loaded (by attname); read again if it was built by hand."""
    loaded = getattr(record, "loaded_values", None)
    if loaded is None:
        names = [field.attname for field in record._meta.concrete_fields]
        loaded = dict(zip(names, type(record).all_objects.filter(pk=record.pk).values_list(*names).get(), strict=True))
    return loaded


def _action(record: models.Model, verb: str) -> str:
    return f"data.{record._meta.model_name}.{verb}"


def save(record: models.Model, *, user=None, action: str = "", data: dict | None = None) -> models.Model:
    """Save a validated record as `user` and audit the fields that changed, in one transaction.

    :raises django.core.exceptions.ValidationError: a unique value taken meanwhile (see
        validation.save_record); the caller's transaction stays usable.
    """
    adding = record._state.adding
    fields = [field for field in record._meta.concrete_fields if field.name not in _SYSTEM]
    with transaction.atomic():
        loaded = {} if adding else _loaded_values(record)
        validation.save_record(record, user=user)
        changed = [field for field in fields if adding or loaded.get(field.attname) != getattr(record, field.attname)]
        if adding or changed or action:
            audit.record(action or _action(record, "create" if adding else "update"), target=record,
                         before={f.name: _json_value(f, loaded.get(f.attname)) for f in changed if not adding},
                         after={f.name: _json_value(f, getattr(record, f.attname)) for f in changed},
                         actor=user, data=data)
    record.loaded_values = {field.attname: getattr(record, field.attname) for field in record._meta.concrete_fields}
    return record


def delete(record: models.Model, *, user=None) -> None:
    """Soft-delete a record; relations' on-delete rules apply to its dependants (DM-7).

    :raises ProtectedError: a protecting relation points at it.
    """
    with transaction.atomic():
        record.soft_delete()
        audit.record(_action(record, "delete"), target=record, actor=user)


def restore(queryset, *, user=None) -> int:
    """Bring soft-deleted records of `queryset` back; return how many."""
    with transaction.atomic():
        records = list(queryset.filter(deleted_at__isnull=False).select_for_update())
        for record in records:
            record.deleted_at, record.updated_at = None, timezone.now()
            if user is not None and user.is_authenticated:
                record.updated_by = user
            record.save(update_fields=["deleted_at", "updated_at", "updated_by"])
            audit.record(_action(record, "restore"), target=record, actor=user)
    return len(records)


def purge(queryset, *, user=None) -> int:
    """Delete the soft-deleted records of `queryset` for good; return how many.

    :raises ProtectedError: a protecting relation still points at one of them.
    """
    with transaction.atomic():
        records = list(queryset.filter(deleted_at__isnull=False))
        for record in records:
            audit.record(_action(record, "purge"), target=record, before=values(record), actor=user)
        queryset.filter(pk__in=[record.pk for record in records]).delete()
    return len(records)


def history(record: models.Model):
    """The record's audit events, oldest first (AD-3)."""
    return audit.history(record._meta.label_lower, str(record.pk))


def restore_version(record: models.Model, event, *, user=None) -> models.Model:
    """Give the record the values it had right after `event`; the restore is audited too (AD-3).

    Values encrypted at rest are not in the trail and stay as they are.

    :raises django.core.exceptions.ValidationError: the former values break today's rules (a unique value taken since...).
    """
    state = audit.state_at(record._meta.label_lower, str(record.pk), event, values(record))
    for field in record._meta.concrete_fields:
        if field.name in state and field.name not in _SYSTEM and state[field.name] != ENCRYPTED:
            setattr(record, field.attname, field.to_python(state[field.name]))
    exclude = {f.name for f in record._meta.fields if not f.editable}
    validation.clean_record(record, exclude=exclude)
    return save(record, user=user, action=_action(record, "restore_version"),
                data={"version_of": event.created_at.isoformat(), "event": event.seq})

