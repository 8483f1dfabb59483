"""Metadata refusals as API answers, in the project's error format (lowcode/api/exceptions.py).

An invalid body answers 400 with the paths of the kind's JSON Schema, `{"fields/2/options/
max_length": [{"code", "message"}]}`; a change the current state refuses (a stale
`expected_version`, another publish running) answers 409.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager

from django.utils.translation import gettext_lazy
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.plumbing import get_doc
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail, NotFound, ValidationError
from rest_framework.settings import api_settings

from lowcode.api.exceptions import Conflict
from metadata.exceptions import (
    DefinitionNotFound,
    DefinitionValidationError,
    DependencyError,
    InvalidBundle,
    MetadataError,
    PublishConflict,
)


def path_errors(errors: list[dict], default_code: str = "invalid") -> dict:
    """Group {"path", "code", "message"} errors by path, as the API's validation detail."""
    detail: dict[str, list] = {}
    for error in errors:
        path = error.get("path") or api_settings.NON_FIELD_ERRORS_KEY
        detail.setdefault(path, []).append(ErrorDetail(error["message"], code=error.get("code") or default_code))
    return detail


_answers: dict[type[MetadataError], Callable[[MetadataError], Exception]] = {
    DefinitionValidationError: lambda error: ValidationError(path_errors(error.errors)),
    InvalidBundle: lambda error: ValidationError(path_errors(error.errors, "invalid_bundle")),
    DefinitionNotFound: lambda error: NotFound(str(error)),
    PublishConflict: lambda error: Conflict(str(error)),
    DependencyError: lambda error: Conflict(str(error)),
}


def register_answer(error_class: type[MetadataError], answer: Callable[[MetadataError], Exception]) -> None:
    """Declare the API answer to a kind's own refusal (an entity's MigrationRefused: 400 by field)."""
    _answers[error_class] = answer


def as_api_error(error: MetadataError, overrides: dict | None = None) -> Exception:
    for error_class, api_error in (overrides or {}).items():
        if isinstance(error, error_class):
            return api_error(str(error))
    for error_class in type(error).__mro__:
        if error_class in _answers:
            return _answers[error_class](error)
    return ValidationError({api_settings.NON_FIELD_ERRORS_KEY: [ErrorDetail(str(error), code="refused")]})


@contextmanager
def metadata_errors(overrides: dict | None = None):
    """Turn a service's MetadataError into the API error for it.

    :param overrides: {MetadataError subclass: APIException subclass} for a refusal that means
        something else in this view ({DefinitionNotFound: Conflict}: nothing to roll back to).
    """
    try:
        yield
    except MetadataError as error:
        raise as_api_error(error, overrides) from error


# Named like the components lowcode.api.openapi adds to every schema, and shaped the same.
class ErrorSerializer(serializers.Serializer):
    """An error of the whole request."""

    detail = serializers.CharField()
    code = serializers.CharField()


class ValidationErrorsSerializer(serializers.Serializer):
    """Invalid input: errors by path, e.g. {"fields/0/key": [{"code": "key", "message": "..."}]}.

    `non_field_errors` holds the errors of the whole body. (Documented by the extension below:
    its keys are paths, which a serializer cannot declare.)
    """


class _ValidationErrorsExtension(OpenApiSerializerExtension):
    target_class = ValidationErrorsSerializer

    def map_serializer(self, auto_schema, direction):
        return {"type": "object", "description": get_doc(ValidationErrorsSerializer),
                "additionalProperties": {"type": "array", "items": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}


VALIDATION_ERRORS = OpenApiResponse(ValidationErrorsSerializer, description=gettext_lazy("Invalid input."))
NOT_FOUND = OpenApiResponse(ErrorSerializer, description=gettext_lazy("No such entity, field or version."))
CONFLICT = OpenApiResponse(ErrorSerializer, description=gettext_lazy(
    "Refused by the current state: published since the preview, another publish running, ..."))
