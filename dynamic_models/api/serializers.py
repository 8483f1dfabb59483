"""Serializers of runtime records, generated per entity from its body (DM-5).

Validation takes the engine's one path (`dynamic_models.validation`): the serializer parses
JSON types and looks up related records, then the record is cleaned by the same model
validation admin uses, and saved by `records.save()` (race-safe uniqueness, audited).
"""

from __future__ import annotations

import datetime
import decimal

from django.contrib.auth import get_user_model
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Model
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.relations import PKOnlyObject
from rest_framework.utils import html
from rest_framework.validators import UniqueValidator

from dynamic_models import children, file_fields, records, validation
from dynamic_models.registries import field_type_registry
from lowcode.api.exceptions import as_validation_error
from lowcode.api.fields import FlatListField
from lowcode.api.serializers import json_types as json_types  # Re-exported: dynamic_models.transfer reads it here.
from lowcode.api.serializers import type_errors
from rbac import columns as rbac_columns
from rbac import services as rbac

SYSTEM_FIELDS = ["id", "created_at", "updated_at", "created_by", "updated_by"]


class UserSummarySerializer(serializers.ModelSerializer):
    """A user as shown inside a record (`expand=submitted_by`)."""

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "first_name", "last_name"]
        read_only_fields = fields


class ExpandableRelatedField(serializers.PrimaryKeyRelatedField):
    """A related record's id, or the record itself when the request expands the field."""

    def __init__(self, target_serializer=None, **kwargs):
        self.target_serializer = target_serializer
        self.expanded = False
        super().__init__(**kwargs)

    def use_pk_only_optimization(self):
        return not self.expanded

    def get_attribute(self, instance):
        value = super().get_attribute(instance)
        if value is None and self.expanded and not hasattr(self, "child_relation"):
            # The related record is outside the caller's data scope (the view prefetched the
            # visible ones only): show its id, never its fields.
            related_id = getattr(instance, instance._meta.get_field(self.source).attname, None)
            return PKOnlyObject(related_id) if related_id is not None else None
        return value

    def to_representation(self, value):
        if self.expanded and not isinstance(value, PKOnlyObject):
            return self.target_serializer(value, context=self.context).data
        return value.pk

    def get_queryset(self):
        """What a write may point at: the records its writer may see, and the values the record
        holds already (asked only when a value is written, not on reads)."""
        queryset = super().get_queryset()
        target = queryset.model
        serializer = self.root.child if isinstance(self.root, serializers.ListSerializer) else self.root  # Bulk.
        user = serializer._user() if isinstance(serializer, RecordSerializer) else None
        if user is None or not (hasattr(target, "lowcode_entity") or target is get_user_model()):
            return queryset
        return records.pickable(user, target, request=self.context.get("request"), keep=self._current_ids())

    def _current_ids(self) -> list:
        record = self.root.instance
        if not isinstance(record, Model):
            return []
        relation = self.parent if isinstance(self.parent, serializers.ManyRelatedField) else self
        model_field = record._meta.get_field(relation.source)
        if model_field.many_to_many:
            return list(getattr(record, model_field.name).values_list("pk", flat=True))
        return [getattr(record, model_field.attname)]


@extend_schema_field({"readOnly": True, "description": "Computed by the entity's formula."})
class FormulaField(serializers.ReadOnlyField):
    """A formula's value: annotated by the manager on reads, computed after writes."""

    def get_attribute(self, instance):
        return instance.formula_value(self.field_name)

    def to_representation(self, value):
        if isinstance(value, decimal.Decimal):
            return str(value)
        if isinstance(value, datetime.date | datetime.time):
            return value.isoformat()
        return value


@extend_schema_field({"type": "string", "nullable": True, "readOnly": True, "description": "Masked for you: ****1234."})
class MaskedField(serializers.ReadOnlyField):
    """A value the caller may know exists but not read (RB-5)."""

    def get_attribute(self, instance):
        if self.field_name in instance.lowcode_formulas:
            return instance.formula_value(self.field_name)
        return super().get_attribute(instance)

    def to_representation(self, value):
        return None if value in (None, "") else rbac.mask(value)


class MaskedFilesField(MaskedField):
    """Files the caller may know exist but not open: their names masked, no id, no URL."""

    def __init__(self, *, multiple: bool, **kwargs):
        self.multiple = multiple
        super().__init__(**kwargs)

    def get_attribute(self, instance):
        return instance

    def to_representation(self, record):
        masked = [{"name": rbac.mask(stored.name)} for stored in _files_of(record, self.field_name, self.multiple)]
        return masked if self.multiple else (masked[0] if masked else None)


def _files_of(record, key: str, multiple: bool) -> list:
    """The files of a record field (a single file as the view's query fetched it with the record)."""
    if multiple:
        return file_fields.current_files(record, key)
    stored = getattr(record, key)
    return [stored] if stored is not None else []


class FilesField(serializers.Field):
    """A file or image field: StoredFile ids in (JSON) or uploaded files and ids (multipart); out,
    each file as `files.services.describe()` shows it with its stable `open_url`."""

    default_error_messages = {"incorrect_type": _("Incorrect type: expected %(type)s.")}

    def __init__(self, *, multiple: bool, **kwargs):
        self.multiple = multiple
        super().__init__(**kwargs)

    def get_value(self, dictionary):
        if html.is_html_input(dictionary):  # Multipart: the field may repeat, with files and ids.
            if self.field_name not in dictionary:
                return empty
            values = [value for value in dictionary.getlist(self.field_name) if value != ""]
            return values if self.multiple else (values[-1] if values else None)
        return super().get_value(dictionary)

    def get_attribute(self, instance):
        return instance

    def to_representation(self, record):
        described = [file_fields.describe(stored, record, self.field_name)
                     for stored in _files_of(record, self.field_name, self.multiple)]
        return described if self.multiple else (described[0] if described else None)

    def to_internal_value(self, data):
        if self.multiple and isinstance(data, str):
            data = [data]  # One file (an import's cell of one line).
        if self.multiple and not isinstance(data, list):
            self.fail("incorrect_type", type=_("a list of file ids"))
        items = data if self.multiple else [data]
        result = []
        for item in items:
            if isinstance(item, UploadedFile):
                result.append(item)
                continue
            if not isinstance(item, str):
                self.fail("incorrect_type", type=_("a file id"))
            try:
                result.append(file_fields.find(item))
            except DjangoValidationError as error:
                raise serializers.ValidationError(error.messages[0], code=error.code) from None
        return result


class ChildRowsField(serializers.ListField):
    """The ordered child rows of a record (dynamic_models.children) as a list, in order, that the
    caller may see; written, the list replaces them: rows with an `id` of one of them change it,
    rows without one are created, the others are deleted, and the order is the list's. Errors name
    the row: `claim_line[2].amount`."""

    def __init__(self, rows: children.ChildRows, **kwargs):
        self.rows = rows
        super().__init__(required=False, **kwargs)

    def get_attribute(self, instance):
        return children.rows(instance, self.rows, user=self.parent._user(), request=self.context.get("request"))

    def to_representation(self, data):
        return [self.child.to_representation(record) for record in data]

    def to_internal_value(self, data):
        if not isinstance(data, list):
            self.fail("not_a_list", input_type=type(data).__name__)
        parent = self.parent.instance
        existing = {record.pk: record for record in children.rows(
            parent, self.rows, user=self.parent._user(), request=self.context.get("request"))} if parent else {}
        context = {name: value for name, value in self.context.items() if name not in ("fields", "expand")}
        validated, errors = [], {}
        for index, item in enumerate(data):
            record_id = item.get("id") if isinstance(item, dict) else None
            if record_id is not None and record_id not in existing:
                errors[f"[{index}].id"] = [serializers.ErrorDetail(_("No row of this record with this id."),
                                                                   code="not_found")]
                continue
            row = type(self.child)(existing.get(record_id), data=item, context=context)
            if row.is_valid():
                validated.append(row.validated_data)
            else:
                errors.update({f"[{index}].{name}": detail for name, detail in row.errors.items()})
        if errors:
            raise serializers.ValidationError(errors)
        return validated


class RecordListSerializer(serializers.ListSerializer):
    """Bulk create: every row validated, then all saved in one transaction by the view."""

    def create(self, validated_data):
        return [self.child.create(attrs) for attrs in validated_data]


class RecordSerializer(serializers.ModelSerializer):
    """Base of the generated serializers. Subclasses set Meta and `entity`.

    The view puts `fields` (a set or None) and `expand` (a set) in the context; they apply to
    the top-level record only, not to expanded related records.
    """

    serializer_related_field = ExpandableRelatedField
    # Multiple choices: an item's error under the field, as the error format has it (not by index).
    serializer_field_mapping = {**serializers.ModelSerializer.serializer_field_mapping, ArrayField: FlatListField}
    entity: dict = {}
    #: Keys a client may send but never changes (system columns from a GET, put back in a PUT).
    ignored_keys = frozenset(SYSTEM_FIELDS)
    #: Set by build_serializer(): related entity key -> its serializer class (the snapshot's).
    serializers_by_key: dict = {}
    #: The rows' serializer of a child entity (inside its parent's record): what makes it a child is not the client's.
    child_rows: children.ChildRows | None = None

    class Meta:
        list_serializer_class = RecordListSerializer

    def build_relational_field(self, field_name, relation_info):
        field_class, kwargs = super().build_relational_field(field_name, relation_info)
        target = relation_info.related_model
        if target is get_user_model():
            kwargs["target_serializer"] = UserSummarySerializer
        else:
            kwargs["target_serializer"] = self.serializers_by_key[target._meta.model_name]
        return field_class, kwargs

    def get_fields(self):
        fields = super().get_fields()
        for field in fields.values():
            # Uniqueness is checked once, by the validation engine (and the database).
            field.validators = [v for v in field.validators if not isinstance(v, UniqueValidator)]
        fields = self._apply_column_rules(fields)
        if self.child_rows is not None:
            for name in (self.child_rows.relation, self.child_rows.order_field):
                if name in fields:
                    fields[name].read_only, fields[name].required = True, False
        if not self._is_top_level():
            return fields
        selected = self.context.get("fields")
        if selected:
            fields = {name: field for name, field in fields.items() if name in selected}
        for name in self.context.get("expand", ()):
            if name in fields:
                field = fields[name]
                getattr(field, "child_relation", field).expanded = True
        return fields

    def _user(self):
        # Imports run by a worker have no request: they put the importing user in the context.
        return self.context.get("user") or getattr(self.context.get("request"), "user", None)

    def _apply_column_rules(self, fields: dict) -> dict:
        """The caller's column rules (RB-5): hidden fields go, masked ones show `****1234`, read-only
        ones (owner fields included) refuse writes. OpenAPI generation builds serializers for the caller too."""
        access = rbac_columns.column_access(self._user(), self.Meta.model, request=self.context.get("request"))
        for name, rule in access.rules.items():
            if name not in fields:
                continue
            if rule == rbac_columns.HIDDEN:
                del fields[name]
            elif rule == rbac_columns.MASKED and isinstance(fields[name], FilesField):
                fields[name] = MaskedFilesField(multiple=fields[name].multiple, help_text=fields[name].help_text)
            elif rule == rbac_columns.MASKED:
                fields[name] = MaskedField(help_text=fields[name].help_text)
            else:
                fields[name].read_only = True
                fields[name].required = False
        return fields

    def _is_top_level(self) -> bool:
        return self.parent is None or (self.parent.parent is None and isinstance(self.parent, serializers.ListSerializer))

    def to_internal_value(self, data):
        try:
            return self._to_internal_value(data)
        except serializers.ValidationError as error:
            if not isinstance(error.detail, dict):
                raise
            # A child row's errors under their own path (`claim_line[2].amount`), as the error format has fields.
            raise serializers.ValidationError({
                f"{name}{path}" if isinstance(detail, dict) else name: row_detail
                for name, detail in error.detail.items()
                for path, row_detail in (detail.items() if isinstance(detail, dict) else [("", detail)])}) from None

    def _to_internal_value(self, data):
        if isinstance(data, dict):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            ignored = self.ignored_keys | ({self.child_rows.relation, self.child_rows.order_field}
                                           if self.child_rows is not None else set())
            refused = {}
            for name in data:
                if name in writable or name in ignored:
                    continue
                if name in self.fields:
                    refused[name] = [serializers.ErrorDetail(_("This field is read-only."), code="read_only")]
                else:
                    refused[name] = [serializers.ErrorDetail(_("Unknown field."), code="unknown_field")]
            refused.update(type_errors(self.fields, data))
            if refused:
                raise serializers.ValidationError(refused)
        return super().to_internal_value(data)

    def validate(self, attrs):
        """Build the record as it would be saved and run the validation engine on it."""
        model = self.Meta.model
        file_keys = set(file_fields.file_specs(model))
        files = {name: attrs.pop(name) for name in list(attrs) if name in file_keys}
        rows = {name: attrs.pop(name) for name in list(attrs) if isinstance(self.fields[name], ChildRowsField)}
        many = {name: attrs.pop(name) for name in list(attrs) if model._meta.get_field(name).many_to_many}
        record = self.instance if self.instance is not None else model()
        for name, value in attrs.items():
            setattr(record, name, value)
        # Relations were looked up by the serializer; read-only fields are not the client's.
        exclude = {name for name, field in self.fields.items() if field.read_only or
                   isinstance(field, serializers.RelatedField | serializers.ManyRelatedField | ChildRowsField)}
        exclude |= {f.name for f in model._meta.fields if not f.editable} | file_keys
        try:
            validation.clean_record(record, exclude=exclude)
        except DjangoValidationError as error:
            raise as_validation_error(error) from None
        return {"record": record, "many": many, "files": files, "rows": rows}

    def create(self, validated_data):
        return self._save(validated_data)

    def update(self, instance, validated_data):
        return self._save(validated_data)

    def _save(self, validated_data):
        record = validated_data["record"]
        user, request = self._user(), self.context.get("request")
        try:
            with transaction.atomic():  # The record and its child rows, all or nothing.
                records.save(record, user=user, request=request, files=validated_data["files"])
                for name, values in validated_data["many"].items():
                    getattr(record, name).set(values)
                for name, rows in validated_data.get("rows", {}).items():
                    children.replace(record, self.fields[name].rows,
                                     [(row["record"], row["files"], row["many"]) for row in rows],
                                     user=user, request=request)
        except DjangoValidationError as error:
            raise as_validation_error(error) from None
        return record


def build_serializer(model, serializers_by_key, *, child_rows: children.ChildRows | None = None
                     ) -> type[RecordSerializer]:
    """Generate the serializer class of a runtime model; `serializers_by_key` (the snapshot's,
    built on first use) gives the serializers its relations expand to.

    Class names keep the key's underscores (`purchase_order` -> `Purchase_OrderSerializer`), so
    OpenAPI component names such as `ExpenseRequest` never collide with another entity's.
    """
    body = model.lowcode_entity
    key = body["key"]
    fields, read_only, declared = list(SYSTEM_FIELDS), list(SYSTEM_FIELDS), {}
    for spec in body["fields"]:
        field_type = field_type_registry.get(spec["type"])
        fields.append(spec["key"])
        if not field_type.has_column:
            declared[spec["key"]] = FormulaField()
        elif isinstance(field_type, file_fields.FileType):
            multiple = field_type.is_multiple(spec)
            declared[spec["key"]] = FilesField(
                multiple=multiple, read_only=bool(spec.get("read_only")),
                required=bool(spec.get("required")) and not spec.get("read_only"),
                allow_null=not multiple and not spec.get("required"), help_text=spec.get("help_text") or None)
        elif field_type.serializer_field(spec) is not None:
            read_only_field = bool(spec.get("read_only") or field_type.filled_by_database)
            declared[spec["key"]] = field_type.serializer_field(spec)(
                read_only=read_only_field, required=bool(spec.get("required")) and not read_only_field,
                allow_null=not spec.get("required"), help_text=spec.get("help_text") or None)
        elif spec.get("read_only") or field_type.filled_by_database:
            read_only.append(spec["key"])
    if child_rows is None:  # Child rows one level deep: the rows' serializer has no rows of its own.
        for rows in children.child_rows_of(model):
            fields.append(rows.key)
            declared[rows.key] = ChildRowsField(rows, child=build_serializer(rows.model, serializers_by_key,
                                                                             child_rows=rows)())
    meta = type("Meta", (RecordSerializer.Meta,), {"model": model, "fields": fields, "read_only_fields": read_only})
    name = f"{key.title()}RowSerializer" if child_rows is not None else f"{key.title()}Serializer"
    return type(name, (RecordSerializer,), {
        "Meta": meta, "entity": body, "serializers_by_key": serializers_by_key, "child_rows": child_rows, **declared,
        "__doc__": body.get("description") or body.get("label") or key})
