"""Query filters whose values PostgreSQL accepts (django-filter).

A value the database would refuse (a time zone offset of 18 hours, a number wider than its
column) is a form error of its filter, so it answers 400 naming the parameter instead of
failing in the database.
"""

from __future__ import annotations

import datetime

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db import connection, models
from django.utils.translation import gettext as _

#: PostgreSQL accepts UTC offsets up to 15:59:59 either way.
MAX_UTC_OFFSET = datetime.timedelta(hours=16)


def validate_utc_offset(value: datetime.datetime) -> None:
    offset = value.utcoffset()
    if offset is not None and abs(offset) >= MAX_UTC_OFFSET:
        # Not code `invalid`: the form field would put its own "Enter a valid date/time." instead.
        raise ValidationError(_("Use a time zone offset from -15:59 to +15:59."), code="utc_offset")


def _integer_range(model_field) -> dict:
    low, high = connection.ops.integer_field_range(model_field.get_internal_type())
    return {"min_value": low, "max_value": high}


def _decimal_digits(model_field) -> dict:
    return {"max_digits": model_field.max_digits, "decimal_places": model_field.decimal_places}


class IntegerFilter(django_filters.NumberFilter):
    """Whole numbers are filtered as such: `id__lt=0.5` is an error, not a rounding."""

    field_class = forms.IntegerField


_INTEGER = {"filter_class": IntegerFilter, "extra": _integer_range}


class PostgresFilterSet(django_filters.FilterSet):
    """A filter set whose filters take the values of their column only (also in `in` and `range`).

    A relation filters by the related row's id as a value of its column, not as a choice among
    the related rows: django-filter's choice filter looks the id up in every related row, a query
    per filter, and answers 400 to an id that does not exist but 200 to one the caller may not
    see, which tells them apart.
    """

    FILTER_DEFAULTS = {
        **django_filters.FilterSet.FILTER_DEFAULTS,
        models.AutoField: _INTEGER,
        models.BigAutoField: _INTEGER,
        models.SmallIntegerField: _INTEGER,
        models.IntegerField: _INTEGER,
        models.BigIntegerField: _INTEGER,
        models.DecimalField: {"filter_class": django_filters.NumberFilter, "extra": _decimal_digits},
        models.DateTimeField: {"filter_class": django_filters.DateTimeFilter,
                               "extra": lambda model_field: {"validators": [validate_utc_offset]}},
    }

    @classmethod
    def filter_for_lookup(cls, field, lookup_type):
        if isinstance(field, models.ForeignKey) and lookup_type != "isnull":  # One-to-one fields too.
            return super().filter_for_lookup(field.target_field, lookup_type)
        return super().filter_for_lookup(field, lookup_type)
