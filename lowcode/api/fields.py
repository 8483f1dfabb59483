"""Serializer fields whose errors keep the API's format: `{"field": [{"code", "message"}]}`."""

from __future__ import annotations

from django.utils.translation import gettext as _
from rest_framework import serializers


class FlatListField(serializers.ListField):
    """A list of plain values whose item errors are listed under the field itself, each naming its
    item (DRF nests them by index, which the documented error format does not allow)."""

    def run_child_validation(self, data):
        try:
            return super().run_child_validation(data)
        except serializers.ValidationError as error:
            raise serializers.ValidationError([
                serializers.ErrorDetail(_("Item %(number)d: %(message)s") % {"number": index + 1, "message": detail},
                                        code=detail.code)
                for index, details in error.detail.items() for detail in details]) from None
