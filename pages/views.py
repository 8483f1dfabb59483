"""The end-user site's pages: home, and each published entity's table, detail, create and edit
pages, export, bulk actions, inline cell edits and saved views. Thin shells: rows come from
pages.queries (rbac's read path), writes go through the records service (through the entity's
API serializer or the forms engine), business rules live in pages.services."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import ProtectedError
from django.http import Http404, HttpResponseBadRequest, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST
from rest_framework.exceptions import ValidationError as ApiValidationError

from dynamic_models import children, file_fields, records, single, transfer
from dynamic_models.api.transfer import export_response
from pages import child_rows, queries, services
from pages.queries import RecordQuery
from pages.registries import view_type_registry
from rbac import columns as rbac_columns
from rbac import services as rbac
from rbac.models import Role

EXPORT_FORMATS = ("csv", "xlsx")
#: What a history entry says was done, by the audit action's verb.
VERBS = {"create": gettext_lazy("Created"), "update": gettext_lazy("Changed"), "delete": gettext_lazy("Deleted"),
         "restore": gettext_lazy("Restored"), "restore_version": gettext_lazy("Restored an earlier version")}


def home(request):
    """The site's root: the viewer's entities and recent records; a way to log in for visitors."""
    if not request.user.is_authenticated:
        return render(request, "pages/home.html", {"summaries": [], "recent": []})
    summaries, recent = services.home(request)
    return render(request, "pages/home.html", {"summaries": summaries, "recent": recent})


# --- shared by every view of an entity -------------------------------------------------------------


def entity_context(request, model, query: RecordQuery, view_type: str) -> dict:
    """What every page of an entity's records shows around them: its name, the view switcher
    (keeping the filters), the saved views and the actions the viewer may take."""
    key = model.lowcode_entity["key"]
    kept = query.url_with(page=None, cursor=None, view=None).rstrip("?")
    switcher = [{"type": item.type, "label": item.label, "current": item.type == view_type,
                 "url": reverse(item.url_name, kwargs={"entity": key}) + kept}
                for item in view_type_registry.get_all()]
    saved = list(services.views_for(request.user, key, request=request))
    roles = list(Role.objects.filter(key__in=rbac.effective(request.user, request).roles).values_list("key", "name"))
    return {
        "entity": model.lowcode_entity, "entity_key": key, "model": model, "query": query, "view_type": view_type,
        "title": str(model._meta.verbose_name_plural).capitalize(), "switcher": switcher, "saved_views": saved,
        "saved_view_urls": {view.pk: services.view_url(key, view) for view in saved}, "shareable_roles": roles,
        "current_view": request.GET.get("view", ""),
        "can_add": queries.may(request, model, "add"), "can_export": queries.may(request, model, "export"),
        "can_delete": queries.may(request, model, "delete"),
    }


# --- table -----------------------------------------------------------------------------------------


@login_required
def table(request, entity):
    model = queries.entity_model(entity)
    queries.require(request, model, "view")
    if single.is_single(model) and not request.GET:  # A settings entity: its one record.
        record = single.the_record(model)
        return redirect("pages:detail", entity=entity, pk=record.pk) if record is not None else \
            redirect("pages:create", entity=entity)
    query = RecordQuery(request, model)
    queryset = query.with_display_data(query.queryset, query.shown)
    page = queries.paginate(query, queryset)
    rows = queries.present(request, model, page.records, query.shown)
    for row in rows:
        for item in row.cells:
            item.attrs = _cell_attrs(item, row)
    context = entity_context(request, model, query, "table")
    setters = [column for column in query.columns if column.choices and column.editable and column.type == "choice"]
    context.update({"page": page, "rows": rows, "filters": query.filter_controls(), "setters": setters,
                    "searchable": bool(query.search_fields()),
                    "choice_scripts": {f"pg-choices-{column.key}": column.edit_choices for column in query.shown
                                       if column.edit_choices and column.editable},
                    "sort_links": {column.key: query.url_with(sort=("-" if query.sort == column.key else "") + column.key,
                                                              page=None, cursor=None)
                                   for column in query.shown if column.sortable},
                    "export_query": query.url_with(page=None, cursor=None, columns=None, view=None)})
    return render(request, "pages/table.html", context, status=400 if query.errors else 200)


def _cell_attrs(item: queries.Cell, row: queries.Row) -> str:
    """A table cell's attributes: what static/pages/table.js needs to edit it in place, when the
    viewer may; built here rather than in the template, which would do it for every cell of 50 rows."""
    column = item.column
    classes = " ".join(name for name, wanted in (("pg-num", column.numeric), ("pg-masked", column.masked)) if wanted)
    parts = [format_html(' class="{}"', classes)] if classes else []
    if row.editable and column.editable:
        parts.append(format_html(' data-edit="{}" data-type="{}" data-value="{}" data-url="{}cell/"', column.key,
                                 column.input_type, item.raw, row.url))
        if column.edit_choices:
            parts.append(format_html(' data-choices="pg-choices-{}"', column.key))
    return format_html_join("", "{}", ((part,) for part in parts))


@login_required
def export(request, entity, file_format):
    """The list as filtered, searched and ordered on the page, as a file (permission `export`, audited)."""
    model = queries.entity_model(entity)
    queries.require(request, model, "export")
    if file_format not in EXPORT_FORMATS:
        raise Http404
    query = RecordQuery(request, model)
    if query.errors:
        return HttpResponseBadRequest("; ".join(f"{name}: {' '.join(errors)}" for name, errors in query.errors.items()),
                                      content_type="text/plain; charset=utf-8")
    serializer = transfer.record_serializer(entity)(context={"request": request, "user": request.user,
                                                            "fields": None, "expand": set()})
    return export_response(transfer.export_file(entity, serializer, query.queryset, file_format, user=request.user,
                                                query=request.GET.dict()))


def _serializer(request, entity, record, data):
    return transfer.record_serializer(entity)(record, data=data, partial=True, context={
        "request": request, "user": request.user, "fields": None, "expand": set()})


def _messages_of(error: ApiValidationError) -> list[str]:
    """The messages of a serializer's refusal, for a page's message."""
    details = error.get_full_details()
    items = [item for value in details.values() for item in value] if isinstance(details, dict) else details
    return [item["message"] for item in items if isinstance(item, dict) and "message" in item]


@login_required
@require_POST
def bulk(request, entity):
    """Delete the chosen records, or set a choice field on them: all or nothing, each through the
    records service (scope, read-only fields, audit)."""
    model = queries.entity_model(entity)
    back = request.POST.get("next") or reverse("pages:table", kwargs={"entity": entity})
    if not back.startswith("/") or back.startswith("//"):
        back = reverse("pages:table", kwargs={"entity": entity})
    ids = [value for value in request.POST.getlist("ids") if value.isdigit()]
    action = request.POST.get("action", "")
    if not ids:
        messages.error(request, _("Choose at least one record."))
        return redirect(back)
    chosen = list(queries.scoped(request, model).filter(pk__in=ids))
    if len(chosen) != len(set(ids)):
        raise Http404(_("No %(name)s with this id.") % {"name": model._meta.verbose_name})
    try:
        with transaction.atomic():
            if action == "delete":
                queries.require(request, model, "delete")
                for record in chosen:
                    records.delete(record, user=request.user, request=request)
                done = _("Deleted %(count)d records.") % {"count": len(chosen)}
            elif action.startswith("set:") and "=" in action:
                key, value = action.removeprefix("set:").split("=", 1)
                column = queries.column(request, model, key)
                if column is None or not column.editable or column.type != "choice":
                    return HttpResponseBadRequest(_("This field cannot be set on many records."))
                for record in chosen:
                    serializer = _serializer(request, entity, record, {key: value})
                    serializer.is_valid(raise_exception=True)
                    serializer.save()
                done = _("Changed %(count)d records.") % {"count": len(chosen)}
            else:
                return HttpResponseBadRequest(_("Choose what to do with the records."))
    except PermissionDenied as error:
        messages.error(request, str(error) or _("You may not do this to these records."))
    except ApiValidationError as error:
        messages.error(request, " ".join(_messages_of(error)))
    except (ValidationError, ProtectedError) as error:
        messages.error(request, " ".join(error.messages) if isinstance(error, ValidationError) else
                       _("Other records still point at one of them."))
    else:
        messages.success(request, done)
    return redirect(back)


@login_required
@require_POST
def cell(request, entity, pk):
    """An inline edit of one cell: the value written through the entity's serializer and the
    records service; answers the cell's new text, or the API's error format (400/403/404)."""
    model = queries.entity_model(entity)
    record = queries.record_or_404(request, model, pk)
    key = request.POST.get("field", "")
    column = queries.column(request, model, key)
    if column is None or not column.editable:
        return JsonResponse({key or "field": [{"code": "read_only", "message": _("You may not change this field.")}]},
                            status=400)
    if not queries.may(request, model, "change", record):
        return JsonResponse({"detail": _("You may not change this record."), "code": "permission_denied"}, status=403)
    value = request.POST.get("value", "")
    if value == "" and column.type not in ("text", "long_text", "email", "url", "phone"):
        value = None
    serializer = _serializer(request, entity, record, {key: value})
    try:
        serializer.is_valid(raise_exception=True)
        serializer.save()
    except ApiValidationError as error:  # In the API's format: {field: [{code, message}]}.
        return JsonResponse(error.get_full_details(), status=400)
    except PermissionDenied as error:
        return JsonResponse({"detail": str(error), "code": "permission_denied"}, status=403)
    shown = queries.cell(queries.scoped(request, model).get(pk=record.pk), column)
    return JsonResponse({"text": shown.text, "value": shown.raw})


# --- detail ----------------------------------------------------------------------------------------


@login_required
def detail(request, entity, pk):
    model = queries.entity_model(entity)
    queries.require(request, model, "view")
    query = RecordQuery(request, model)
    queryset = query.with_display_data(queries.scoped(request, model).filter(pk=pk), query.columns)
    record = queryset.first()
    if record is None:
        raise Http404(_("No %(name)s with this id.") % {"name": model._meta.verbose_name})
    row = queries.present(request, model, [record], query.columns)[0]
    fields = [item for item in row.cells if not item.column.is_file]
    attachments = [item for item in row.cells if item.column.is_file]
    context = entity_context(request, model, query, "table")
    context.update({
        "record": record, "row": row, "fields": fields, "attachments": attachments,
        "child_rows": child_rows.sections(request, record), "related": _related(request, model, record),
        "history": [(version, VERBS.get(version.verb, version.verb))
                    for version in reversed(records.history(record, user=request.user, request=request))],
        "can_edit": queries.may(request, model, "change", record),
        "can_delete_record": queries.may(request, model, "delete", record),
        "created_by": queries.person(record.created_by), "updated_by": queries.person(record.updated_by),
    })
    return render(request, "pages/detail.html", context)


#: Related records a detail page lists per relation (a link to the filtered list shows the rest).
RELATED_ROWS = 20
RELATED_COLUMNS = 5


def _related(request, model, record) -> list[dict]:
    """Records of other entities pointing here that the viewer may see, per relation, a page of each
    (child rows excepted: pages.child_rows shows them in their order)."""
    sections = []
    for other in type(record)._meta.apps.get_models():
        if not hasattr(other, "lowcode_entity") or other is model:
            continue
        other_key = other.lowcode_entity["key"]
        if not queries.may(request, other, "view"):
            continue
        for model_field in other._meta.fields:
            if not (model_field.is_relation and model_field.related_model is model) \
                    or isinstance(model_field, file_fields.FILE_MODEL_FIELDS) \
                    or children.is_child_relation(other, model_field.name):
                continue
            access = rbac_columns.column_access(request.user, other, request=request)
            if not access.can_query(model_field.name):  # Listing by a hidden relation would reveal it.
                continue
            columns = [column for column in queries.columns_of(other, access)
                       if column.in_list and column.key != model_field.name][:RELATED_COLUMNS]
            visible = queries.scoped(request, other).filter(**{model_field.name: record.pk}).order_by("-id")
            fetched = list(queries.with_display_data(request, other, visible, columns)[:RELATED_ROWS + 1])
            list_url = reverse("pages:table", kwargs={"entity": other_key})
            if model_field.name in queries.filterset_class(other).base_filters:
                list_url += f"?{model_field.name}={record.pk}"
            sections.append({
                "label": str(other._meta.verbose_name_plural).capitalize(), "field": str(model_field.verbose_name),
                "entity_key": other_key, "columns": columns,
                "rows": queries.present(request, other, fetched[:RELATED_ROWS], columns),
                "more": len(fetched) > RELATED_ROWS,
                "list_url": list_url,
            })
    return sections


@login_required
@require_http_methods(["GET", "POST"])
def delete(request, entity, pk):
    """Asks first (GET), then soft-deletes through the records service (POST)."""
    model = queries.entity_model(entity)
    record = queries.record_or_404(request, model, pk)
    if request.method == "GET":
        queries.require(request, model, "delete", record)
        return render(request, "pages/delete.html", {
            "record": record, "entity_key": entity, "title": str(model._meta.verbose_name_plural).capitalize()})
    try:
        records.delete(record, user=request.user, request=request)
    except PermissionDenied as error:
        messages.error(request, str(error))
        return redirect("pages:detail", entity=entity, pk=pk)
    except ProtectedError:
        messages.error(request, _("Other records still point at this one."))
        return redirect("pages:detail", entity=entity, pk=pk)
    messages.success(request, _("Deleted."))
    return redirect("pages:table", entity=entity)


# --- saved views -----------------------------------------------------------------------------------


@login_required
@require_POST
def save_view(request, entity):
    """Keep the page's current arrangement (its query string, sent along) as a named view."""
    model = queries.entity_model(entity)
    queries.require(request, model, "view")
    name = request.POST.get("name", "").strip()[:100]
    view_type = request.POST.get("type", "table")
    if not name or not view_type_registry.is_registered(view_type):
        messages.error(request, _("Give the view a name."))
        return redirect("pages:table", entity=entity)
    params = QueryDict(request.POST.get("query", "").lstrip("?"))
    filter_names = set(queries.filterset_class(model).base_filters)
    state = services.state_from_query(view_type, params, filter_names)
    try:
        view = services.save_view(request.user, entity, name=name, state=state,
                                  role_keys=request.POST.getlist("roles"))
    except ValueError as error:
        messages.error(request, str(error))
        return redirect("pages:table", entity=entity)
    messages.success(request, _("View “%(name)s” saved.") % {"name": name})
    return redirect(services.view_url(entity, view))


@login_required
@require_POST
def delete_view(request, entity, view_id):
    view = get_object_or_404(services.views_for(request.user, entity, request=request), pk=view_id)
    try:
        services.delete_view(request.user, view)
    except PermissionError as error:
        raise PermissionDenied(str(error)) from None
    messages.success(request, _("View removed."))
    return redirect("pages:table", entity=entity)


@login_required
def open_saved_view(request, entity, view_id):
    view = get_object_or_404(services.views_for(request.user, entity, request=request), pk=view_id)
    return redirect(services.view_url(entity, view))

