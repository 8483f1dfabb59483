"""Static types of expression values, checked before an expression is saved (EX-1).

A type is a value family (`kind()` below: number, text, boolean, date, datetime,
time, list) or `null`, the type of the literal `null`, which fits wherever a value does.
Numbers also carry bounds, the largest size a value can have and the most digits after the
decimal point, so that a check can prove every result stays exact: Python's `Decimal` (40
significant digits) and PostgreSQL's `numeric` then compute the same digits, and neither
overflows. Lists exist only on the right of `in`; `item` is the type of their items.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

from django.db import models
from django.utils.translation import gettext as _

#: The most significant digits a number may have: the precision of the evaluator's context.
MAX_DIGITS = 40

ORDERED_KINDS = frozenset({"number", "text", "boolean", "date", "datetime", "time"})
"""Kinds whose values `<`, `min()` and `max()` can order."""


@dataclass(frozen=True)
class ExpressionType:
    kind: str
    bound: int = 0
    """Numbers: no value is larger than this (in absolute value)."""
    places: int = 0
    """Numbers: the most digits after the decimal point."""
    item: ExpressionType | None = None
    """Lists: the type of their items."""

    @property
    def digits(self) -> int:
        """Numbers: the most digits before the decimal point."""
        return len(str(self.bound))

    def describe(self) -> str:
        """The user-facing name of the type, for error messages."""
        if self.kind == "list":
            return _("a list of %(items)s") % {"items": (self.item or NULL).describe()}
        return kind_name(self.kind)


NULL = ExpressionType("null")
BOOLEAN = ExpressionType("boolean")
TEXT = ExpressionType("text")
DATE = ExpressionType("date")
DATETIME = ExpressionType("datetime")
TIME = ExpressionType("time")


def number(bound: int, places: int = 0) -> ExpressionType:
    return ExpressionType("number", bound, max(places, 0))


#: PostgreSQL's bigint: ids, integer fields.
BIGINT = number(2**63)


def kind(value: Any) -> str:
    """Return the family of a non-null value: values compare only within their family."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, Decimal)):
        return "number"
    if isinstance(value, str):
        return "text"
    # datetime is a subclass of date, and the two cannot be compared.
    if isinstance(value, datetime.datetime):
        return "datetime"
    if isinstance(value, datetime.date):
        return "date"
    if isinstance(value, datetime.time):
        return "time"
    if isinstance(value, list):
        return "list"
    return "other"


def kind_name(kind: str | None) -> str:
    """Return the user-facing name of a value family (see `kind()`)."""
    names = {
        "null": _("null"),
        "boolean": _("true/false"),
        "number": _("a number"),
        "text": _("text"),
        "datetime": _("a date and time"),
        "date": _("a date"),
        "time": _("a time"),
        "list": _("a list"),
    }
    return names.get(kind, _("an unsupported value"))


def list_of(item: ExpressionType) -> ExpressionType:
    return ExpressionType("list", item=item)


def type_of_value(value) -> ExpressionType:
    """The exact type of a constant (a literal or a folded constant part)."""
    if value is None:
        return NULL
    if isinstance(value, list):
        return list_of(unify([type_of_value(item) for item in value]) or NULL)
    value_kind = kind(value)
    if value_kind != "number":
        return ExpressionType(value_kind)
    value = Decimal(value)
    return number(int(abs(value).to_integral_value(ROUND_CEILING)), -value.as_tuple().exponent)


def unify(types: list[ExpressionType]) -> ExpressionType | None:
    """The type of a value that is one of `types` (if, coalesce, min, max, list items).

    None if two of them are of different kinds; null fits any kind.
    """
    kinds = {t.kind for t in types} - {"null"}
    if not kinds:
        return NULL
    if len(kinds) > 1:
        return None
    typed = [t for t in types if t.kind != "null"]
    if kinds == {"list"}:
        item = unify([t.item or NULL for t in typed])
        return None if item is None else list_of(item)
    return ExpressionType(typed[0].kind, max(t.bound for t in typed), max(t.places for t in typed))


def type_of_model_field(field: models.Field) -> ExpressionType | None:
    """The type expressions read a model field's values as; None if they cannot use them.

    Relations read as the related record's id. Floats, JSON, UUIDs and many-to-many
    relations have no expression type.
    """
    from django.contrib.postgres.fields import ArrayField

    if field.many_to_many or field.one_to_many:
        return None
    if field.is_relation:
        return BIGINT
    if isinstance(field, ArrayField):
        item = type_of_model_field(field.base_field)
        return None if item is None else list_of(item)
    if isinstance(field, models.BooleanField):
        return BOOLEAN
    if isinstance(field, models.DecimalField):
        return number(10 ** (field.max_digits - field.decimal_places), field.decimal_places)
    if isinstance(field, (models.SmallIntegerField, models.SmallAutoField)):
        return number(2**15)
    if isinstance(field, (models.BigIntegerField, models.BigAutoField)):
        return BIGINT
    if isinstance(field, (models.IntegerField, models.AutoField)):
        return number(2**31)
    if isinstance(field, (models.CharField, models.TextField)):
        return TEXT
    # DateTimeField is a DateField.
    if isinstance(field, models.DateTimeField):
        return DATETIME
    if isinstance(field, models.DateField):
        return DATE
    if isinstance(field, models.TimeField):
        return TIME
    return None
