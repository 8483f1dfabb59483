"""Widgets of forms (FM-2): one class per widget, registered in `widget_registry`; plugins add more.

A widget turns what a browser posts for one field into a JSON value (`value_from_post`), says
which JSON Schema type that value has (`json_schema`), which kind of value expressions read
(`value_kind`), which entity field types it can edit in a bound form (`compatible`), and how
it is drawn (`template_name` under templates/forms_engine/widgets/).
"""

from __future__ import annotations

import decimal
import uuid

import nh3
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from lowcode.registry import Instance, Registry

#: Choices a builder lists in a select, radio or multi-select: value and optional label.
_CHOICES = {"type": "array", "maxItems": 500, "items": {
    "type": "object", "required": ["value"], "additionalProperties": False,
    "properties": {"value": {"type": "string", "minLength": 1, "maxLength": 200},
                   "label": {"type": "string", "maxLength": 200}}}}
_NUMBER = {"type": "number"}


def _options(**properties) -> dict:
    return {"type": "object", "additionalProperties": False, "properties": properties}


class Widget(Instance):
    """A kind of form input. Instances are stateless; the field's spec and options are passed in."""

    verbose_name = ""
    #: JSON Schema of the field's `options`.
    options_schema: dict = _options()
    #: The JSON Schema fragment of the value it produces; {} for widgets without data.
    json_schema: dict = {"type": "string"}
    #: How expressions read the value: number, text, boolean, date, datetime, time, list, or "" (no data).
    value_kind = "text"
    #: Entity field types this widget can edit in a bound form.
    field_types: tuple[str, ...] = ()
    #: Whether the widget holds data (a paragraph does not).
    has_data = True

    @property
    def template_name(self) -> str:
        return f"forms_engine/widgets/{self.type}.html"

    def compatible(self, field_type: str) -> bool:
        return field_type in self.field_types

    def is_posted(self, data, files, key: str) -> bool:
        """Whether the POST carries a value for the field (a disabled or hidden input is not sent)."""
        return any(value not in ("", None) for value in data.getlist(key)) or bool(files.getlist(key))

    def value_from_post(self, data, files, key: str):
        """The JSON value posted for the field; None when empty. A value that cannot be read is
        returned as posted, so that the schema names what is wrong with it."""
        value = str(data.get(key) or "").strip()
        return value or None

    def choices(self, spec: dict, *, user, entity_field: dict | None = None) -> list[dict]:
        """[{"value", "label"}] offered by choice widgets."""
        return []

    def invalid(self, value, spec: dict, *, user, entity_field: dict | None = None) -> str | None:
        """Why a value of the right JSON type is not one this widget offers (None: it is)."""
        return None


class TextWidget(Widget):
    type = "text"
    verbose_name = _("Text")
    # Durations are typed as 1:30 and links as expense:12 (their entity fields read these).
    field_types = ("text", "email", "url", "phone", "uuid", "long_text", "duration", "generic_link")
    options_schema = _options(input_type={"enum": ["text", "email", "url", "tel"]})


class TextareaWidget(Widget):
    type = "textarea"
    verbose_name = _("Text area")
    field_types = ("long_text", "text")
    options_schema = _options(rows={"type": "integer", "minimum": 1, "maximum": 50})


class RichTextWidget(Widget):
    type = "rich_text"
    verbose_name = _("Rich text")
    field_types = ("rich_text",)

    def value_from_post(self, data, files, key):
        value = super().value_from_post(data, files, key)
        # Scripts, handlers and unknown tags never reach storage or another person's page.
        return nh3.clean(value) if value else None


class NumberWidget(Widget):
    type = "number"
    verbose_name = _("Number")
    json_schema = {"type": "number"}
    value_kind = "number"
    field_types = ("integer", "decimal", "currency", "percent")
    options_schema = _options(step=_NUMBER)

    def value_from_post(self, data, files, key):
        value = super().value_from_post(data, files, key)
        if value is None:
            return None
        try:
            number = decimal.Decimal(value.replace(",", "")) if isinstance(value, str) else decimal.Decimal(value)
        except decimal.InvalidOperation:
            return value
        if not number.is_finite():
            return value
        return int(number) if number == number.to_integral_value() else float(number)


class SliderWidget(NumberWidget):
    type = "slider"
    verbose_name = _("Slider")
    options_schema = {**_options(min=_NUMBER, max=_NUMBER, step=_NUMBER), "required": ["min", "max"]}


class _ChoiceWidget(Widget):
    field_types = ("choice",)
    options_schema = _options(choices=_CHOICES)

    def choices(self, spec, *, user, entity_field=None):
        listed = spec.get("options", {}).get("choices")
        if not listed and entity_field is not None:
            listed = entity_field.get("options", {}).get("choices", [])
        return [{"value": item["value"], "label": item.get("label") or item["value"]} for item in listed or []]

    def invalid(self, value, spec, *, user, entity_field=None):
        offered = {choice["value"] for choice in self.choices(spec, user=user, entity_field=entity_field)}
        chosen = value if isinstance(value, list) else [value]
        return _("Select a valid choice.") if offered and not set(chosen) <= offered else None


class SelectWidget(_ChoiceWidget):
    type = "select"
    verbose_name = _("Select")


class RadioWidget(_ChoiceWidget):
    type = "radio"
    verbose_name = _("Radio buttons")


class MultiSelectWidget(_ChoiceWidget):
    type = "multi_select"
    verbose_name = _("Multiple select")
    json_schema = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
    value_kind = "list"
    field_types = ("multiple_choice",)

    def value_from_post(self, data, files, key):
        values = [value for value in data.getlist(key) if value != ""]
        return values or None


class CheckboxWidget(Widget):
    type = "checkbox"
    verbose_name = _("Checkbox")
    json_schema = {"type": "boolean"}
    value_kind = "boolean"
    field_types = ("boolean",)

    def is_posted(self, data, files, key):
        return data.get(key) not in (None, "", "false", "0")

    def value_from_post(self, data, files, key):
        # An unticked box is not posted at all: absent means false.
        return self.is_posted(data, files, key)


class SwitchWidget(CheckboxWidget):
    type = "switch"
    verbose_name = _("Switch")


class DateWidget(Widget):
    type = "date"
    verbose_name = _("Date")
    json_schema = {"type": "string", "format": "date"}
    value_kind = "date"
    field_types = ("date",)


class DateTimeWidget(Widget):
    type = "datetime"
    verbose_name = _("Date and time")
    json_schema = {"type": "string", "format": "date-time"}
    value_kind = "datetime"
    field_types = ("datetime",)

    def value_from_post(self, data, files, key):
        value = super().value_from_post(data, files, key)
        try:
            parsed = parse_datetime(value) if value else None
        except ValueError:
            return value
        if parsed is None:
            return value
        # A browser's datetime-local has no offset: it is the person's local time.
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed)
        return parsed.isoformat()


class TimeWidget(Widget):
    type = "time"
    verbose_name = _("Time")
    # JSON Schema's "time" format wants an offset (RFC 3339); a time field has none.
    json_schema = {"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$"}
    value_kind = "time"
    field_types = ("time",)


class FileWidget(Widget):
    """Uploads through the files app; the value is the list of the StoredFile ids.

    Files kept from before (a draft's, a record's) are posted as their ids; new uploads get a
    placeholder id until they are stored (see `services.submit`).
    """

    type = "file"
    verbose_name = _("File upload")
    json_schema = {"type": "array", "items": {"type": "string", "format": "uuid"}}
    value_kind = "list"
    field_types = ("file",)
    options_schema = _options(allowed_types={"type": "array", "items": {"type": "string", "maxLength": 100}},
                              max_size={"type": "integer", "minimum": 1}, multiple={"type": "boolean"})

    def value_from_post(self, data, files, key):
        kept = [value for value in data.getlist(key) if value]
        return [*kept, *(placeholder(upload) for upload in files.getlist(key))] or None


class ImageWidget(FileWidget):
    type = "image"
    verbose_name = _("Image upload")
    field_types = ("image",)


def placeholder(upload) -> str:
    """The id standing for an upload not stored yet; the upload remembers it."""
    if not hasattr(upload, "lowcode_placeholder"):
        upload.lowcode_placeholder = str(uuid.uuid4())
    return upload.lowcode_placeholder


class ParagraphWidget(Widget):
    type = "paragraph"
    verbose_name = _("Paragraph")
    json_schema = {}
    value_kind = ""
    has_data = False


class _PickerWidget(Widget):
    """A choice of a row by its id (users, departments, records)."""

    json_schema = {"type": "integer"}
    value_kind = "number"

    def value_from_post(self, data, files, key):
        value = super().value_from_post(data, files, key)
        return int(value) if isinstance(value, str) and value.isdigit() else value

    #: The text field a picker's search looks into (besides the id).
    search_field = ""

    def queryset(self, spec: dict, *, user, entity_field: dict | None = None):
        raise NotImplementedError

    def searched_field(self, model) -> str:
        return self.search_field

    def invalid(self, value, spec, *, user, entity_field=None):
        if not isinstance(value, int) or self.queryset(spec, user=user, entity_field=entity_field).filter(pk=value).exists():
            return None
        return _("Choose one of the offered values.")

    def choices(self, spec, *, user, entity_field=None):
        return [{"value": str(row.pk), "label": str(row)} for row in self.queryset(spec, user=user,
                                                                                  entity_field=entity_field)[:200]]


class UserWidget(_PickerWidget):
    type = "user"
    verbose_name = _("User picker")
    field_types = ("user",)
    search_field = "username"

    def queryset(self, spec, *, user, entity_field=None):
        from django.contrib.auth import get_user_model

        from dynamic_models import records

        return records.pickable(user, get_user_model()).order_by("username")


class DepartmentWidget(_PickerWidget):
    type = "department"
    verbose_name = _("Department picker")
    search_field = "name"

    def queryset(self, spec, *, user, entity_field=None):
        from rbac.models import Department

        return Department.objects.order_by("name")


class RelationWidget(_PickerWidget):
    """A record of another entity, among those the viewer may see (records.pickable)."""

    type = "relation"
    verbose_name = _("Relation picker")
    field_types = ("relation",)
    options_schema = _options(entity={"type": "string", "maxLength": 40})

    def target(self, spec: dict, entity_field: dict | None = None) -> str | None:
        if entity_field is not None:
            return entity_field.get("options", {}).get("target")
        return spec.get("options", {}).get("entity")

    def searched_field(self, model):
        return model.lowcode_entity.get("display_field") or ""

    def queryset(self, spec, *, user, entity_field=None):
        from dynamic_models import records, runtime

        return records.pickable(user, runtime.get_model(self.target(spec, entity_field))).order_by("pk")


class RatingWidget(Widget):
    """Stars from 1 to the entity field's `max` (or the widget's), as radio buttons."""

    type = "rating"
    verbose_name = _("Rating")
    template_name = "forms_engine/widgets/radio.html"
    json_schema = {"type": "integer", "minimum": 1}
    value_kind = "number"
    field_types = ("rating",)
    options_schema = _options(max={"type": "integer", "minimum": 1, "maximum": 10})

    def value_from_post(self, data, files, key):
        value = super().value_from_post(data, files, key)
        return int(value) if isinstance(value, str) and value.isdigit() else value

    def choices(self, spec, *, user, entity_field=None):
        top = (entity_field or spec).get("options", {}).get("max", 5)
        return [{"value": str(stars), "label": "★" * stars} for stars in range(1, top + 1)]

    def invalid(self, value, spec, *, user, entity_field=None):
        offered = {int(choice["value"]) for choice in self.choices(spec, user=user, entity_field=entity_field)}
        return None if value in offered else _("Select a valid choice.")


class UsersWidget(Widget):
    """Several of the tenant's active people."""

    type = "users"
    verbose_name = _("Users picker")
    template_name = "forms_engine/widgets/multi_select.html"
    json_schema = {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}
    value_kind = "list"
    field_types = ("users",)

    def value_from_post(self, data, files, key):
        values = [int(value) if value.isdigit() else value for value in data.getlist(key) if value != ""]
        return values or None

    def queryset(self, *, user):
        from django.contrib.auth import get_user_model

        from dynamic_models import records

        return records.pickable(user, get_user_model()).order_by("username")

    def choices(self, spec, *, user, entity_field=None):
        return [{"value": str(row.pk), "label": str(row)} for row in self.queryset(user=user)[:200]]

    def invalid(self, value, spec, *, user, entity_field=None):
        ids = set(value) if isinstance(value, list) else {value}
        if ids <= set(self.queryset(user=user).filter(pk__in=[i for i in ids if isinstance(i, int)])
                      .values_list("pk", flat=True)):
            return None
        return _("Choose one of the offered values.")


BUILTIN_WIDGETS = [TextWidget, TextareaWidget, RichTextWidget, NumberWidget, SliderWidget, SelectWidget,
                   MultiSelectWidget, RadioWidget, CheckboxWidget, SwitchWidget, DateWidget, DateTimeWidget,
                   TimeWidget, FileWidget, ImageWidget, ParagraphWidget, UserWidget, DepartmentWidget,
                   RelationWidget, RatingWidget, UsersWidget]

widget_registry: Registry[Widget] = Registry("form widget")
