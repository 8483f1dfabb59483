"""The query parameters of the records API that are not filters (DM-5).

Filters are named after field keys, so a field key cannot be one of these names (the key
rules in dynamic_models.keys read them from here): a field called `page` could never be
filtered on.
"""

from rest_framework.filters import OrderingFilter, SearchFilter
from rest_framework.settings import api_settings

from lowcode.api.pagination import Cursors, PageNumbers, PageOrCursorPagination

#: `fields=a,b`: the fields to return.
FIELDS = "fields"
#: `expand=relation`: relations returned as records instead of ids.
EXPAND = "expand"
#: `deleted=only`: the soft-deleted records.
DELETED = "deleted"

RESERVED = frozenset({
    PageNumbers.page_query_param, PageNumbers.page_size_query_param, Cursors.cursor_query_param,
    PageOrCursorPagination.switch_query_param, SearchFilter.search_param, OrderingFilter.ordering_param,
    api_settings.URL_FORMAT_OVERRIDE, FIELDS, EXPAND, DELETED,
})
