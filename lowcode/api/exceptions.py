"""One error format for every API response (DM-6).

Validation errors: ``{"field": [{"code": "...", "message": "..."}]}`` (``non_field_errors``
for errors of the whole record or body, a body that is not valid JSON included; such objects
by row index for bulk requests). Other errors: ``{"detail": "...", "code": "..."}``.
"""

from __future__ import annotations

from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import set_rollback


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _("The request conflicts with the current state.")
    default_code = "conflict"


def django_errors(error: DjangoValidationError) -> dict:
    """A Django ValidationError as the API's machine-readable detail."""
    if hasattr(error, "error_dict"):
        # A model's errors of the whole record come under NON_FIELD_ERRORS ("__all__").
        return {api_settings.NON_FIELD_ERRORS_KEY if field == NON_FIELD_ERRORS else field:
                [{"code": e.code or "invalid", "message": message} for e in errors for message in e.messages]
                for field, errors in error.error_dict.items()}
    return {api_settings.NON_FIELD_ERRORS_KEY: [{"code": e.code or "invalid", "message": message}
                                                for e in error.error_list for message in e.messages]}


def as_validation_error(error: DjangoValidationError) -> exceptions.ValidationError:
    detail = {
        field: [exceptions.ErrorDetail(item["message"], code=item["code"]) for item in items]
        for field, items in django_errors(error).items()
    }
    return exceptions.ValidationError(detail)


def exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) if exc.args else None)  # Its message says what is missing.
    elif isinstance(exc, DjangoValidationError):
        exc = as_validation_error(exc)
    elif isinstance(exc, ProtectedError | RestrictedError):
        exc = Conflict(exc.args[0])
    elif isinstance(exc, exceptions.ParseError):
        # An unreadable body is invalid input: answered in the format every documented 400 has.
        exc = exceptions.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: [
            exceptions.ErrorDetail(str(exc.detail), code=exc.default_code)]})
    if not isinstance(exc, exceptions.APIException):
        return None
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    if isinstance(exc, exceptions.ValidationError):
        data = exc.get_full_details()
        if not isinstance(data, dict):  # Raised with a message or a list of them (DRF's search filter).
            data = {api_settings.NON_FIELD_ERRORS_KEY: data if isinstance(data, list) else [data]}
    else:
        data = {"detail": str(exc.detail), "code": exc.get_codes() if isinstance(exc.get_codes(), str) else "error"}
    set_rollback()
    return Response(data, status=exc.status_code, headers=headers)
