"""The built-in field types, registered by DynamicModelsConfig.ready()."""

from __future__ import annotations

import datetime
import decimal

import nh3
from django import forms
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.functions import RandomUUID
from django.core import validators
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Cast, Concat, LPad
from django.utils.deconstruct import deconstructible
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from dynamic_models import validators as field_validators
from dynamic_models.registries import FieldType, option_validators

_NUMBER = {"type": "number"}
_REGEX = {"type": "string", "maxLength": 500}
_CHOICES = {
    "type": "array", "minItems": 1, "maxItems": 500,
    "items": {"type": "object", "required": ["value"], "additionalProperties": False, "properties": {
        "value": {"type": "string", "minLength": 1, "maxLength": 64}, "label": {"type": "string", "maxLength": 200},
        "color": {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"}}},
}
RANGE_LOOKUPS = ("exact", "in", "range", "gt", "gte", "lt", "lte", "isnull")
TEXT_LOOKUPS = ("exact", "iexact", "icontains", "istartswith", "in", "isnull")
ID_LOOKUPS = ("exact", "in", "isnull")
ON_DELETE = {"cascade": models.CASCADE, "protect": models.PROTECT, "set_null": models.SET_NULL,
             "restrict": models.RESTRICT}


def _schema(**properties) -> dict:
    return {"type": "object", "additionalProperties": False, "properties": properties}


@deconstructible
class GreaterThanValidator(validators.BaseValidator):
    message = _("Ensure this value is greater than %(limit_value)s.")
    code = "min_value"

    def compare(self, a, b):
        return a <= b


def _range_validators(options: dict) -> list:
    result = option_validators({k: v for k, v in options.items() if k != "min" or not options.get("exclusive_min")})
    if options.get("exclusive_min") and options.get("min") is not None:
        result.append(GreaterThanValidator(decimal.Decimal(str(options["min"]))))
    return result


class TextType(FieldType):
    type = "text"
    verbose_name = gettext_lazy("Short text")
    can_encrypt = True
    options_schema = _schema(max_length={"type": "integer", "minimum": 1, "maximum": 10000},
                             min_length={"type": "integer", "minimum": 0}, regex=_REGEX)
    searchable = True
    lookups = TEXT_LOOKUPS
    sample_value = "Taxi to the airport"

    def model_field_class(self, spec):
        return models.CharField

    def model_field_kwargs(self, spec):
        options = spec.get("options", {})
        return {"max_length": options.get("max_length", 255), "validators": option_validators(options)}

    def validate_spec(self, spec, entity_keys, field_keys):
        import re

        regex = spec.get("options", {}).get("regex")
        if regex:
            try:
                re.compile(regex)
            except re.error as error:
                return [{"path": "options.regex", "code": "regex", "message": _("Invalid pattern: %s") % error}]
        return []

    def invalid_cast_predicate(self, column, old_type):
        return None

    def example(self, spec):
        return None if spec.get("options", {}).get("regex") else super().example(spec)  # No honest one for any pattern.


class LongTextType(TextType):
    type = "long_text"
    verbose_name = gettext_lazy("Long text")
    sample_value = "Notes"
    options_schema = _schema(max_length={"type": "integer", "minimum": 1}, min_length={"type": "integer", "minimum": 0},
                             regex=_REGEX)

    def model_field_class(self, spec):
        return models.TextField

    def model_field_kwargs(self, spec):
        options = spec.get("options", {})
        kwargs = {"validators": option_validators(options)}
        if options.get("max_length"):
            kwargs["validators"].append(validators.MaxLengthValidator(options["max_length"]))
        return kwargs


class SanitizedTextField(models.TextField):
    """Rich text: HTML cleaned of scripts, handlers and unknown tags before it is stored."""

    def pre_save(self, model_instance, add):
        value = super().pre_save(model_instance, add)
        if value:
            value = nh3.clean(value)
            setattr(model_instance, self.attname, value)
        return value


class RichTextType(TextType):
    type = "rich_text"
    verbose_name = gettext_lazy("Rich text")
    can_encrypt = False
    lookups = ("icontains", "isnull")
    sample_value = "<p>Notes</p>"
    options_schema = _schema()

    def model_field_class(self, spec):
        return SanitizedTextField

    def model_field_kwargs(self, spec):
        return {}


class IntegerType(FieldType):
    type = "integer"
    verbose_name = gettext_lazy("Integer")
    options_schema = _schema(min=_NUMBER, max=_NUMBER, exclusive_min={"type": "boolean"})
    filterable = True
    lookups = RANGE_LOOKUPS
    sample_value = 3

    def model_field_class(self, spec):
        return models.BigIntegerField

    def model_field_kwargs(self, spec):
        return {"validators": _range_validators(spec.get("options", {}))}

    def invalid_cast_predicate(self, column, old_type):
        if old_type.type in ("integer", "decimal", "boolean"):
            return None
        return f"NOT ({column}::text ~ '^\\s*[-+]?[0-9]{{1,18}}\\s*$')"


class DecimalType(FieldType):
    type = "decimal"
    verbose_name = gettext_lazy("Decimal")
    options_schema = _schema(max_digits={"type": "integer", "minimum": 1, "maximum": 30},
                             decimal_places={"type": "integer", "minimum": 0, "maximum": 15},
                             min=_NUMBER, max=_NUMBER, exclusive_min={"type": "boolean"})
    filterable = True
    lookups = RANGE_LOOKUPS
    sample_value = "120.50"

    def model_field_class(self, spec):
        return models.DecimalField

    def model_field_kwargs(self, spec):
        options = spec.get("options", {})
        return {"max_digits": options.get("max_digits", 12), "decimal_places": options.get("decimal_places", 2),
                "validators": _range_validators(options)}

    def to_python(self, value):
        return decimal.Decimal(str(value))

    def validate_spec(self, spec, entity_keys, field_keys):
        options = spec.get("options", {})
        if options.get("decimal_places", 2) > options.get("max_digits", 12):
            return [{"path": "options.decimal_places", "code": "decimal_places",
                     "message": _("Decimal places cannot exceed max digits.")}]
        return []

    def invalid_cast_predicate(self, column, old_type):
        if old_type.type in ("integer", "decimal"):
            return None
        return f"NOT ({column}::text ~ '^\\s*[-+]?[0-9]*\\.?[0-9]+\\s*$')"


class BooleanType(FieldType):
    type = "boolean"
    verbose_name = gettext_lazy("Boolean")
    filterable = True
    lookups = ("exact", "isnull")
    sample_value = True
    can_be_unique = False

    def model_field_class(self, spec):
        return models.BooleanField

    def get_model_field(self, spec):
        field = super().get_model_field(spec)
        if spec.get("required") and field.default is models.NOT_PROVIDED:
            field.default = False
        return field

    def invalid_cast_predicate(self, column, old_type):
        return f"NOT (lower({column}::text) IN ('true', 'false', 't', 'f', '1', '0', 'yes', 'no'))"


class DateType(FieldType):
    type = "date"
    verbose_name = gettext_lazy("Date")
    options_schema = _schema(not_in_future={"type": "boolean"})
    filterable = True
    lookups = RANGE_LOOKUPS
    sample_value = "2026-03-01"

    def model_field_class(self, spec):
        return models.DateField

    def model_field_kwargs(self, spec):
        if spec.get("options", {}).get("not_in_future"):
            return {"validators": [NotInFutureValidator()]}
        return {}

    def to_python(self, value):
        return datetime.date.fromisoformat(value)

    def invalid_cast_predicate(self, column, old_type):
        if old_type.type in ("date", "datetime"):
            return None
        return f"NOT ({column}::text ~ '^\\d{{4}}-\\d{{2}}-\\d{{2}}')"


@deconstructible
class NotInFutureValidator:
    message = _("The date cannot be in the future.")

    def __call__(self, value):
        from django.core.exceptions import ValidationError
        from django.utils import timezone

        today = timezone.localdate()
        if value and (value.date() if isinstance(value, datetime.datetime) else value) > today:
            raise ValidationError(self.message, code="future")

    def __eq__(self, other):
        return isinstance(other, NotInFutureValidator)


class DateTimeType(DateType):
    type = "datetime"
    verbose_name = gettext_lazy("Date and time")
    sample_value = "2026-03-01T09:30:00Z"

    def model_field_class(self, spec):
        return models.DateTimeField

    def to_python(self, value):
        return datetime.datetime.fromisoformat(value)


class TimeType(FieldType):
    type = "time"
    verbose_name = gettext_lazy("Time")
    lookups = RANGE_LOOKUPS
    sample_value = "09:30:00"

    def model_field_class(self, spec):
        return models.TimeField

    def to_python(self, value):
        return datetime.time.fromisoformat(value)


class InternationalEmailField(models.CharField):
    """An email address, Unicode local parts and domains included (dynamic_models.validators)."""

    def to_python(self, value):
        value = super().to_python(value)
        try:
            return field_validators.normalize_email(value) if value else value
        except ValidationError:
            return value  # The validator says why; queries compare the text as written.

    def deconstruct(self):
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.CharField", args, kwargs  # Ejected code needs no Lowcode class.


class EmailType(TextType):
    type = "email"
    verbose_name = gettext_lazy("Email")
    sample_value = "alice@example.com"
    options_schema = _schema()
    # No JSON Schema "format": an optional address may be "", and the server checks the rest
    # (international addresses included) with email-validator.
    json_schema = {}

    def model_field_class(self, spec):
        return InternationalEmailField

    def model_field_kwargs(self, spec):
        return {"max_length": 254, "validators": [field_validators.validate_email]}

    def form_widget(self, spec):
        # Not <input type="email">: browsers refuse non-ASCII local parts there.
        return forms.TextInput(attrs={"inputmode": "email", "autocomplete": "email", "class": "vTextField"})


class URLType(TextType):
    type = "url"
    verbose_name = gettext_lazy("URL")
    sample_value = "https://example.com/"
    can_encrypt = False
    options_schema = _schema()

    def model_field_class(self, spec):
        return models.URLField

    def model_field_kwargs(self, spec):
        return {"max_length": 2000}


class PhoneNumberField(models.CharField):
    """A phone number, stored in E.164 (dynamic_models.validators): model validation normalises
    what was typed, in the field's region or the tenant's."""

    region: str | None = None

    def to_python(self, value):
        value = super().to_python(value)
        try:
            return field_validators.normalize_phone(value, self.region) if value else value
        except ValidationError:
            return value  # The validator says why; queries compare the text as written.

    def deconstruct(self):
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.CharField", args, kwargs  # Ejected code needs no Lowcode class.


class PhoneType(TextType):
    """Phone numbers as people write them ("(918) 458-4364"), stored in E.164 ("+19184584364")."""

    type = "phone"
    verbose_name = gettext_lazy("Phone")
    sample_value = "+86 10 1234 5678"
    options_schema = _schema(region={"type": "string", "pattern": "^[A-Z]{2}$",
                                     "description": "Country of numbers written without a country code "
                                                    "(ISO 3166, such as US); else the tenant's."})

    def model_field_class(self, spec):
        return PhoneNumberField

    def model_field_kwargs(self, spec):
        return {"max_length": 32, "validators": [field_validators.PhoneValidator(spec.get("options", {}).get("region"))]}

    def get_model_field(self, spec):
        field = super().get_model_field(spec)
        field.region = spec.get("options", {}).get("region")  # Not a keyword: encrypted fields have another class.
        return field

    formatted = True

    def form_widget(self, spec):
        return forms.TextInput(attrs={"type": "tel", "autocomplete": "tel", "class": "vTextField"})

    def display_text(self, spec, record, value):
        return field_validators.format_phone(value)


class ChoiceType(FieldType):
    type = "choice"
    verbose_name = gettext_lazy("Choice")
    options_schema = {**_schema(choices=_CHOICES), "required": ["choices"]}
    filterable = True
    lookups = ID_LOOKUPS

    @staticmethod
    def choices(spec) -> list[tuple[str, str]]:
        return [(c["value"], c.get("label") or c["value"]) for c in spec["options"]["choices"]]

    def model_field_class(self, spec):
        return models.CharField

    def model_field_kwargs(self, spec):
        return {"max_length": 64, "choices": self.choices(spec)}

    def example(self, spec):
        return spec.get("default") or spec["options"]["choices"][0]["value"]

    def validate_spec(self, spec, entity_keys, field_keys):
        values = [c["value"] for c in spec["options"]["choices"]]
        errors = []
        if len(values) != len(set(values)):
            errors.append({"path": "options.choices", "code": "duplicate", "message": _("Choice values must be unique.")})
        default = spec.get("default")
        if default is not None and default not in values:
            errors.append({"path": "default", "code": "invalid_choice",
                           "message": _("Default %(value)r is not one of the choices.") % {"value": default}})
        return errors


class ChoiceArrayField(ArrayField):
    """An array of choice values, edited as checkboxes."""

    def formfield(self, **kwargs):
        return forms.TypedMultipleChoiceField(
            choices=self.base_field.choices, required=not self.blank, label=self.verbose_name,
            help_text=self.help_text, widget=forms.CheckboxSelectMultiple)


class MultipleChoiceType(ChoiceType):
    type = "multiple_choice"
    verbose_name = gettext_lazy("Multiple choice")
    filterable = False
    can_be_unique = False
    lookups = ()
    orderable = False

    def model_field_class(self, spec):
        return ChoiceArrayField

    def model_field_kwargs(self, spec):
        return {"base_field": models.CharField(max_length=64, choices=self.choices(spec))}

    def example(self, spec):
        return [spec["options"]["choices"][0]["value"]]

    def validate_spec(self, spec, entity_keys, field_keys):
        default = spec.get("default")
        values = [c["value"] for c in spec["options"]["choices"]]
        if default is not None and (not isinstance(default, list) or set(default) - set(values)):
            return [{"path": "default", "code": "invalid_choice", "message": _("Default must be a list of choices.")}]
        return []


class JSONType(FieldType):
    type = "json"
    verbose_name = gettext_lazy("JSON")
    can_be_unique = False
    orderable = False
    sample_value = {"any": "value"}

    def model_field_class(self, spec):
        return models.JSONField


class UUIDType(FieldType):
    type = "uuid"
    verbose_name = gettext_lazy("UUID")
    lookups = ID_LOOKUPS
    sample_value = "3fa85f64-5717-4562-b3fc-2c963f66afa6"

    def model_field_class(self, spec):
        return models.UUIDField

    def model_field_kwargs(self, spec):
        # A per-row database default: Django would fill existing rows with one value of uuid4().
        return {"db_default": RandomUUID()} if spec.get("required") else {}


#: Date parts of auto number patterns (Frappe's naming series) and their PostgreSQL formats.
DATE_PARTS = {"YYYY": "YYYY", "YY": "YY", "MM": "MM", "DD": "DD"}


def pattern_parts(pattern: str) -> list[tuple[str, str]]:
    """`HR-EXP-.YYYY.-.####` as [("text", "HR-EXP-"), ("date", "YYYY"), ("text", "-"), ("counter", "####")]."""
    parts = []
    for part in pattern.split("."):
        if not part:
            continue
        kind = "date" if part in DATE_PARTS else "counter" if set(part) == {"#"} else "text"
        parts.append((kind, part))
    return parts


def _padded(number: models.Expression, digits: int) -> models.Expression:
    """`number` (text) zero-padded to `digits`, never cut: lpad() alone truncates longer numbers, and
    the number may be drawn only once, so pad to bigint's 20 digits and strip the zeros beyond."""
    return models.Func(LPad(number, 20, models.Value("0")), models.Value(f"^0{{0,{20 - digits}}}"),
                       models.Value(""), function="regexp_replace", output_field=models.CharField())


class AutoNumberType(FieldType):
    """`EXP-0001`: a prefix and a zero-padded number from a PostgreSQL sequence; or a date pattern
    such as `HR-EXP-.YYYY.-.####` (HR-EXP-2026-0001), counted per period (here per year) in
    dynamic_models_auto_number_counter (migrations 0006, 0008), the period in the server's time zone."""

    type = "auto_number"
    verbose_name = gettext_lazy("Auto number")
    filled_by_database = True
    lookups = ("exact", "in", "istartswith")
    options_schema = _schema(prefix={"type": "string", "maxLength": 20, "pattern": "^[A-Za-z0-9_-]*$"},
                             digits={"type": "integer", "minimum": 1, "maximum": 12},
                             pattern={"type": "string", "maxLength": 40, "pattern": "^[A-Za-z0-9_/.#-]*$"})

    @staticmethod
    def sequence_name(entity_key: str, field_key: str) -> str:
        return f"dm_{entity_key}_{field_key}_seq"

    def model_field_class(self, spec):
        return models.CharField

    def _patterned(self, spec) -> models.Expression:
        now = models.Func(models.Value(settings.TIME_ZONE), models.Func(function="statement_timestamp"),
                          function="timezone", output_field=models.DateTimeField())

        def date(part):
            return models.Func(now, models.Value(DATE_PARTS[part]), function="to_char", output_field=models.CharField())

        parts = pattern_parts(spec["options"]["pattern"])
        period = [date(text) for kind, text in parts if kind == "date"]
        # The field's stable id, not its key: renaming the field keeps its counters.
        series_start = models.Value(f"{spec.get('id') or spec['key']}:")
        series = Concat(series_start, *period) if period else series_start
        counter = Cast(models.Func(series, function="lowcode_next_number"), models.CharField())
        values = [date(text) if kind == "date" else _padded(counter, len(text)) if kind == "counter"
                  else models.Value(text) for kind, text in parts]
        return Concat(*values, models.Value("")) if len(values) < 2 else Concat(*values)

    def get_model_field(self, spec):
        options = spec.get("options", {})
        if options.get("pattern"):
            default = self._patterned(spec)
        else:
            number = Cast(models.Func(models.Value(self.sequence_name(spec["entity"], spec["key"])),
                                      function="nextval"), models.CharField())
            default = Concat(models.Value(options.get("prefix", "")), _padded(number, options.get("digits", 4)))
        return models.CharField(
            verbose_name=spec.get("label") or spec["key"], help_text=spec.get("help_text", ""),
            max_length=40, unique=True, editable=False, db_column=spec["key"], db_default=default)

    def validate_spec(self, spec, entity_keys, field_keys):
        options = spec["options"]
        pattern = options.get("pattern")
        if not pattern:
            return []
        if "prefix" in options or "digits" in options:
            return [{"path": "options.pattern", "code": "pattern", "message": _(
                "A pattern replaces the prefix and digits: remove them.")}]
        parts = pattern_parts(pattern)
        if [kind for kind, _text in parts].count("counter") != 1:
            return [{"path": "options.pattern", "code": "pattern", "message": _(
                "The pattern needs one counter, such as .#### (four digits): HR-EXP-.YYYY.-.####")}]
        if sum(len(text) for _kind, text in parts) > 30:
            return [{"path": "options.pattern", "code": "pattern", "message": _(
                "The numbers of this pattern would be too long (30 characters at most).")}]
        return []


class UserType(FieldType):
    type = "user"
    verbose_name = gettext_lazy("User")
    options_schema = _schema(on_delete={"enum": ["protect", "set_null"]},
                             acting_user_on_create={"type": "boolean", "title": "Set to the acting user on create",
                                                    "description": "Filled with whoever creates the record (admin, "
                                                                   "API, import), read-only after."})
    filterable = True
    can_be_unique = False
    lookups = ID_LOOKUPS
    links_user = True
    sample_value = 1

    @staticmethod
    def acting_user_on_create(spec) -> bool:
        return bool(spec.get("options", {}).get("acting_user_on_create"))

    def model_field_class(self, spec):
        return models.ForeignKey

    def model_field_kwargs(self, spec):
        on_delete = spec.get("options", {}).get("on_delete", "set_null")
        # related_name="+": the global User model must not learn one tenant's reverse accessors.
        # A field the acting user fills is no form's or client's to set.
        return {"to": settings.AUTH_USER_MODEL, "on_delete": ON_DELETE[on_delete], "related_name": "+",
                "db_column": f"{spec['key']}_id", "db_constraint": True,
                "editable": not self.acting_user_on_create(spec)}


class RelationType(FieldType):
    """A relation to an entity: many-to-one, one-to-one or many-to-many."""

    type = "relation"
    verbose_name = gettext_lazy("Relation")
    options_schema = {**_schema(target={"type": "string"},
                                cardinality={"enum": ["many_to_one", "one_to_one", "many_to_many"]},
                                on_delete={"enum": list(ON_DELETE)}),
                      "required": ["target"]}
    is_relation = True
    filterable = True
    can_be_unique = False
    lookups = ID_LOOKUPS
    sample_value = 1

    @staticmethod
    def _many(spec) -> bool:
        return spec["options"].get("cardinality") == "many_to_many"

    def model_field_class(self, spec):
        return {"many_to_one": models.ForeignKey, "one_to_one": models.OneToOneField,
                "many_to_many": models.ManyToManyField}[spec["options"].get("cardinality", "many_to_one")]

    def get_model_field(self, spec):
        options = spec["options"]
        cardinality = options.get("cardinality", "many_to_one")
        common = {"verbose_name": spec.get("label") or spec["key"], "help_text": spec.get("help_text", ""),
                  "to": f"data.{options['target']}", "related_name": f"{spec['entity']}_{spec['key']}_set"}
        if cardinality == "many_to_many":
            return models.ManyToManyField(blank=not spec.get("required"), db_table=f"dm_{spec['entity']}_{spec['key']}",
                                          **common)
        required = spec.get("required", False)
        on_delete = options.get("on_delete", "protect" if required else "set_null")
        return self.model_field_class(spec)(on_delete=ON_DELETE[on_delete], null=not required, blank=not required,
                                            db_column=f"{spec['key']}_id", **common)

    def can_order(self, spec):
        return not self._many(spec) and super().can_order(spec)

    def example(self, spec):
        return [self.sample_value] if self._many(spec) else self.sample_value

    def diagram_label(self, spec):
        return f"→ {spec['options'].get('target')}"

    def diagram_target(self, spec):
        return spec["options"].get("target")

    def validate_spec(self, spec, entity_keys, field_keys):
        options = spec["options"]
        errors = []
        if options["target"] not in entity_keys:
            errors.append({"path": "options.target", "code": "unknown_entity",
                           "message": _("Unknown entity %(target)r: publish it first.") % {"target": options["target"]}})
        if options.get("on_delete") == "set_null" and spec.get("required"):
            errors.append({"path": "options.on_delete", "code": "set_null_required",
                           "message": _("A required relation cannot be set to null on delete.")})
        return errors


class FormulaType(FieldType):
    """A read-only value computed from an expression over other fields (EX-1)."""

    type = "formula"
    verbose_name = gettext_lazy("Formula")
    options_schema = {**_schema(expression={"type": "string", "minLength": 1, "maxLength": 2000}),
                      "required": ["expression"]}
    has_column = False
    can_be_unique = False
    # Filters and ordering by its value, with the lookups of the value's kind (number, text, date,
    # true/false): formulas.value_kind(). Computed per read, it has no index.
    filterable = True
    # The expression is checked against the entity's other fields: dynamic_models/formulas.py.


# --- Computed from related records (issue 17) -----------------------------------------------
# Values the database computes per record when it is read (dynamic_models/formulas.py builds the
# SQL): nothing is stored, so nothing can fall out of sync. `relation` names the way there: a
# many-to-one or one-to-one field of this entity (lookup), a many-to-many field of this entity or
# `<entity>.<field>`, another entity's many-to-one field pointing here (rollup and count).
# Records filter and sort by these values like by stored ones, with the lookups of the value
# (formulas.value_kind(): a count's numbers, the field read's for a lookup, min or max; a lookup
# through many records gives lists, neither filtered nor sorted by). No index can hold a value
# computed per read: a filter on a rollup or count computes it (a correlated subquery) for each
# record in the caller's scope.

ROLLUP_FUNCTIONS = ("sum", "avg", "min", "max", "count")
_RELATION_PATH = {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)?$"}
_FIELD_KEY = {"type": "string", "minLength": 1, "maxLength": 50}


class ComputedType(FieldType):
    """A read-only value computed by the database from related records."""

    has_column = False
    can_be_unique = False
    filterable = True

    def diagram_label(self, spec):
        return f"{self.type} ← {spec.get('options', {}).get('relation')}"


class LookupType(ComputedType):
    """A field of the record a many-to-one (or one-to-one) relation points to: `project` → its `budget`."""

    type = "lookup"
    verbose_name = gettext_lazy("Lookup")
    options_schema = {**_schema(relation=_RELATION_PATH, field=_FIELD_KEY), "required": ["relation", "field"]}


class RollupType(ComputedType):
    """sum, avg, min, max or count of a field over the records of a many-to-many or reverse relation."""

    type = "rollup"
    verbose_name = gettext_lazy("Rollup")
    options_schema = {**_schema(relation=_RELATION_PATH, field=_FIELD_KEY, function={"enum": list(ROLLUP_FUNCTIONS)}),
                      "required": ["relation", "field", "function"]}


class CountType(ComputedType):
    """How many records a many-to-many or reverse relation holds."""

    type = "count"
    verbose_name = gettext_lazy("Count")
    options_schema = {**_schema(relation=_RELATION_PATH), "required": ["relation"]}


BUILTIN_FIELD_TYPES = [
    TextType, LongTextType, RichTextType, IntegerType, DecimalType, BooleanType, DateType, DateTimeType,
    TimeType, EmailType, URLType, PhoneType, ChoiceType, MultipleChoiceType, JSONType, UUIDType,
    AutoNumberType, UserType, RelationType, FormulaType, LookupType, RollupType, CountType,
]
