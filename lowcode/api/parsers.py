"""JSON with a nesting limit, for request bodies and uploaded JSON files.

Python's parser gives up with a RecursionError near 1,000 levels, and every recursive step
after it (validation, JSON Schema, saving) could too: documents deeper than MAX_JSON_DEPTH
levels are refused as unreadable instead (400 `parse_error`). No real record or design comes
close to it.
"""

from __future__ import annotations

import json

from django.utils.translation import gettext as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError

MAX_JSON_DEPTH = 64


class JSONTooDeep(ValueError):
    """A JSON document nested deeper than MAX_JSON_DEPTH levels."""

    def __init__(self):
        super().__init__(_("JSON nested deeper than %(max)d levels.") % {"max": MAX_JSON_DEPTH})


def check_depth(data) -> None:
    """Raise JSONTooDeep if `data` (parsed JSON) has more than MAX_JSON_DEPTH nested lists and objects."""
    stack = [(data, 1)] if isinstance(data, dict | list) else []
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value
        if depth > MAX_JSON_DEPTH:
            raise JSONTooDeep
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


def load_json(text: str | bytes):
    """`json.loads` within the nesting limit.

    :raises ValueError: not JSON, or JSONTooDeep.
    """
    try:
        data = json.loads(text)
    except RecursionError:
        raise JSONTooDeep from None
    check_depth(data)
    return data


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser within the nesting limit: too deep a body is a 400 `parse_error`."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
            check_depth(data)
        except (RecursionError, JSONTooDeep):
            raise ParseError(_("JSON parse error - %(error)s") % {"error": JSONTooDeep()}) from None
        return data
