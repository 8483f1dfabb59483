"""Pagination of list endpoints: page numbers by default, cursors for big tables (DM-5).

Counts never scan a big table (issue 16): a page counts the rows of its query up to
`API_EXACT_COUNT_LIMIT` (`LIMIT limit + 1`); above that it gives PostgreSQL's estimate, flagged
`"count_is_estimate": true`, and finds its next page by reading one row more. `count=false`
skips the count. A table whose statistics say it holds more rows than the limit is listed with
cursors unless the client asks for pages (`page=` or `pagination=page`).
"""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import EmptyPage, Page, Paginator
from django.db import connection
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import ErrorDetail, NotFound, ValidationError
from rest_framework.pagination import BasePagination, CursorPagination, PageNumberPagination
from rest_framework.response import Response

from lowcode.api.filters import PostgresFilterSet

PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
#: Seconds a table's size (from PostgreSQL's statistics) is trusted for choosing the default pagination.
TABLE_SIZE_SECONDS = 60
_table_sizes: dict[tuple[str, str], tuple[float, float]] = {}


def exact_count_limit() -> int:
    return settings.API_EXACT_COUNT_LIMIT


def estimated_rows(queryset) -> int:
    """PostgreSQL's estimate of the rows the query gives (its plan's row count, no rows read)."""
    sql, params = queryset.order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    return int(plan[0]["Plan"]["Plan Rows"])


def table_is_large(model) -> bool:
    """Whether the model's table holds more rows than the exact-count limit, by PostgreSQL's statistics
    (`reltuples`, kept by ANALYZE and autovacuum; -1 before the first), trusted for a minute."""
    key = (connection.schema_name if hasattr(connection, "schema_name") else "", model._meta.db_table)
    known = _table_sizes.get(key)
    now = time.monotonic()
    if known is None or now - known[0] > TABLE_SIZE_SECONDS:
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)",
                           [connection.ops.quote_name(model._meta.db_table)])
            found = cursor.fetchone()
        known = _table_sizes[key] = (now, found[0] if found else -1)
    return known[1] > exact_count_limit()


class CountedPage(Page):
    """A page that knows whether another follows from the row it read beyond its end, not from a count."""

    def __init__(self, object_list, number, paginator, *, following: bool):
        super().__init__(object_list, number, paginator)
        self.following = following

    def has_next(self):
        return self.following

    def next_page_number(self):
        return self.number + 1

    def previous_page_number(self):
        return self.number - 1


class LimitedCountPaginator(Paginator):
    """Django's paginator with a count that stops at the exact-count limit (see the module's docstring).

    `count` is the exact number of rows up to the limit, else PostgreSQL's estimate (at least
    limit + 1), or None when the client said `count=false`; pages are Django's own while the
    count is exact.
    """

    def __init__(self, object_list, per_page, *, counted: bool = True):
        super().__init__(object_list, per_page)
        self.counted = counted
        self.count_is_estimate = False

    @cached_property
    def count(self):
        if not self.counted:
            return None
        if not hasattr(self.object_list, "order_by"):  # A list: counted as Django counts it.
            return super().count
        limit = exact_count_limit()
        exact = self.object_list.order_by()[:limit + 1].count()
        if exact <= limit:
            return exact
        self.count_is_estimate = True
        return max(estimated_rows(self.object_list), limit + 1)

    @property
    def is_exact(self) -> bool:
        return self.count is not None and not self.count_is_estimate

    @cached_property
    def num_pages(self):
        if self.count is None:
            return 0  # Unknown: `page=last` is refused, the links come from the rows.
        return super().num_pages if self.is_exact else math.ceil(self.count / self.per_page)

    def page(self, number):
        if self.is_exact:
            return super().page(number)
        number = self._whole_number(number)
        bottom = (number - 1) * self.per_page
        rows = list(self.object_list[bottom:bottom + self.per_page + 1])
        if not rows and number > 1:
            raise EmptyPage(_("That page contains no results"))
        return CountedPage(rows[:self.per_page], number, self, following=len(rows) > self.per_page)

    def _whole_number(self, number) -> int:
        try:
            number = int(number)
        except (TypeError, ValueError):
            raise EmptyPage(_("That page number is not an integer")) from None
        if number < 1:
            raise EmptyPage(_("That page number is less than 1"))
        return number


class StrictPageSize:
    """`page_size` is a whole number from 1 to MAX_PAGE_SIZE, else a 400 (DRF would quietly use
    the default), and the schema says so."""

    page_size = PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def get_page_size(self, request):
        size = request.query_params.get(self.page_size_query_param)
        if size is None:
            return self.page_size
        if not (size.isascii() and size.isdigit() and 1 <= int(size) <= self.max_page_size):
            raise ValidationError({self.page_size_query_param: [ErrorDetail(
                _("Use a whole number from 1 to %(max)d.") % {"max": self.max_page_size}, code="invalid")]})
        return int(size)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
        return parameters


class PageNumbers(StrictPageSize, PageNumberPagination):
    """Page numbers with a count that never scans a big table (see the module's docstring)."""

    count_query_param = "count"
    counted = True

    def paginate_queryset(self, queryset, request, view=None):
        self.counted = self._counted(request, view)
        return super().paginate_queryset(queryset, request, view)

    def _counted(self, request, view) -> bool:
        if self.count_query_param not in getattr(view, "query_options", {self.count_query_param}):
            return True  # `count` is one of the entity's fields there: a filter.
        value = request.query_params.get(self.count_query_param, "true")
        if value not in ("true", "false"):
            raise ValidationError({self.count_query_param: [ErrorDetail(_("Use true or false."), code="invalid")]})
        return value == "true"

    @property
    def django_paginator_class(self):
        counted = self.counted
        return lambda queryset, size: LimitedCountPaginator(queryset, size, counted=counted)

    def get_page_number(self, request, paginator):
        number = request.query_params.get(self.page_query_param) or 1
        if number in self.last_page_strings and not paginator.is_exact:
            raise ValidationError({self.page_query_param: [ErrorDetail(_(
                "The last page is known only below %(limit)d rows: follow the next links, or use "
                "pagination=cursor.") % {"limit": exact_count_limit()}, code="invalid")]})
        return super().get_page_number(request, paginator)

    def get_paginated_response(self, data):
        paginator = self.page.paginator
        body = {"count": paginator.count, "next": self.get_next_link(), "previous": self.get_previous_link(),
                "results": data}
        if paginator.count is None:
            del body["count"]
        elif paginator.count_is_estimate:
            body = {"count": paginator.count, "count_is_estimate": True, **body}
        return Response(body)


def _column(model, ordering_term: str):
    """The model field an ordering term names, or None for anything else (a lookup, an expression)."""
    try:
        return model._meta.get_field(ordering_term.lstrip("-"))
    except FieldDoesNotExist:
        return None


class Cursors(StrictPageSize, CursorPagination):
    """Stable, constant-cost pages over any number of rows: no count, no offset.

    A cursor carries the position of the page's last row, which a client can forge: it must be
    a value of the ordering column, as a filter on that column would take it (else 404, as
    for any invalid cursor). Relations order by their id column, the value a position holds.
    """

    ordering = "-id"
    model = None

    def paginate_queryset(self, queryset, request, view=None):
        self.model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def get_ordering(self, request, queryset, view):
        ordering = []
        for term in super().get_ordering(request, queryset, view):
            column = _column(queryset.model, term)
            ordering.append(term if column is None else ("-" if term.startswith("-") else "") + column.attname)
        return tuple(ordering)

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)
        column = _column(self.model, self.ordering[0])
        if cursor is not None and cursor.position is not None and column is not None:
            if column.is_relation:
                column = column.target_field
            position_filter = PostgresFilterSet.filter_for_field(column, column.name, "gt")
            try:
                position_filter.field.clean(cursor.position)
            except DjangoValidationError:
                raise NotFound(self.invalid_cursor_message) from None
        return cursor


class PageOrCursorPagination(BasePagination):
    """`?page=` (with a total `count`) unless the client asks for cursors.

    `?pagination=cursor` starts cursor pagination; the `next` links carry `?cursor=`. A large
    table (see `table_is_large`) is listed with cursors unless the client asks for a page.
    """

    switch_query_param = "pagination"

    def __init__(self):
        self.page_numbers = PageNumbers()
        self.cursors = Cursors()
        self.chosen: BasePagination = self.page_numbers

    def paginate_queryset(self, queryset, request, view=None):
        params = request.query_params
        if params.get(self.switch_query_param, "page") not in ("page", "cursor"):
            raise ValidationError({self.switch_query_param: [ErrorDetail(_("Use page or cursor."), code="invalid")]})
        use_cursor = params.get(self.switch_query_param) == "cursor" or self.cursors.cursor_query_param in params or (
            self.switch_query_param not in params and self.page_numbers.page_query_param not in params
            and table_is_large(queryset.model))
        self.chosen = self.cursors if use_cursor else self.page_numbers
        return self.chosen.paginate_queryset(queryset, request, view)

    def get_paginated_response(self, data):
        return self.chosen.get_paginated_response(data)

    def get_paginated_response_schema(self, schema):
        response = self.page_numbers.get_paginated_response_schema(schema)
        response["required"] = ["results"]
        response["properties"]["count"]["description"] = _(
            "Total rows: exact up to %(limit)d, else PostgreSQL's estimate (with count_is_estimate); absent with "
            "cursor pagination and count=false.") % {"limit": exact_count_limit()}
        response["properties"] = {"count": response["properties"]["count"], "count_is_estimate": {
            "type": "boolean", "description": _("Present (true) when count is an estimate.")},
            **response["properties"]}
        return response

    def get_schema_operation_parameters(self, view):
        parameters = self.page_numbers.get_schema_operation_parameters(view)
        parameters += [p for p in self.cursors.get_schema_operation_parameters(view)
                       if p["name"] != self.cursors.page_size_query_param]
        parameters.append({
            "name": self.switch_query_param, "required": False, "in": "query",
            "description": str(_("`cursor` for cursor pagination, the default for tables of more than %(limit)d "
                                 "rows; `page` for page numbers, the default otherwise.")
                               % {"limit": exact_count_limit()}),
            "schema": {"type": "string", "enum": ["page", "cursor"]},
        })
        if self.page_numbers.count_query_param in getattr(view, "query_options", {self.page_numbers.count_query_param}):
            parameters.append({
                "name": self.page_numbers.count_query_param, "required": False, "in": "query",
                "description": str(_("`false`: no count (pages of a big table are faster).")),
                "schema": {"type": "boolean", "default": True},
            })
        return parameters
