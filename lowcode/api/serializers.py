"""Serializers of JSON bodies that take each value in the JSON type the schema declares.

DRF converts quietly: 12 for "12", "12" for 12, 1 for true. The OpenAPI schema promises one
type per field, so a value of another type is refused, as `{"field": [{"code":
"incorrect_type", "message"}]}`.
"""

from __future__ import annotations

from django.http import QueryDict
from django.utils.translation import gettext as _
from rest_framework import serializers

_TYPE_NAMES = {str: "text", bool: "true or false", int: "an integer", float: "a number", list: "a list", dict: "an object"}


def json_types(field: serializers.Field) -> tuple[type, ...]:
    """The JSON value types a serializer field takes, as its OpenAPI schema declares them."""
    if isinstance(field, serializers.BooleanField):
        return (bool,)
    if isinstance(field, serializers.DecimalField):
        return (str, int, float)
    if isinstance(field, serializers.IntegerField | serializers.RelatedField):
        return (int,)
    if isinstance(field, serializers.ManyRelatedField | serializers.ListField):
        return (list,)
    if isinstance(field, serializers.ChoiceField | serializers.CharField | serializers.DateField
                  | serializers.DateTimeField | serializers.TimeField | serializers.UUIDField):
        return (str,)
    return ()


def type_errors(fields: dict, data: dict) -> dict:
    """The errors of `data`'s values whose JSON type their (writable) field does not take; null is
    left to the field, which knows whether it allows it. Form bodies (multipart, urlencoded)
    carry text only: there DRF's conversions apply."""
    if isinstance(data, QueryDict):
        return {}
    errors = {}
    for name, value in data.items():
        field = fields.get(name)
        if field is None or field.read_only or value is None:
            continue
        expected = json_types(field)
        if expected and not any(isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool)
                                for kind in expected):
            errors[name] = [serializers.ErrorDetail(_("Incorrect type: expected %(type)s.") % {
                "type": _TYPE_NAMES[expected[0]]}, code="incorrect_type")]
    return errors


class JSONBodySerializer(serializers.Serializer):
    """A serializer of a JSON object body: each value in its field's JSON type."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            errors = type_errors(self.fields, data)
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)
