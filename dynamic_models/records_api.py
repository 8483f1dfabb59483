"""Records for code the platform runs on someone's behalf: sandboxed handlers and scripts (PL-4, SC-1).

`functions(user)` is the allow-listed API such code gets, each function bound to the user it runs
for. Reads and writes go through the entity API's serializer and rbac's one read and write path
(`records.save`, scopes, column rules): what a handler reads is what the user would read in the
API (masked values masked, hidden ones absent, rows outside the scope unknown), what it writes is
validated, permission-checked and audited as the user's own write. Values are JSON: ids,
decimals as strings, dates as ISO strings.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from rest_framework import serializers as drf_serializers
from rest_framework.utils.encoders import JSONEncoder

from dynamic_models import runtime
from rbac import columns as rbac_columns
from rbac import services as rbac

#: Most rows one `records.list` call returns.
MAX_ROWS = 500


class RecordsApiError(ValueError):
    """A refused call, with the message the calling code sees (field errors named)."""


def _model(entity: str):
    try:
        return runtime.get_model(entity)
    except LookupError:
        raise RecordsApiError(_("No published entity %(key)s.") % {"key": entity}) from None


def _serializer(model, user, **kwargs):
    serializer_class = runtime.current().record_serializers[model.lowcode_entity["key"]]
    return serializer_class(context={"request": None, "user": user, "fields": None, "expand": set()}, **kwargs)


def _plain(data) -> dict:
    return json.loads(json.dumps(data, cls=JSONEncoder))


def _errors(detail) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {' '.join(str(message) for message in messages)}" if isinstance(messages, list)
                         else f"{key}: {messages}" for key, messages in detail.items())
    return " ".join(str(message) for message in detail) if isinstance(detail, list) else str(detail)


def _visible(model, user):
    if not rbac.check(user, rbac.entity_operation(model.lowcode_entity["key"], "view")):
        raise RecordsApiError(rbac.denial(rbac.entity_operation(model.lowcode_entity["key"], "view")))
    return rbac.scope_queryset(user, model.objects.all(), "view")


def list_records(user, entity: str, filters: dict | None = None, limit: int = 50) -> list[dict]:
    """Up to `limit` records of `entity` the user may see, newest first, equal to `filters`
    ({field: value}) on fields the user reads in clear."""
    model = _model(entity)
    access = rbac_columns.column_access(user, model)
    queryset = _visible(model, user)
    for key, value in (filters or {}).items():
        try:
            field = model._meta.get_field(key)
        except Exception:  # noqa: BLE001 - FieldDoesNotExist, or a key that is no field name at all.
            field = None
        if field is None or not access.can_query(key):
            raise RecordsApiError(_("%(field)s: records cannot be filtered by this field.") % {"field": key})
        queryset = queryset.filter(**{field.attname if field.is_relation else key: value})
    rows = queryset.order_by("-pk")[:max(1, min(int(limit), MAX_ROWS))]
    return _plain(_serializer(model, user, instance=rows, many=True).data)


def get_record(user, entity: str, record_id: int) -> dict:
    model = _model(entity)
    record = _visible(model, user).filter(pk=record_id).first()
    if record is None:
        raise RecordsApiError(_("No %(entity)s #%(id)s.") % {"entity": entity, "id": record_id})
    return _plain(_serializer(model, user, instance=record).data)


def _acting_user_fields(model) -> set[str]:
    return {spec["key"] for spec in model.lowcode_entity["fields"]
            if spec["type"] == "user" and spec.get("options", {}).get("acting_user_on_create")}


def _write(user, model, data: dict, instance=None) -> dict:
    """Write through the entity API's serializer; a user field the entity fills with the acting
    user (no client's to set) may be given on create for someone else, which records.save allows
    only to those who may write owner fields (tenant admins, an unconditional change scope)."""
    data = dict(data)
    on_behalf = {key: data.pop(key) for key in _acting_user_fields(model) & set(data) if instance is None}
    serializer = _serializer(model, user, instance=instance, data=data, partial=instance is not None)
    try:
        with transaction.atomic():
            serializer.is_valid(raise_exception=True)
            for key, value in on_behalf.items():
                if value is not None and not get_user_model().objects.filter(pk=value).exists():
                    raise RecordsApiError(_("%(field)s: No such user.") % {"field": key})
                setattr(serializer.validated_data["record"], model._meta.get_field(key).attname, value)
            record = serializer.save()
    except drf_serializers.ValidationError as error:
        raise RecordsApiError(_errors(error.detail)) from None
    except ValidationError as error:
        raise RecordsApiError(_errors(error.message_dict) if hasattr(error, "error_dict")
                              else " ".join(error.messages)) from None
    except PermissionDenied as error:
        raise RecordsApiError(str(error)) from None
    return _plain(_serializer(model, user, instance=record).data)


def create_record(user, entity: str, data: dict) -> dict:
    model = _model(entity)
    if not rbac.check(user, rbac.entity_operation(entity, "add")):
        raise RecordsApiError(rbac.denial(rbac.entity_operation(entity, "add")))
    return _write(user, model, data)


def update_record(user, entity: str, record_id: int, data: dict) -> dict:
    model = _model(entity)
    record = _visible(model, user).filter(pk=record_id).first()
    if record is None:
        raise RecordsApiError(_("No %(entity)s #%(id)s.") % {"entity": entity, "id": record_id})
    return _write(user, model, data, instance=record)


def functions(user) -> dict[str, Callable]:
    """The records API bound to `user`, by the names sandboxed code calls."""
    return {
        "records.list": lambda entity, filters=None, limit=50: list_records(user, entity, filters, limit),
        "records.get": lambda entity, record_id: get_record(user, entity, record_id),
        "records.create": lambda entity, data: create_record(user, entity, data),
        "records.update": lambda entity, record_id, data: update_record(user, entity, record_id, data),
    }
