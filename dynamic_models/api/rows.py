"""Records read straight from `values()` rows (DM-5, issue 16): lists and retrieves without a model
instance or a serializer per record.

A `RowReader` is compiled once per serializer class (so per entity version: a publish builds new
classes), caller's column rules, `fields=` and `expand=`, from the fields of the serializer the
record serializer path would use for the same caller (`RecordSerializer.fields`: column rules
through `rbac.columns`, formulas, files, relations). Each output field keeps that field's own
`to_representation`, so the output is the serializer's, field for field. What a row cannot give
(a masked relation, a formula the query does not compute, an expansion inside an expansion)
makes `reader_for` answer None, and the view takes the serializer path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import Prefetch, prefetch_related_objects
from rest_framework import serializers
from rest_framework.relations import ManyRelatedField, PKOnlyObject

from dynamic_models.api.serializers import (
    ExpandableRelatedField,
    FilesField,
    FormulaField,
    MaskedField,
    MaskedFilesField,
)
from lowcode.api.fields import FlatListField
from rbac import columns as rbac_columns
from rbac import services as rbac

#: Compiled readers kept per serializer class (one per mix of column rules, `fields=` and `expand=`).
READERS_PER_CLASS = 64
#: DRF's own fields, whose `to_representation` takes the model field's value as `values()` gives it
#: and reads nothing of the request (a compiled reader serves every caller with the same rules). Other
#: classes, such as a field type's own serializer field, take the serializer path.
_VALUE_FIELDS = frozenset({
    serializers.CharField, serializers.EmailField, serializers.URLField, serializers.SlugField,
    serializers.RegexField, serializers.IntegerField, serializers.BigIntegerField, serializers.FloatField,
    serializers.DecimalField,
    serializers.BooleanField, serializers.DateTimeField, serializers.DateField, serializers.TimeField,
    serializers.DurationField, serializers.ChoiceField, serializers.MultipleChoiceField, serializers.JSONField,
    serializers.UUIDField, serializers.IPAddressField, FlatListField})


class NotReadable(Exception):
    """A field the row path cannot show as the serializer does: the view serializes records instead."""


@dataclass
class _Output:
    """One field of the output: from a column of the row, or filled per page (`per_page`)."""

    name: str
    column: str | None = None
    convert: Callable | None = None
    per_page: Callable | None = None


@dataclass
class RowReader:
    """The columns to select and, per output field, how to show its value."""

    model: type
    outputs: list[_Output] = field(default_factory=list)
    formulas: set[str] = field(default_factory=set)
    #: Expanded relations: {field name: (model field, the target's serializer class)}; read per page.
    expanded: dict = field(default_factory=dict)
    #: Fields shown from a model instance (files, many-to-many): their serializer fields.
    from_records: dict = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        """Every concrete column (a record for the permission check, a cursor's position) and the formulas shown."""
        return [f.attname for f in self.model._meta.concrete_fields] + sorted(self.formulas)

    def can_read(self, queryset) -> bool:
        """Whether the query computes every formula shown (a list of deleted records does not)."""
        return self.formulas <= set(queryset.query.annotations)

    def rows(self, queryset):
        """The query as rows of `columns` (relations are read per page, not joined or prefetched)."""
        if queryset._prefetch_related_lookups:
            queryset = queryset.prefetch_related(None)
        return queryset.values(*self.columns)

    def record(self, row: dict):
        """The model instance of a row, as the ORM would load it (permission checks, files, many-to-many)."""
        names = [f.attname for f in self.model._meta.concrete_fields]
        record = self.model.from_db("default", names, [row[name] for name in names])
        for name in self.formulas:
            setattr(record, name, row[name])
        return record

    def row_of(self, record) -> dict:
        """A loaded record as the row `rows()` would give."""
        row = {f.attname: getattr(record, f.attname) for f in self.model._meta.concrete_fields}
        row.update((name, record.__dict__.get(name)) for name in self.formulas)
        return row

    def expansions(self):
        """(target model, its serializer class) of each expanded relation."""
        for model_field, target_serializer in self.expanded.values():
            yield model_field.related_model, target_serializer
        for serializer_field in self.from_records.values():
            child = getattr(serializer_field, "child_relation", None)
            if child is not None and child.expanded:
                yield child.target_serializer.Meta.model, child.target_serializer

    def represent(self, rows: list[dict], request, context: dict, records: list | None = None) -> list[dict]:
        """The rows as the serializer shows their records."""
        filled = {}
        if self.from_records:
            records = records or [self.record(row) for row in rows]
            filled.update(self._from_records(records, request, context))
        for name, (model_field, target_serializer) in self.expanded.items():
            filled[name] = _expanded(model_field, target_serializer, [row[model_field.attname] for row in rows],
                                     request, context)
        result = []
        for index, row in enumerate(rows):
            shown = {}
            for output in self.outputs:
                if output.column is None:
                    shown[output.name] = filled[output.name][index]
                    continue
                value = row[output.column]
                shown[output.name] = None if value is None else output.convert(value)
            result.append(shown)
        return result

    def _from_records(self, records: list, request, context: dict) -> dict[str, list]:
        """Values shown from instances, loaded for the whole page as the serializer path loads them."""
        for name, serializer_field in self.from_records.items():
            model_field = self.model._meta.get_field(name)
            if isinstance(serializer_field, ManyRelatedField):
                related = model_field.related_model.objects.all()
                if serializer_field.child_relation.expanded:
                    # Related records are expanded only within the caller's scope of their entity.
                    related = rbac.scope_queryset(request.user, related, request=request)
                else:
                    related = related.only("pk")
                prefetch_related_objects(records, Prefetch(name, queryset=related))
            elif not model_field.many_to_many:  # A single file: fetched for the page at once.
                ids = {getattr(record, model_field.attname) for record in records} - {None}
                stored = model_field.related_model.objects.in_bulk(ids) if ids else {}
                for record in records:
                    model_field.set_cached_value(record, stored.get(getattr(record, model_field.attname)))
        shown = {}
        for name, serializer_field in self.from_records.items():
            if isinstance(serializer_field, ManyRelatedField):
                related = [list(getattr(record, name).all()) for record in records]
                child = serializer_field.child_relation
                if not child.expanded:
                    shown[name] = [[one.pk for one in some] for some in related]
                    continue
                # Shown for this caller by the target's reader (the bound field's context is the compiling request's).
                reader = _target_reader(self.model._meta.get_field(name).related_model, child.target_serializer,
                                        request, context)
                unique = {one.pk: one for some in related for one in some}
                found = dict(zip(unique, reader.represent([reader.row_of(one) for one in unique.values()], request,
                                                          context, records=list(unique.values())), strict=True))
                shown[name] = [[found[one.pk] for one in some] for some in related]
                continue
            values = shown[name] = []
            for record in records:
                attribute = serializer_field.get_attribute(record)
                check = attribute.pk if isinstance(attribute, PKOnlyObject) else attribute
                values.append(None if check is None else serializer_field.to_representation(attribute))
        return shown


def _expanded(model_field, target_serializer, ids: list, request, context: dict) -> list:
    """Expanded relations of a page: the related records the caller may see (users: any), else their ids."""
    found = _related_shown(model_field, target_serializer, {pk for pk in ids if pk is not None}, request, context)
    return [found.get(pk, pk) for pk in ids]


def _related_shown(model_field, target_serializer, wanted: set, request, context: dict) -> dict:
    """{id: record as the target's serializer shows it} of the related records the caller may see."""
    if not wanted:
        return {}
    target = model_field.related_model
    reader = _target_reader(target, target_serializer, request, context)
    queryset = target.objects.filter(pk__in=wanted)
    if target is not get_user_model():
        queryset = rbac.scope_queryset(request.user, queryset, request=request)
    rows = list(reader.rows(queryset))
    return dict(zip((row["id"] for row in rows), reader.represent(rows, request, context), strict=True))


def _target_reader(target, target_serializer, request, context: dict) -> RowReader:
    """The reader of an expanded relation's records for this caller (users: no column rules)."""
    rules = () if target is get_user_model() else rbac_columns.column_access(
        request.user, target, request=request).rules.items()
    return _compiled(target_serializer, context, rules)


def _compile(serializer_class, context: dict) -> RowReader:
    serializer = serializer_class(context=context)
    model = serializer_class.Meta.model
    reader = RowReader(model)
    formulas = getattr(model, "lowcode_formulas", {})
    expand = set(context.get("expand") or ())
    for name, serializer_field in serializer.fields.items():
        if serializer_field.write_only:
            continue
        if isinstance(serializer_field, FilesField | MaskedFilesField | ManyRelatedField):
            # Files (masked or not) and many-to-many: shown from the record, loaded per page.
            if isinstance(serializer_field, ManyRelatedField) and serializer_field.child_relation.expanded \
                    and not hasattr(serializer_field.child_relation.target_serializer.Meta.model, "lowcode_entity"):
                raise NotReadable(name)
            reader.from_records[name] = serializer_field
            reader.outputs.append(_Output(name))
        elif isinstance(serializer_field, MaskedField | FormulaField):
            if name in formulas:
                reader.formulas.add(name)
                column = name
            else:
                model_field = model._meta.get_field(name)
                if model_field.is_relation:  # Masked as the related record's text: not in a row.
                    raise NotReadable(name)
                column = model_field.attname
            reader.outputs.append(_Output(name, column, serializer_field.to_representation))
        elif isinstance(serializer_field, ExpandableRelatedField):
            model_field = model._meta.get_field(serializer_field.source)
            if serializer_field.pk_field is not None:
                raise NotReadable(name)
            if serializer_field.expanded:
                target = model_field.related_model
                if expand & {f.name for f in target._meta.get_fields() if f.is_relation}:
                    # The serializer path expands again inside the expanded record, record by record.
                    raise NotReadable(name)
                reader.expanded[name] = (model_field, serializer_field.target_serializer)
                reader.outputs.append(_Output(name))
            else:
                reader.outputs.append(_Output(name, model_field.attname, _same))
        elif type(serializer_field) in _VALUE_FIELDS and serializer_field.source_attrs == [serializer_field.source] \
                and (not isinstance(serializer_field, serializers.ListField)
                     or type(serializer_field.child) in _VALUE_FIELDS):
            model_field = model._meta.get_field(serializer_field.source)
            if model_field.is_relation:
                raise NotReadable(name)
            reader.outputs.append(_Output(name, model_field.attname, serializer_field.to_representation))
        else:
            raise NotReadable(name)
    return reader


def _same(value):
    return value


def _compiled(serializer_class, context: dict, rules) -> RowReader:
    """The reader of the serializer class for the context's `fields` and `expand` and these column rules."""
    selected, expand = context.get("fields"), context.get("expand") or ()
    key = (frozenset(selected) if selected else None, frozenset(expand), frozenset(rules))
    readers = serializer_class.__dict__.get("_row_readers")
    if readers is None:
        readers = serializer_class._row_readers = {}
    reader = readers.get(key)
    if reader is None:  # Two threads may both compile it; either result serves.
        try:
            reader = _compile(serializer_class, context)
        except NotReadable:
            reader = False
        if len(readers) >= READERS_PER_CLASS:
            readers.pop(next(iter(readers)), None)
        readers[key] = reader
    if reader is False:
        raise NotReadable(serializer_class.__name__)
    return reader


def reader_for(serializer_class, context: dict, request) -> RowReader | None:
    """The compiled reader for this caller, `fields=` and `expand=`, or None where only the serializer path can show the records."""
    access = rbac_columns.column_access(request.user, serializer_class.Meta.model, request=request)
    try:
        reader = _compiled(serializer_class, context, access.rules.items())
        for target, target_serializer in reader.expansions():  # Readable for this caller too.
            _target_reader(target, target_serializer, request, context)
    except NotReadable:
        return None
    return reader
