"""Pagination of list endpoints: page numbers by default, cursors for big tables (DM-5)."""

from __future__ import annotations

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import ErrorDetail, NotFound, ValidationError
from rest_framework.pagination import BasePagination, CursorPagination, PageNumberPagination

from lowcode.api.filters import PostgresFilterSet

PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


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
    pass


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

    `?pagination=cursor` starts cursor pagination; the `next` links carry `?cursor=`.
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
        use_cursor = params.get(self.switch_query_param) == "cursor" or self.cursors.cursor_query_param in params
        self.chosen = self.cursors if use_cursor else self.page_numbers
        return self.chosen.paginate_queryset(queryset, request, view)

    def get_paginated_response(self, data):
        return self.chosen.get_paginated_response(data)

    def get_paginated_response_schema(self, schema):
        response = self.page_numbers.get_paginated_response_schema(schema)
        response["required"] = ["results"]
        response["properties"]["count"]["description"] = _("Total rows; absent with cursor pagination.")
        return response

    def get_schema_operation_parameters(self, view):
        parameters = self.page_numbers.get_schema_operation_parameters(view)
        parameters += [p for p in self.cursors.get_schema_operation_parameters(view)
                       if p["name"] != self.cursors.page_size_query_param]
        parameters.append({
            "name": self.switch_query_param, "required": False, "in": "query",
            "description": str(_("`cursor` for cursor pagination (big tables); page numbers otherwise.")),
            "schema": {"type": "string", "enum": ["page", "cursor"]},
        })
        return parameters
