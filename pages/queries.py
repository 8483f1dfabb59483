"""What an entity page shows, from its query string: the records the viewer may see (rbac's
scoped queryset), searched, filtered and ordered only by fields they read in clear, a page of
them, and their values as the viewer may see them (column rules through ColumnAccess.present).

Shared by every view of an entity (table here; kanban, calendar and gallery in pages.boards):
`RecordQuery(request, model)` reads the query string once; `present(records, columns)` turns
records into rows of display cells; `paginate(query, request)` cuts a page.

Query parameters: `q` (search), `sort` (a field, `-` for descending), `columns` (comma-separated
keys), `page` or `cursor`, the API's filters (`category=travel`, `amount__gte=10`) and the
boards' `group`, `date`, `image` (fields they arrange cards by).
"""

from __future__ import annotations

import datetime
import decimal
import weakref
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import urlsplit

from django.core.exceptions import PermissionDenied
from django.core.paginator import InvalidPage, Paginator
from django.db import connection, models
from django.db.models import Exists, OuterRef, Q
from django.http import Http404, QueryDict
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import strip_tags
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django_filters.filterset import filterset_factory
from rest_framework.exceptions import APIException
from rest_framework.request import Request

from dynamic_models import business_types, children, file_fields, formulas, records, runtime
from dynamic_models.api.records import RecordFilterSet
from dynamic_models.registries import field_type_registry
from lowcode.api.pagination import Cursors
from rbac import columns as rbac_columns
from rbac import services as rbac

SEARCH, SORT, COLUMNS, PAGE, CURSOR = "q", "sort", "columns", "page", "cursor"
GROUP, DATE, IMAGE, MONTH = "group", "date", "image", "month"
#: The saved view a page was opened from (pages.services.view_url).
VIEW = "view"
#: Query parameters that are not filters.
OPTIONS = frozenset({SEARCH, SORT, COLUMNS, PAGE, CURSOR, GROUP, DATE, IMAGE, MONTH, VIEW})
PER_PAGE = 50
#: Above this many rows (PostgreSQL's estimate) a list pages by cursor: no count, no offset.
LARGE_TABLE_ROWS = 10_000
#: Characters of long text a cell shows.
CELL_CHARS = 80
SYSTEM_ORDERING = ("id", "created_at", "updated_at")
#: Types a table cell can be edited in place (a plain input or a select).
INLINE_TYPES = frozenset({"text", "long_text", "integer", "decimal", "boolean", "date", "datetime", "time", "email",
                          "url", "phone", "choice"})
INPUT_TYPES = {"integer": "number", "decimal": "number", "date": "date", "datetime": "datetime-local",
               "time": "time", "url": "url", "phone": "tel"}  # No "email": see forms_engine.services.
_VISIBLE = "_pages_visible_"


def entity_model(entity_key: str):
    """The runtime model of a published entity; 404 for anything else."""
    if entity_key not in runtime.published_entity_bodies():
        raise Http404(_("No such list."))
    return runtime.get_model(entity_key)


def require(request, model, action: str, record=None) -> None:
    """Refuse (403, naming what is missing) unless the viewer may `action` the entity (the record)."""
    operation = rbac.entity_operation(model.lowcode_entity["key"], action)
    if not rbac.check(request.user, operation, record, request=request):
        raise PermissionDenied(rbac.denial(operation))


def may(request, model, action: str, record=None) -> bool:
    return rbac.check(request.user, rbac.entity_operation(model.lowcode_entity["key"], action), record,
                      request=request)


def scoped(request, model, action: str = "view"):
    """The records of `model` the viewer may `action` (rbac's one read path)."""
    return rbac.scope_queryset(request.user, model.objects.all(), action, request=request)


def record_or_404(request, model, pk, action: str = "view"):
    """A record the viewer may see; one outside their scope answers like a wrong id."""
    record = scoped(request, model, action).filter(pk=pk).first()
    if record is None:
        raise Http404(_("No %(name)s with this id.") % {"name": model._meta.verbose_name})
    return record


@dataclass(frozen=True, eq=False)
class Column:
    """A field of the entity as the viewer may see it (hidden fields have none)."""

    key: str
    label: str
    type: str
    spec: dict = field(repr=False)
    rule: str | None = None
    #: Ordering and filtering by it are open to the viewer.
    queryable: bool = True
    sortable: bool = False
    in_list: bool = True

    @cached_property
    def masked(self) -> bool:
        return self.rule == rbac_columns.MASKED

    @cached_property
    def is_file(self) -> bool:
        return isinstance(field_type_registry.get(self.type), file_fields.FileType)

    @cached_property
    def editable(self) -> bool:
        """Editable in a table cell by the viewer (their change scope on the record still decides)."""
        field_type = field_type_registry.get(self.type)
        return (self.rule is None and self.type in INLINE_TYPES and not self.spec.get("read_only")
                and not field_type.filled_by_database and not self.spec.get("encrypted"))

    @cached_property
    def input_type(self) -> str:
        return INPUT_TYPES.get(self.type, "text")

    @cached_property
    def choices(self) -> list[tuple[str, str]]:
        return list(field_type_registry.get(self.type).choices(self.spec)) if self.type in ("choice", "multiple_choice") \
            else []

    @cached_property
    def edit_choices(self) -> list[tuple[str, str]]:
        """The options of an inline edit's select (choices, or yes and no); none: an input."""
        if self.type == "boolean":
            return [("true", _("Yes")), ("false", _("No"))]
        return self.choices if self.type == "choice" else []

    @cached_property
    def numeric(self) -> bool:
        return self.type in ("integer", "decimal")


def columns_of(model, access: rbac_columns.ColumnAccess) -> list[Column]:
    """The entity's fields the viewer may see, in the entity's order, labelled in their language."""
    result = []
    for spec in model.lowcode_entity["fields"]:
        key = spec["key"]
        if access.is_hidden(key):
            continue
        field_type = field_type_registry.get(spec["type"])
        label = str(model._meta.get_field(key).verbose_name) if field_type.has_column else spec.get("label") or key
        many = spec.get("options", {}).get("cardinality") == "many_to_many"
        orderable = field_type.can_order(spec) if field_type.has_column else formulas.can_order(model, key)
        result.append(Column(key=key, label=label[:1].upper() + label[1:], type=spec["type"], spec=spec,
                             rule=access.rule(key), queryable=access.can_query(key),
                             sortable=access.can_query(key) and orderable and not many,
                             in_list=spec.get("show_in_list", True) and not many))
    return result


def column(request, model, key: str) -> Column | None:
    """The viewer's column `key` of the entity; None if they may not see it or there is none."""
    access = rbac_columns.column_access(request.user, model, request=request)
    return next((item for item in columns_of(model, access) if item.key == key), None)


@dataclass
class FilterControl:
    """One filter of the list's filter bar: the widget its type wants and the values asked."""

    key: str
    label: str
    widget: str  # "select" (choices, booleans, relations), "range" (numbers, dates, times) or "text"
    params: tuple[str, ...]
    values: tuple[str, ...]
    input_type: str = "text"
    choices: list[tuple[str, str]] = field(default_factory=list)


_filtersets: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def filterset_class(model):
    """django-filter's filter set of the entity's filterable fields (formulas, lookups, rollups and
    counts included), with the API's lookups (built once per model); a child entity's relation to
    its parent is one (a parent's pages link to its rows' list)."""
    built = _filtersets.get(model)
    if built is None:
        filterable = [spec for spec in model.lowcode_entity["fields"]
                      if (spec.get("filterable") or children.is_child_relation(model, spec["key"]))
                      and field_type_registry.get(spec["type"]).filterable]
        lookups = {spec["key"]: field_type_registry.get(spec["type"]).filter_lookups(spec) for spec in filterable
                   if field_type_registry.get(spec["type"]).has_column
                   and field_type_registry.get(spec["type"]).filter_lookups(spec)}
        built = filterset_factory(model, filterset=RecordFilterSet, fields=lookups)
        built.base_filters.update(RecordFilterSet.computed_filters(
            model, [spec["key"] for spec in filterable if spec["key"] in model.lowcode_formulas]))
        _filtersets[model] = built
    return built


#: The input of a range filter on computed values, by the model field class of the values.
_RANGE_INPUTS = ((models.DateTimeField, "datetime-local"), (models.DateField, "date"), (models.TimeField, "time"),
                 ((models.IntegerField, models.DecimalField), "number"))


def _select(column: Column, param: str, params: QueryDict, choices) -> FilterControl:
    return FilterControl(column.key, column.label, "select", (param,), (params.get(param, ""),), choices=choices)


def _control(request, column: Column, lookups: list[str], params: QueryDict, model) -> FilterControl | None:
    key = column.key
    field_type = field_type_registry.get(column.type)
    # Formulas, lookups, rollups and counts: by the kind of their values.
    value_field = None if field_type.has_column else formulas.value_kind(model, key).field
    if column.type == "boolean" or isinstance(value_field, models.BooleanField):
        return _select(column, key, params, [("true", _("Yes")), ("false", _("No"))])
    choices = column.choices or [(str(value), str(label)) for value, label in getattr(value_field, "choices", None) or ()]
    if choices:
        return _select(column, key, params, choices)
    if column.type == "users":
        return _select(column, f"{key}__contains", params,
                       [(str(pk), name) for pk, name in business_types.user_choices()])
    if column.type == "generic_link":
        bodies = runtime.published_entity_bodies()
        return _select(column, f"{key}__entity", params, [(entity, (bodies.get(entity) or {}).get("label") or entity)
                                                          for entity in business_types.GenericLinkType.linkable(column.spec)])
    if field_type.is_relation:
        target = model._meta.get_field(key).related_model
        options = records.pickable(request.user, target, request=request)[:200]
        return FilterControl(key, column.label, "select", (key,), (params.get(key, ""),),
                             choices=[(str(item.pk), str(item)) for item in options])
    if "gte" in lookups and "lte" in lookups:
        names = (f"{key}__gte", f"{key}__lte")
        input_type = column.input_type if value_field is None else \
            next((kind for classes, kind in _RANGE_INPUTS if isinstance(value_field, classes)), "text")
        return FilterControl(key, column.label, "range", names, tuple(params.get(name, "") for name in names),
                             input_type=input_type)
    if "icontains" in lookups:
        return FilterControl(key, column.label, "text", (f"{key}__icontains",), (params.get(f"{key}__icontains", ""),))
    return None


class RecordQuery:
    """The records and fields an entity page shows, read from the request's query string.

    `errors` ({parameter: [messages]}) holds what the query string asked wrongly (a filter on a
    masked field, a bad date, an unknown sort); the records are then those of the valid rest.
    """

    def __init__(self, request, model, *, action: str = "view"):
        self.request, self.model = request, model
        self.entity = model.lowcode_entity
        self.params: QueryDict = request.GET
        self.access = rbac_columns.column_access(request.user, model, request=request)
        self.columns = columns_of(model, self.access)
        self.by_key = {column.key: column for column in self.columns}
        self.errors: dict[str, list[str]] = {}
        self.search = self.params.get(SEARCH, "").strip()
        self.shown = self._shown_columns()
        queryset = scoped(request, model, action)
        queryset = self._filtered(queryset)
        queryset = self._searched(queryset)
        self.sort, self.ordering = self._ordering()
        self.queryset = queryset.order_by(*self.ordering)

    # --- columns --------------------------------------------------------------------------

    def _shown_columns(self) -> list[Column]:
        asked = [key for value in self.params.getlist(COLUMNS) for key in value.split(",") if key]
        if not asked:
            return [column for column in self.columns if column.in_list]
        unknown = [key for key in asked if key not in self.by_key]
        if unknown:
            self.errors[COLUMNS] = [_("Unknown column(s): %(keys)s.") % {"keys": ", ".join(unknown)}]
        return [self.by_key[key] for key in asked if key in self.by_key] or \
            [column for column in self.columns if column.in_list]

    # --- filters --------------------------------------------------------------------------

    def filter_controls(self) -> list[FilterControl]:
        """The filter bar: the filterable fields the viewer reads in clear, each with its widget."""
        lookups = {name.split("__")[0]: [] for name in filterset_class(self.model).base_filters}
        for name in filterset_class(self.model).base_filters:
            lookups[name.split("__")[0]].append(name.split("__")[1] if "__" in name else "exact")
        controls = []
        for key, field_lookups in lookups.items():
            column = self.by_key.get(key)
            if column is None or not column.queryable:
                continue
            control = _control(self.request, column, field_lookups, self.params, self.model)
            if control is not None:
                controls.append(control)
        return controls

    def filter_params(self) -> dict[str, str]:
        """The filters asked (non-empty), by parameter."""
        return {name: value for name, value in self.params.items() if name not in OPTIONS and value != ""}

    def _filtered(self, queryset):
        asked = self.filter_params()
        if not asked:
            return queryset
        base_filters = filterset_class(self.model).base_filters
        allowed = {}
        for name, value in asked.items():
            query_filter = base_filters.get(name)
            if query_filter is None:
                self.errors[name] = [_("Unknown filter.")]
            elif not self.access.can_query(query_filter.field_name):
                self.errors[name] = [_("You may not filter, order or search by a field you cannot read in clear.")]
            else:
                allowed[name] = value
        filterset = filterset_class(self.model)(data=allowed, queryset=queryset, request=self.request)
        if not filterset.is_valid():
            for name, messages in filterset.errors.items():
                self.errors[name] = list(messages)
                allowed.pop(name, None)
            filterset = filterset_class(self.model)(data=allowed, queryset=queryset, request=self.request)
            filterset.is_valid()
        return filterset.qs

    # --- search and ordering --------------------------------------------------------------

    def search_fields(self) -> list[str]:
        return [column.key for column in self.columns if column.queryable and column.spec.get("searchable")
                and not column.spec.get("encrypted") and field_type_registry.get(column.type).searchable]

    def _searched(self, queryset):
        if not self.search:
            return queryset
        if "\x00" in self.search:
            self.errors[SEARCH] = [_("Search terms cannot contain the NUL character.")]
            return queryset
        fields = self.search_fields()
        if not fields:
            return queryset
        for term in self.search.split():
            condition = Q()
            for name in fields:
                condition |= Q(**{f"{name}__icontains": term})
            queryset = queryset.filter(condition)
        return queryset

    def sortable(self) -> set[str]:
        return {*SYSTEM_ORDERING, *(column.key for column in self.columns if column.sortable)}

    def _ordering(self) -> tuple[str, tuple[str, ...]]:
        asked = self.params.get(SORT, "")
        name = asked.removeprefix("-")
        if asked and name not in self.sortable():
            self.errors[SORT] = [_("You may not filter, order or search by a field you cannot read in clear.")
                                 if name in self.by_key and not self.by_key[name].queryable else
                                 _("Order by one of: %s (prefix - for descending).") % ", ".join(sorted(self.sortable()))]
            asked = ""
        if not asked:
            default = [term for term in self.model._meta.ordering if term.lstrip("-") in self.sortable()]
            terms = default or ["-id"]
        else:
            terms = [asked]
        if terms[-1].lstrip("-") != "id":  # A stable order: pages never repeat or skip a row.
            terms.append("-id" if terms[0].startswith("-") else "id")
        return asked, tuple(terms)

    # --- rows -----------------------------------------------------------------------------

    def with_display_data(self, queryset, columns: list[Column]):
        """`queryset` fetching what `present()` shows of `columns` in a bounded number of queries."""
        return with_display_data(self.request, self.model, queryset, columns)

    def url_with(self, **changes) -> str:
        """This page's query string with some parameters changed (None removes one)."""
        params = self.params.copy()
        for name, value in changes.items():
            params.pop(name, None)
            if value not in (None, ""):
                params[name] = value
        encoded = params.urlencode()
        return f"?{encoded}" if encoded else "?"


def with_display_data(request, model, queryset, columns: list[Column]):
    """Relations and files of the shown columns fetched with the rows (select_related or one
    prefetch each), and whether each related record is one the viewer may see."""
    user = request.user
    for column in columns:
        if column.masked and not column.is_file:
            continue
        model_field = model._meta.get_field(column.key) if field_type_registry.get(column.type).has_column else None
        if model_field is None or not model_field.is_relation:
            continue
        if model_field.many_to_many:
            queryset = queryset.prefetch_related(column.key)
            continue
        queryset = queryset.select_related(column.key)
        if hasattr(model_field.related_model, "lowcode_entity"):
            queryset = queryset.annotate(**{f"{_VISIBLE}{column.key}": Exists(
                records.pickable(user, model_field.related_model, request=request).filter(pk=OuterRef(column.key)))})
    return queryset


@dataclass
class Cell:
    """One value as the viewer sees it."""

    column: Column
    text: str = ""
    url: str = ""
    files: list[dict] = field(default_factory=list)
    #: The stored value for an input of an inline edit ("" when not editable).
    raw: str = ""
    #: Attributes of the cell's <td> a page sets (the table's inline editing).
    attrs: str = ""


@dataclass
class Row:
    record: object
    cells: list[Cell]
    editable: bool = False
    #: The record's page.
    url: str = ""

    @property
    def pk(self):
        return self.record.pk


def _text(value) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, datetime.datetime):
        return formats.localize(timezone.localtime(value) if timezone.is_aware(value) else value)
    if isinstance(value, datetime.date | datetime.time | decimal.Decimal | int | float):
        return formats.localize(value)
    return str(value)


def _raw(value) -> str:
    """A value as an HTML input holds it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.datetime):
        return timezone.localtime(value).strftime("%Y-%m-%dT%H:%M") if timezone.is_aware(value) else value.isoformat()
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value)


def person(user) -> str:
    return (user.get_full_name() or user.get_username()) if user is not None else ""


def cell(record, column: Column) -> Cell:
    """The value of `column` in `record` as the viewer sees it (masked through ColumnAccess.present)."""
    key = column.key
    field_type = field_type_registry.get(column.type)
    if column.is_file:
        stored = file_fields.current_files(record, key) if column.spec.get("options", {}).get("multiple") else \
            [item for item in [getattr(record, key)] if item is not None]
        if column.masked:
            return Cell(column, text=", ".join(rbac.mask(item.name) for item in stored))
        described = [file_fields.describe(item, record, key) for item in stored]
        return Cell(column, text=", ".join(item.name for item in stored), files=described)
    value = record.formula_value(key) if not field_type.has_column else getattr(record, key)
    if column.masked:
        shown = value if not hasattr(value, "pk") else str(value)
        return Cell(column, text=rbac_columns.ColumnAccess(rules={key: column.rule}).present({key: shown})[key] or "")
    if field_type.formatted and value not in (None, "", []):
        return Cell(column, text=field_type.display_text(column.spec, record, value), raw=_raw(value))
    if field_type.is_relation or field_type.links_user:
        model_field = record._meta.get_field(key)
        if model_field.many_to_many:
            return Cell(column, text=", ".join(str(item) for item in value.all()))
        if value is None:
            return Cell(column)
        if not hasattr(value, "lowcode_entity"):
            return Cell(column, text=person(value))
        if getattr(record, f"{_VISIBLE}{key}", False):
            return Cell(column, text=str(value), url=reverse("pages:detail", kwargs={
                "entity": value.lowcode_entity["key"], "pk": value.pk}))
        return Cell(column, text=f"#{value.pk}")
    if column.choices:
        labels = dict(column.choices)
        items = value if isinstance(value, list) else [value]
        return Cell(column, text=", ".join(str(labels.get(item, item)) for item in items if item not in (None, "")),
                    raw=_raw(value))
    if column.type == "rich_text":
        return Cell(column, text=Truncator(strip_tags(value or "")).chars(CELL_CHARS))
    text = _text(value)
    if column.type == "long_text":
        text = Truncator(text).chars(CELL_CHARS)
    return Cell(column, text=text, raw=_raw(value))


def present(request, model, records_: list, columns: list[Column]) -> list[Row]:
    """Rows of display cells; `editable` when the viewer may change the record (decided without a query)."""
    key = model.lowcode_entity["key"]
    change = rbac.entity_operation(key, "change")
    user = request.user
    base = reverse("pages:table", kwargs={"entity": key})  # A record's page is <list>/<pk>/.
    return [Row(record, [cell(record, column) for column in columns],
                editable=rbac.check(user, change, record, request=request), url=f"{base}{record.pk}/")
            for record in records_]


@dataclass
class PageOf:
    """A page of rows and the links around it (page numbers with a count, or cursors)."""

    records: list
    count: int | None = None
    number: int = 1
    pages: int = 1
    previous_url: str = ""
    next_url: str = ""
    numbers: list = field(default_factory=list)


def _estimated_rows(model) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)", [model._meta.db_table])
        row = cursor.fetchone()
    return max(int(row[0]), 0) if row and row[0] is not None else 0


def _relative(url: str | None) -> str:
    if not url:
        return ""
    parts = urlsplit(url)
    return f"?{parts.query}" if parts.query else "?"


def paginate(query: RecordQuery, queryset=None, *, per_page: int = PER_PAGE) -> PageOf:
    """A page of `queryset` (the query's own by default): numbered for small tables, by cursor for
    large ones (or when the query string carries a cursor). A page or cursor that does not exist: 404."""
    queryset = query.queryset if queryset is None else queryset
    if CURSOR in query.params or _estimated_rows(query.model) > LARGE_TABLE_ROWS:
        cursors = Cursors()
        cursors.page_size = per_page
        cursors.ordering = query.ordering
        drf_request = Request(query.request)
        try:
            rows = cursors.paginate_queryset(queryset, drf_request)
        except APIException:
            raise Http404(_("This page does not exist.")) from None
        return PageOf(records=list(rows), previous_url=_relative(cursors.get_previous_link()),
                      next_url=_relative(cursors.get_next_link()))
    paginator = Paginator(queryset, per_page)
    try:
        page = paginator.page(query.params.get(PAGE, "1") or "1")
    except InvalidPage:
        raise Http404(_("This page does not exist.")) from None
    numbers = list(paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1))
    return PageOf(
        records=list(page.object_list), count=paginator.count, number=page.number, pages=paginator.num_pages,
        previous_url=query.url_with(page=page.previous_page_number()) if page.has_previous() else "",
        next_url=query.url_with(page=page.next_page_number()) if page.has_next() else "",
        numbers=[(number, query.url_with(page=number) if isinstance(number, int) else "") for number in numbers])
