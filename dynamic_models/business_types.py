"""Field types of real-world models (issue 17): currency, percent, duration, rating, several users
and a link to a record of any entity. Registered with the built-in types (DynamicModelsConfig).

Each is one column, so that filters, ordering, exports and expressions read it as they read
the built-in types:

- `currency`: the amount, a decimal; its currency is the field's `currency` option (ISO 4217)
  or, per record, the value of the field its `currency_field` option names (Frappe's way).
  Displays format both with Babel in the reader's language (`format_money`).
- `percent`: the percentage as written, a decimal (12.5 is 12.5 %).
- `duration`: whole seconds (Frappe's and Baserow's storage); the API and imports also take
  `h:mm`, `h:mm:ss` and ISO 8601 (`PT1H30M`), exports and forms show `h:mm[:ss]`.
- `rating`: 1 to the `max` option (5 by default); empty is not rated.
- `users`: user ids, a PostgreSQL array; each must be a user of the tenant.
- `generic_link`: `entity:id` ("expense:12"), checked against the writer's data scope and
  shown as the linked record's display to readers who may see it.
"""

from __future__ import annotations

import datetime
import decimal
import re

import django_filters
from babel.core import Locale, UnknownLocaleError
from babel.numbers import format_currency, format_percent, get_currency_precision, is_currency
from django import forms
from django.contrib.auth import get_user_model
from django.contrib.postgres.fields import ArrayField
from django.core import validators
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.dateparse import parse_duration
from django.utils.deconstruct import deconstructible
from django.utils.translation import get_language, gettext_lazy, to_locale
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from dynamic_models.field_types import (
    RANGE_LOOKUPS,
    TEXT_LOOKUPS,
    DecimalType,
    IntegerType,
    _range_validators,
    _schema,
)
from dynamic_models.registries import FieldType

_CURRENCY_CODE = {"type": "string", "pattern": "^[A-Z]{3}$"}


# --- currency and percent ---------------------------------------------------------------------

def _locale() -> str:
    """The Babel locale of the active language, English for one Babel lacks."""
    name = to_locale(get_language() or "en")
    try:
        Locale.parse(name)
    except (UnknownLocaleError, ValueError):
        return "en"
    return name


def format_money(amount, currency: str | None) -> str:
    """`amount` in `currency` as the reader's language writes it (€1,234.50; 1.234,50 €; ¥1,235)."""
    if amount is None:
        return ""
    if not currency or not is_currency(currency):
        return str(amount)
    return format_currency(decimal.Decimal(str(amount)), currency, locale=_locale())


class CurrencyType(DecimalType):
    type = "currency"
    verbose_name = gettext_lazy("Currency")
    options_schema = _schema(currency=_CURRENCY_CODE, currency_field={"type": "string"},
                             max_digits={"type": "integer", "minimum": 1, "maximum": 30},
                             decimal_places={"type": "integer", "minimum": 0, "maximum": 6},
                             min={"type": "number"}, max={"type": "number"}, exclusive_min={"type": "boolean"})

    @staticmethod
    def currency_of(spec: dict, record=None) -> str | None:
        """The currency of the field's amount (in `record`, for a `currency_field`)."""
        options = spec.get("options", {})
        if options.get("currency_field"):
            return getattr(record, options["currency_field"], None) if record is not None else None
        return options.get("currency")

    def model_field_kwargs(self, spec):
        options = spec.get("options", {})
        places = options.get("decimal_places", get_currency_precision(options.get("currency") or "XXX")
                             if options.get("currency") else 2)
        return {"max_digits": options.get("max_digits", 14), "decimal_places": places,
                "validators": _range_validators(options)}

    formatted = True

    def example(self, spec):
        places = self.model_field_kwargs(spec)["decimal_places"]
        return str(decimal.Decimal("1234.50").quantize(decimal.Decimal(1).scaleb(-places)))

    def display_text(self, spec, record, value):
        return format_money(value, self.currency_of(spec, record))

    def validate_spec(self, spec, entity_keys, field_keys):
        options = spec["options"]
        errors = super().validate_spec({**spec, "options": {"max_digits": 14, **options}}, entity_keys, field_keys)
        if bool(options.get("currency")) == bool(options.get("currency_field")):
            errors.append({"path": "options.currency", "code": "currency", "message": _(
                "Give either the currency (such as EUR) or the field holding each record's currency.")})
        elif options.get("currency") and not is_currency(options["currency"]):
            errors.append({"path": "options.currency", "code": "currency",
                           "message": _("%(code)s is no currency code.") % {"code": options["currency"]}})
        elif options.get("currency_field") and options["currency_field"] not in field_keys:
            errors.append({"path": "options.currency_field", "code": "unknown_field",
                           "message": _("Unknown field %(key)r.") % {"key": options["currency_field"]}})
        return errors


class PercentType(DecimalType):
    type = "percent"
    verbose_name = gettext_lazy("Percent")
    options_schema = _schema(decimal_places={"type": "integer", "minimum": 0, "maximum": 6},
                             min={"type": "number"}, max={"type": "number"})
    sample_value = "12.50"
    json_schema = {"description": "A percentage as written: 12.5 is 12.5 %."}

    def model_field_kwargs(self, spec):
        options = spec.get("options", {})
        return {"max_digits": 12, "decimal_places": options.get("decimal_places", 2),
                "validators": _range_validators(options)}

    formatted = True

    def validate_spec(self, spec, entity_keys, field_keys):
        return []

    def display_text(self, spec, record, value):
        places = spec.get("options", {}).get("decimal_places", 2)
        return format_percent(decimal.Decimal(value) / 100, format="#,##0." + "#" * places + "%" if places else "#,##0%",
                              locale=_locale())


# --- duration ---------------------------------------------------------------------------------

_CLOCK = re.compile(r"^\s*(?:(\d+)\s*d\s*)?(\d+):([0-5]?\d)(?::([0-5]?\d))?\s*$")


def parse_seconds(value) -> int:
    """Seconds of a duration: a whole number, `[Nd] h:mm[:ss]` or ISO 8601 (`PT1H30M`)."""
    if isinstance(value, bool):
        raise ValidationError(_("Enter a duration such as 1:30 (hours and minutes) or a number of seconds."),
                              code="invalid")
    if isinstance(value, int):
        return value
    if isinstance(value, datetime.timedelta):
        return int(value.total_seconds())
    text = str(value).strip()
    if re.fullmatch(r"\d+", text):
        return int(text)
    clock = _CLOCK.match(text)
    if clock:
        days, hours, minutes, seconds = (int(part or 0) for part in clock.groups())
        return ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    parsed = parse_duration(text) if text[:1] in ("P", "-") else None
    if parsed is not None:
        return int(parsed.total_seconds())
    raise ValidationError(_("Enter a duration such as 1:30 (hours and minutes) or a number of seconds."),
                          code="invalid")


def format_seconds(seconds: int | None) -> str:
    """`h:mm`, or `h:mm:ss` if there are seconds, of a number of seconds."""
    if seconds is None:
        return ""
    sign, seconds = ("-" if seconds < 0 else ""), abs(int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours}:{minutes:02d}:{secs:02d}" if secs else f"{sign}{hours}:{minutes:02d}"


class DurationFormField(forms.CharField):
    def prepare_value(self, value):
        return format_seconds(value) if isinstance(value, int) else value

    def to_python(self, value):
        value = super().to_python(value)
        return parse_seconds(value) if value not in self.empty_values else None


class DurationSecondsField(models.BigIntegerField):
    """Whole seconds, typed as `h:mm` in forms."""

    def to_python(self, value):
        return None if value in (None, "") else parse_seconds(value)

    def formfield(self, **kwargs):
        # Not IntegerField's: its number input and bounds do not take `1:30`.
        return models.Field.formfield(self, **{**kwargs, "form_class": DurationFormField,
                                    "widget": forms.TextInput(attrs={"placeholder": "1:30", "class": "vTextField"})})

    def deconstruct(self):
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.BigIntegerField", args, kwargs


@extend_schema_field({"oneOf": [{"type": "integer", "minimum": 0}, {"type": "string", "example": "1:30"}]})
class DurationSerializerField(serializers.Field):
    """Seconds out; seconds, `h:mm[:ss]` or ISO 8601 in."""

    def to_internal_value(self, data):
        try:
            return parse_seconds(data)
        except ValidationError as error:
            raise serializers.ValidationError(error.messages[0], code="invalid") from None

    def to_representation(self, value):
        return value


class DurationType(IntegerType):
    type = "duration"
    verbose_name = gettext_lazy("Duration")
    options_schema = _schema(min={"type": "integer", "minimum": 0}, max={"type": "integer", "minimum": 0})
    filterable = True
    lookups = RANGE_LOOKUPS
    sample_value = 5400
    json_schema = {"description": "Seconds; also accepts h:mm, h:mm:ss or ISO 8601 (PT1H30M)."}

    def model_field_class(self, spec):
        return DurationSecondsField

    def model_field_kwargs(self, spec):
        return {"validators": [validators.MinValueValidator(0), *_range_validators(spec.get("options", {}))]}

    def to_python(self, value):
        return parse_seconds(value)

    def serializer_field(self, spec):
        return DurationSerializerField

    formatted = True

    def export_value(self, value):
        return format_seconds(value)

    def display_text(self, spec, record, value):
        return format_seconds(value)


# --- rating -----------------------------------------------------------------------------------

class RatingType(IntegerType):
    type = "rating"
    verbose_name = gettext_lazy("Rating")
    options_schema = _schema(max={"type": "integer", "minimum": 1, "maximum": 10})
    filterable = True
    can_be_unique = False
    lookups = RANGE_LOOKUPS
    sample_value = 4

    @staticmethod
    def top(spec: dict) -> int:
        return spec.get("options", {}).get("max", 5)

    def model_field_class(self, spec):
        return models.SmallIntegerField

    def model_field_kwargs(self, spec):
        return {"validators": [validators.MinValueValidator(1), validators.MaxValueValidator(self.top(spec))]}

    def form_widget(self, spec):
        return forms.Select(choices=[("", "—")] + [(n, "★" * n) for n in range(1, self.top(spec) + 1)])

    formatted = True

    def example(self, spec):
        return min(self.sample_value, self.top(spec))

    def display_text(self, spec, record, value):
        return "★" * value + "☆" * max(self.top(spec) - value, 0)


# --- several users ----------------------------------------------------------------------------

@deconstructible
class UsersExistValidator:
    """Every id is a user of the tenant."""

    def __call__(self, value):
        ids = set(value or ())
        found = set(get_user_model().objects.filter(pk__in=ids).values_list("pk", flat=True))
        missing = sorted(ids - found)
        if missing:
            raise ValidationError(_("No user with id %(ids)s.") % {"ids": ", ".join(map(str, missing))},
                                  code="does_not_exist")

    def __eq__(self, other):
        return isinstance(other, UsersExistValidator)


def user_choices(**filters) -> list[tuple[int, str]]:
    """(id, name) of the tenant's active people."""
    return [(user.pk, user.get_full_name() or user.username)
            for user in get_user_model().objects.filter(is_active=True, **filters).order_by("username")]


class UserIdsField(ArrayField):
    """Ids of users (no foreign keys: PostgreSQL has none from arrays; the validator checks them)."""

    def formfield(self, **kwargs):
        from django.contrib.admin.widgets import FilteredSelectMultiple

        return forms.TypedMultipleChoiceField(
            choices=user_choices, coerce=int, required=not self.blank, label=self.verbose_name,
            help_text=self.help_text, widget=FilteredSelectMultiple(self.verbose_name, False))

    def deconstruct(self):
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.contrib.postgres.fields.ArrayField", args, kwargs


class UserIdsContainFilter(django_filters.NumberFilter):
    """`assignees__contains=3`: records whose users include user 3."""

    field_class = forms.IntegerField

    def filter(self, qs, value):
        if value in ([], (), {}, "", None):
            return qs
        return qs.filter(**{f"{self.field_name}__contains": [value]})


class UsersType(FieldType):
    """Filters: `assignees__contains=3` (records whose users include user 3) and `__isnull`."""

    type = "users"
    verbose_name = gettext_lazy("Users")
    can_be_unique = False
    orderable = False
    filterable = True
    lookups = ("contains", "isnull")
    sample_value = [1]

    def model_field_class(self, spec):
        return UserIdsField

    formatted = True

    def model_field_kwargs(self, spec):
        return {"base_field": models.BigIntegerField(), "validators": [UsersExistValidator()]}

    def display_text(self, spec, record, value):
        names = dict(user_choices(pk__in=value))
        return ", ".join(names.get(pk, f"#{pk}") for pk in value)


# --- a link to a record of any entity ---------------------------------------------------------

_LINK = re.compile(r"^([a-z][a-z0-9_]{0,39}):([1-9][0-9]{0,18})$")


def parse_link(value) -> tuple[str, int]:
    """(entity key, id) of a link: `{"entity": "expense", "id": 12}` or `expense:12`."""
    if isinstance(value, dict):
        value = f"{value.get('entity')}:{value.get('id')}"
    match = _LINK.match(str(value).strip()) if isinstance(value, (str, dict)) else None
    if match is None:
        raise ValidationError(_("Enter a link as entity:id, such as expense:12."), code="invalid")
    return match[1], int(match[2])


def linked_record(value, *, user=None, request=None, allowed=()):
    """The record a link points at, among those `user` may see (None: the system, all of them).

    :raises ValidationError: no such entity (or not one of `allowed`), or no such record here.
    """
    from dynamic_models import records, runtime

    entity, pk = parse_link(value)
    if entity not in runtime.published_entity_bodies() or (allowed and entity not in allowed):
        raise ValidationError(_("%(entity)s is not an entity this field links to.") % {"entity": entity},
                              code="unknown_entity")
    model = runtime.get_model(entity)
    queryset = model.objects.all() if user is None else records.pickable(user, model, request=request)
    record = queryset.filter(pk=pk).first()
    if record is None:
        raise ValidationError(_("No %(entity)s with id %(id)s.") % {"entity": entity, "id": pk}, code="does_not_exist")
    return record


class GenericLinkField(models.CharField):
    """`entity:id` text; the lookup `entity` finds the links to records of one entity (`link__entity=expense`)."""

    def deconstruct(self):
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.CharField", args, kwargs  # Ejected code needs no Lowcode class.


@GenericLinkField.register_lookup
class LinkedEntity(models.lookups.StartsWith):
    lookup_name = "entity"

    def get_prep_lookup(self):
        return f"{self.rhs}:"  # LIKE 'expense:%', its wildcards escaped.

    def get_rhs_op(self, connection, rhs):
        return connection.operators["startswith"] % rhs


@deconstructible
class LinkValidator:
    """The link names a published entity (of `allowed`) and a live record of it."""

    def __init__(self, allowed=()):
        self.allowed = tuple(allowed)

    def __call__(self, value):
        if value not in (None, ""):
            linked_record(value, allowed=self.allowed)

    def __eq__(self, other):
        return isinstance(other, LinkValidator) and other.allowed == self.allowed


class GenericLinkSerializerField(serializers.Field):
    """In: `{"entity", "id"}` or `entity:id`, a record the writer may see. Out: entity, id and the
    record's display (null if the reader may not see it)."""

    def __init__(self, *, allowed=(), **kwargs):
        self.allowed = tuple(allowed)
        super().__init__(**kwargs)

    def _user_and_request(self):
        request = self.context.get("request")
        return self.context.get("user") or getattr(request, "user", None), request

    def to_internal_value(self, data):
        user, request = self._user_and_request()
        current = getattr(self.root.instance, self.source, None) if isinstance(self.root.instance, models.Model) else None
        try:
            entity, pk = parse_link(data)
            if f"{entity}:{pk}" != current:  # The value the record holds stays, seen or not.
                linked_record(data, user=user, request=request, allowed=self.allowed)
        except ValidationError as error:
            raise serializers.ValidationError(error.messages[0], code=error.code) from None
        return f"{entity}:{pk}"

    def to_representation(self, value):
        entity, pk = parse_link(value)
        # Per response: a list of records linking to the same few records looks each up once.
        shown = self.context.setdefault("linked_displays", {})
        if (entity, pk) not in shown:
            user, request = self._user_and_request()
            try:
                shown[entity, pk] = str(linked_record(value, user=user, request=request))
            except ValidationError:
                shown[entity, pk] = None
        return {"entity": entity, "id": pk, "display": shown[entity, pk]}


class GenericLinkType(FieldType):
    """Filters: by the exact link (`link=expense:12`), by the entity linked to (`link__entity=expense`)
    and the text lookups."""

    type = "generic_link"
    verbose_name = gettext_lazy("Link to any record")
    options_schema = _schema(entities={"type": "array", "uniqueItems": True, "maxItems": 200,
                                       "items": {"type": "string"}})
    filterable = True
    can_be_unique = False
    lookups = (*TEXT_LOOKUPS, "entity")
    orderable = False
    sample_value = "expense:12"
    json_schema = {"description": "In: {\"entity\": key, \"id\": id} or \"entity:id\"; out: entity, id and display."}

    def model_field_class(self, spec):
        return GenericLinkField

    def model_field_kwargs(self, spec):
        return {"max_length": 64, "validators": [LinkValidator(spec.get("options", {}).get("entities", ()))]}

    def serializer_field(self, spec):
        return lambda **kwargs: GenericLinkSerializerField(allowed=spec.get("options", {}).get("entities", ()),
                                                           **kwargs)

    def example(self, spec):
        return None  # No record to point at is known.

    def invalid_cast_predicate(self, column, old_type):
        return None if old_type.type == self.type else f"NOT ({column}::text ~ '{_LINK.pattern}')"

    formatted = True

    @staticmethod
    def linkable(spec: dict) -> list[str]:
        """The entities the field may link to: its `entities` option, else every published one."""
        from dynamic_models import runtime

        return list(spec.get("options", {}).get("entities") or runtime.published_entity_bodies())

    def export_value(self, value):
        return f"{value['entity']}:{value['id']}" if isinstance(value, dict) else value

    def display_text(self, spec, record, value):
        """The linked entity and id: lists and pages name no record their viewer may not see."""
        from dynamic_models import runtime

        entity, pk = parse_link(value)
        body = runtime.published_entity_bodies().get(entity) or {}
        return f"{body.get('label') or entity} #{pk}"

    def validate_spec(self, spec, entity_keys, field_keys):
        unknown = sorted(set(spec["options"].get("entities", ())) - set(entity_keys))
        if unknown:
            return [{"path": "options.entities", "code": "unknown_entity",
                     "message": _("Unknown entity %(target)r: publish it first.") % {"target": unknown[0]}}]
        return []


BUSINESS_FIELD_TYPES = [CurrencyType, PercentType, DurationType, RatingType, UsersType, GenericLinkType]
#: Filters of the model fields above that django-filter does not know (dynamic_models.api.records).
FILTER_DEFAULTS = {UserIdsField: {"filter_class": UserIdsContainFilter}}
