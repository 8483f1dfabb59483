"""A record's ordered child rows (dynamic_models.children, Frappe's child tables) on its end-user
pages: one table per child entity, in their order, as the viewer may read them (rbac's read path:
the child entity's data scope and column rules). The detail and edit pages show them; the rows
themselves are edited in the child entity's list (a link), or inline in the parent's admin page."""

from __future__ import annotations

from urllib.parse import urlencode

from django.urls import reverse

from dynamic_models import children
from pages import queries
from rbac import columns as rbac_columns

#: Child rows a page shows per child entity (the link to their list shows every one).
CHILD_ROWS = 100


def sections(request, record) -> list[dict]:
    """The child rows of `record` the viewer may see, a table per child entity, in order."""
    result = []
    for child in children.child_rows_of(type(record)):
        if not queries.may(request, child.model, "view"):
            continue
        access = rbac_columns.column_access(request.user, child.model, request=request)
        if not access.can_query(child.relation):  # Listing by a hidden relation would reveal it.
            continue
        columns = sorted((column for column in queries.columns_of(child.model, access)
                          if column.in_list and column.key != child.relation),
                         key=lambda column: column.key != child.order_field)  # The order number first.
        ordered = children.rows(record, child, user=request.user, request=request)
        fetched = list(queries.with_display_data(request, child.model, ordered, columns)[:CHILD_ROWS + 1])
        result.append({
            "label": str(child.model._meta.verbose_name_plural).capitalize(), "entity_key": child.key,
            "columns": columns, "rows": queries.present(request, child.model, fetched[:CHILD_ROWS], columns),
            "more": len(fetched) > CHILD_ROWS, "list_url": _list_url(child, record, columns),
            "can_edit": queries.may(request, child.model, "change") or queries.may(request, child.model, "add"),
        })
    return result


def _list_url(child: children.ChildRows, record, columns: list[queries.Column]) -> str:
    """The child entity's list page showing the rows of `record` in their order."""
    params = {}
    if child.relation in queries.filterset_class(child.model).base_filters:
        params[child.relation] = record.pk
    if any(column.key == child.order_field and column.sortable for column in columns):
        params["sort"] = child.order_field
    url = reverse("pages:table", kwargs={"entity": child.key})
    return f"{url}?{urlencode(params)}" if params else url
