"""Field types of entities (DM-1). One short class per type; plugins register more."""

from __future__ import annotations

from django import forms
from django.core import validators
from django.db import models
from django.utils.translation import gettext as _

from lowcode.expressions.types import ExpressionType, type_of_model_field
from lowcode.registry import Instance, Registry


class FieldType(Instance):
    """A kind of entity field: its options and how it becomes a Django model field.

    A field spec is a dict of the entity body: `key`, `type`, `label`, `required`, `unique`,
    `index`, `default`, `help_text`, `read_only`, list/filter/search flags and `options`.
    """

    verbose_name: str = ""
    #: JSON Schema of this type's `options`.
    options_schema: dict = {"type": "object", "additionalProperties": False, "properties": {}}
    #: False for values computed on read (formulas): no column, no migration.
    has_column: bool = True
    #: Whether `unique` and `index` make sense for the column.
    can_be_unique: bool = True
    #: Text-like values that admin search and full-text search look into.
    searchable: bool = False
    #: Offered as an admin list filter.
    filterable: bool = False
    #: Whether a field marked filterable gets an index (lists filtered by it skip a full scan).
    index_when_filterable: bool = True
    #: A relation to another entity, resolved through the snapshot's registry.
    is_relation: bool = False
    #: Values may be encrypted at rest (the `encrypted` option); stored as text.
    can_encrypt: bool = False
    #: Lookups the API offers as filters (`amount__gte`); none: no API filter.
    lookups: tuple[str, ...] = ()
    #: Whether API lists may be ordered by the column.
    orderable: bool = True
    #: Filled by the database (auto numbers): read-only in admin and API.
    filled_by_database: bool = False
    #: A link to a user: the record's owner for rbac's owner scope.
    links_user: bool = False
    #: A plausible value, for request examples of the OpenAPI schema; None: no example.
    sample_value = None
    #: Lists and pages show its values as `display_text()` makes them (money, durations, stars).
    formatted: bool = False
    #: JSON Schema (OpenAPI) keywords of the type added to the field's generated schema.
    json_schema: dict = {}

    def filter_lookups(self, spec: dict) -> list[str]:
        """The API filter lookups of `spec`; ciphertext compares by equality only."""
        return ["exact"] if spec.get("encrypted") else list(self.lookups)

    def can_order(self, spec: dict) -> bool:
        """Whether API lists may be ordered by the field of `spec`."""
        return self.has_column and self.orderable and not spec.get("encrypted")

    def example(self, spec: dict):
        """A value of `spec` for the schema's example request; None leaves the field out."""
        return self.sample_value

    def form_widget(self, spec: dict) -> forms.Widget | None:
        """The admin form's widget of `spec`; None keeps the model field's own."""
        return None

    def display_text(self, spec: dict, record, value) -> str | None:
        """The text lists and pages show for `value` (not None) of `record`; None: the usual one.
        Types that have one set `formatted`."""
        return None

    def serializer_field(self, spec: dict):
        """The API's field class of `spec`, called with `required`, `allow_null`, `read_only` and
        `help_text`; None keeps the one DRF derives from the model field."""
        return None

    def export_value(self, value):
        """The value an export file (CSV, XLSX) shows for the API's representation `value` (not None)."""
        return value

    def import_value(self, value):
        """The API value of a filled import cell (text, or a typed XLSX value): `export_value` undone."""
        return value

    def sequence_name(self, entity_key: str, field_key: str) -> str | None:
        """The PostgreSQL sequence the column's default draws from, created and renamed with it."""
        return None

    def diagram_label(self, spec: dict) -> str:
        """How the entity diagram names the field's type."""
        return self.type

    def diagram_target(self, spec: dict) -> str | None:
        """The entity the diagram draws an arrow to, if any."""
        return None

    def model_field_class(self, spec: dict) -> type[models.Field]:
        raise NotImplementedError

    def model_field_kwargs(self, spec: dict) -> dict:
        """Return the type's own keyword arguments (length, choices, validators...)."""
        return {}

    def get_model_field(self, spec: dict) -> models.Field:
        """Build the Django model field for `spec`."""
        required = spec.get("required", False)
        kwargs = {
            "verbose_name": spec.get("label") or spec["key"].replace("_", " "),
            "help_text": spec.get("help_text", ""),
            "null": not required,
            "blank": not required,
            "db_column": spec["key"],
        }
        if self.can_be_unique:
            kwargs["unique"] = spec.get("unique", False)
            indexed = spec.get("index") or (spec.get("filterable") and self.filterable and self.index_when_filterable)
            kwargs["db_index"] = bool(indexed) and not kwargs["unique"]
        if spec.get("default") is not None:
            kwargs["default"] = self.to_python(spec["default"])
        kwargs.update(self.model_field_kwargs(spec))
        field_class = self.model_field_class(spec)
        if spec.get("encrypted") and self.can_encrypt:
            from dynamic_models.encryption import EncryptedTextField

            field_class = EncryptedTextField
            # The limit applies to the plain value; the ciphertext is longer.
            if kwargs.pop("max_length", None):
                kwargs.setdefault("validators", []).append(validators.MaxLengthValidator(
                    spec.get("options", {}).get("max_length", 255)))
        return field_class(**kwargs)

    def to_python(self, value):
        """Convert a JSON value of the definition (a default) to the field's Python value."""
        return value

    def expression_type(self, spec: dict) -> ExpressionType | None:
        """The type expressions read this field's values as (EX-1); None if they cannot read them.

        By default that of its model field: numbers with their digits, text, dates, ids of
        relations (see `type_of_model_field()`).
        """
        if not self.has_column:
            return None
        return type_of_model_field(self.get_model_field(spec))

    def validate_spec(self, spec: dict, entity_keys: set[str], field_keys: set[str]) -> list[dict]:
        """Return problems of `spec` beyond its options schema, as {"path", "code", "message"}."""
        return []

    def invalid_cast_predicate(self, column: str, old_type: FieldType) -> str | None:
        """Return SQL true for rows whose `column` (of `old_type`) cannot become this type.

        None means every value converts (or there is no type change worth checking).
        """
        return None


def option_validators(options: dict) -> list:
    result = []
    if options.get("regex"):
        result.append(validators.RegexValidator(options["regex"], _("Does not match the pattern %s.")
                                                % options["regex"], code="regex"))
    if options.get("min_length"):
        result.append(validators.MinLengthValidator(options["min_length"]))
    if options.get("min") is not None:
        result.append(validators.MinValueValidator(options["min"]))
    if options.get("max") is not None:
        result.append(validators.MaxValueValidator(options["max"]))
    return result


field_type_registry: Registry[FieldType] = Registry("field type")
