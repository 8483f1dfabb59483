"""An entity's records as boards: a kanban by a choice field (drag a card to change the value), a
month calendar by a date or datetime field, and a gallery of cards by an image field.

Thin shells over pages.queries: the records are the table's (rbac's scoped queryset, filtered,
searched and ordered from the same query string), arranged only by a field the viewer reads in
clear, their values shown through the column rules; a move is written by dynamic_models.records.save
as the viewer (scope, read-only fields, validation, audit). Each page costs a fixed number of
queries whatever the number of rows: the kanban counts its columns in one aggregate query and
fetches the first cards of every column in one query; the calendar reads one month.
"""

from __future__ import annotations

import calendar
import datetime
from dataclasses import dataclass, field

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.dates import MONTHS
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from dynamic_models import records
from pages import queries
from pages.queries import DATE, GROUP, IMAGE, MONTH, Column, RecordQuery
from pages.views import entity_context

#: Cards a kanban column shows; the column's count and a link to the filtered table tell the rest.
CARDS_PER_COLUMN = 20
#: Fields a card shows besides the record's name.
CARD_FIELDS = 3
#: Records a calendar month shows at most (the rest are announced).
MONTH_LIMIT = 500
GALLERY_PER_PAGE = 24
#: The kanban column of records without a value.
EMPTY = ""


# --- the field a board arranges records by -----------------------------------------------------


def _group_fields(query: RecordQuery) -> list[Column]:
    return [column for column in query.columns if column.type == "choice" and column.queryable]


def _date_fields(query: RecordQuery) -> list[Column]:
    return [column for column in query.columns if column.type in ("date", "datetime") and column.queryable]


def _image_fields(query: RecordQuery) -> list[Column]:
    """File fields holding images (image fields first), read in clear."""
    def holds_images(column):
        allowed = column.spec.get("options", {}).get("allowed_types") or []
        return column.type == "image" or any(entry.startswith("image/") for entry in allowed)
    found = [column for column in query.columns if column.is_file and not column.masked and holds_images(column)]
    return sorted(found, key=lambda column: column.type != "image")


def arranging_field(query: RecordQuery, param: str, offered: list[Column]) -> Column | None:
    """The field named by `param` in the query string, or the first offered; a field the viewer may not
    arrange by (hidden, masked, of another type) is refused in `query.errors` and the default used."""
    asked = query.params.get(param, "")
    if asked:
        chosen = next((column for column in offered if column.key == asked), None)
        if chosen is not None:
            return chosen
        column = query.by_key.get(asked)
        query.errors[param] = [
            _("You may not filter, order or search by a field you cannot read in clear.")
            if column is not None and (not column.queryable or column.masked) else
            _("Choose one of: %(keys)s.") % {"keys": ", ".join(item.key for item in offered) or "—"}]
    return offered[0] if offered else None


def card_columns(query: RecordQuery, *exclude: str) -> list[Column]:
    """The few fields a card shows under the record's name: the first listed ones that are not
    files, the display field (the card's title) nor the arranging field."""
    exclude = {*exclude, query.entity.get("display_field")}
    return [column for column in query.columns
            if column.in_list and not column.is_file and column.key not in exclude][:CARD_FIELDS]


#: How the filter summary writes a lookup.
LOOKUP_SIGNS = {"gte": "≥", "lte": "≤", "gt": ">", "lt": "<", "icontains": "∋", "exact": "="}


def filter_summary(query: RecordQuery) -> dict:
    """The search and filters a board shows (they are set on the table), with links to change or clear them."""
    applied = []
    for name, value in query.filter_params().items():
        key, _sep, lookup = name.partition("__")
        column = query.by_key.get(key)
        applied.append(f"{column.label if column else key} {LOOKUP_SIGNS.get(lookup or 'exact', lookup)} {value}")
    boards_only = {GROUP: None, DATE: None, IMAGE: None, MONTH: None, "page": None, "cursor": None}
    return {"applied": applied, "search": query.search,
            "change_url": reverse("pages:table", kwargs={"entity": query.entity["key"]}) + query.url_with(**boards_only),
            "clear_url": query.url_with(q=None, page=None, cursor=None, **dict.fromkeys(query.filter_params()))}


def _render(request, template: str, model, query: RecordQuery, view_type: str, context: dict):
    page = entity_context(request, model, query, view_type)
    page.update(context, filtered=filter_summary(query))
    return render(request, template, page, status=400 if query.errors else 200)


def _open(request, entity):
    model = queries.entity_model(entity)
    queries.require(request, model, "view")
    return model, RecordQuery(request, model)


# --- kanban ------------------------------------------------------------------------------------


@dataclass
class KanbanColumn:
    value: str
    label: str
    count: int = 0
    cards: list = field(default_factory=list)
    more_url: str = ""

    @property
    def more(self) -> int:
        return self.count - len(self.cards)


def kanban_columns(query: RecordQuery, group: Column) -> list[KanbanColumn]:
    """The board's columns (each choice, values outside the choices, then "empty" when it has
    records) with their counts (one aggregate query) and first cards (one query)."""
    key = group.key
    counts: dict[str, int] = {}
    for row in query.queryset.order_by().values(key).annotate(count=Count("pk")):
        value = row[key] if row[key] is not None else EMPTY
        counts[value] = counts.get(value, 0) + row["count"]
    choices = dict(group.choices)
    columns = {value: KanbanColumn(value, str(label), counts.get(value, 0)) for value, label in choices.items()}
    for value in sorted(set(counts) - set(choices) - {EMPTY}):
        columns[value] = KanbanColumn(value, value, counts[value])
    if counts.get(EMPTY):
        columns[EMPTY] = KanbanColumn(EMPTY, _("No value"), counts[EMPTY])
    # The first ids of each column, each branch its own LIMIT (an index walk in the list's order,
    # not a sort of every row), all in one UNION ALL; then those cards fetched whole.
    branches = [query.queryset.filter(Q(**{key: value}) if value != EMPTY else Q(**{f"{key}__isnull": True}) | Q(**{key: ""}))
                .order_by(*query.ordering).values("pk")[:CARDS_PER_COLUMN] for value in counts]
    first_ids = branches[0].union(*branches[1:], all=True) if branches else query.queryset.none().values("pk")
    shown = card_columns(query, key)
    fetched = query.with_display_data(query.queryset.filter(pk__in=first_ids), shown)
    rows = queries.present(query.request, query.model, list(fetched), shown)
    for row in rows:
        value = getattr(row.record, key)
        columns[value if value is not None else EMPTY].cards.append(row)
    filterable = key in queries.filterset_class(query.model).base_filters
    table = reverse("pages:table", kwargs={"entity": query.entity["key"]})
    for column in columns.values():
        if column.more > 0 and filterable and column.value != EMPTY:
            column.more_url = table + query.url_with(**{key: column.value, GROUP: None, "page": None})
    return list(columns.values())


@login_required
def kanban(request, entity):
    model, query = _open(request, entity)
    group = arranging_field(query, GROUP, _group_fields(query))
    columns = kanban_columns(query, group) if group is not None else []
    writable = group is not None and query.access.can_write(group.key) and not group.spec.get("read_only")
    return _render(request, "pages/board_kanban.html", model, query, "kanban", {
        "group": group, "group_fields": _group_fields(query), "columns": columns,
        "movable": writable and queries.may(request, model, "change"),
    })


def _move_refused(request, entity, status: int, errors: dict):
    """A refused move: the API's error format for the board's script, else a message and back."""
    if request.headers.get("Accept", "").startswith("application/json"):
        return JsonResponse(errors, status=status)
    for items in errors.values():
        for item in items:
            messages.error(request, item["message"])
    return redirect(_back(request, entity))


def _back(request, entity) -> str:
    back = request.POST.get("next", "")
    if not back.startswith("/") or back.startswith("//"):
        back = reverse("pages:kanban", kwargs={"entity": entity})
    return back


@login_required
@require_POST
def move(request, entity, pk):
    """Put a card in another kanban column: `field` set to `value` ("" empties it) through the
    records service as the viewer; refused (nothing changed) outside their scope (404), on a field
    they may not change or group by, or with a value the field does not take."""
    model = queries.entity_model(entity)
    record = queries.record_or_404(request, model, pk)
    query = RecordQuery(request, model)
    key, value = request.POST.get("field", ""), request.POST.get("value", "")
    group = next((column for column in _group_fields(query) if column.key == key), None)
    name = str(record)
    if group is None:
        return _move_refused(request, entity, 400, {key or "field": [{
            "code": "invalid", "message": _("Cards can only be moved by a choice field you can read.")}]})
    model_field = model._meta.get_field(key)
    try:
        # The field's own checks (a choice it offers, a value when required), then the records service's.
        setattr(record, key, model_field.clean(value if value != EMPTY or not model_field.null else None, record))
        records.save(record, user=request.user, request=request)
    except ValidationError as error:
        refused = error.error_dict if hasattr(error, "error_dict") else {key: error.error_list}
        errors = {field_key: [{"code": item.code or "invalid", "message": _("“%(record)s” cannot be moved: %(reason)s") % {
            "record": name, "reason": " ".join(item.messages)}} for item in items] for field_key, items in refused.items()}
        return _move_refused(request, entity, 400, errors)
    except PermissionDenied:
        return _move_refused(request, entity, 403, {"non_field_errors": [{
            "code": "permission_denied",
            "message": _("“%(record)s” cannot be moved: you may not change it.") % {"record": name}}]})
    label = str(dict(group.choices).get(value, _("No value")))
    if request.headers.get("Accept", "").startswith("application/json"):
        return JsonResponse({"value": value, "label": label})
    messages.success(request, _("“%(record)s” moved to %(column)s.") % {"record": name, "column": label})
    return redirect(_back(request, entity))


# --- calendar ----------------------------------------------------------------------------------


@dataclass
class Day:
    date: datetime.date
    in_month: bool
    today: bool
    entries: list = field(default_factory=list)


def _month(query: RecordQuery) -> datetime.date:
    """The first day of the month asked (`month=YYYY-MM`), this month by default or when wrongly asked."""
    asked = query.params.get(MONTH, "")
    if asked:
        try:
            return datetime.datetime.strptime(asked, "%Y-%m").date()
        except ValueError:
            query.errors[MONTH] = [_("Enter a month as YYYY-MM, for example 2026-03.")]
    return timezone.localdate().replace(day=1)


def _next_month(first: datetime.date) -> datetime.date:
    return (first + datetime.timedelta(days=32)).replace(day=1)


def month_records(query: RecordQuery, date: Column, first: datetime.date) -> tuple[list, bool]:
    """The month's records by `date` (at most MONTH_LIMIT, in date order), and whether there were more."""
    start, end = first, _next_month(first)
    if date.type == "datetime":
        zone = timezone.get_current_timezone()
        start = datetime.datetime.combine(start, datetime.time(), zone)
        end = datetime.datetime.combine(end, datetime.time(), zone)
    queryset = query.queryset.filter(**{f"{date.key}__gte": start, f"{date.key}__lt": end})
    queryset = queryset.order_by(date.key, *query.ordering)
    fetched = list(query.with_display_data(queryset, [])[:MONTH_LIMIT + 1])
    return fetched[:MONTH_LIMIT], len(fetched) > MONTH_LIMIT


def month_grid(first: datetime.date, date: Column, found: list) -> list[list[Day]]:
    """Weeks of the month (from the locale's first weekday), each day with its records and their times."""
    today = timezone.localdate()
    weeks = calendar.Calendar((int(formats.get_format("FIRST_DAY_OF_WEEK")) - 1) % 7).monthdatescalendar(
        first.year, first.month)
    days = {day: Day(day, day.month == first.month, day == today) for week in weeks for day in week}
    for record in found:
        value = getattr(record, date.key)
        if isinstance(value, datetime.datetime):
            value = timezone.localtime(value)
            days[value.date()].entries.append((record, formats.time_format(value.time(), "H:i")))
        else:
            days[value].entries.append((record, ""))
    return [[days[day] for day in week] for week in weeks]


@login_required
def calendar_view(request, entity):
    model, query = _open(request, entity)
    date = arranging_field(query, DATE, _date_fields(query))
    first = _month(query)
    weeks, truncated = [], False
    if date is not None:
        found, truncated = month_records(query, date, first)
        weeks = month_grid(first, date, found)
    previous = (first - datetime.timedelta(days=1)).replace(day=1)
    following = _next_month(first)
    weekday_names = [formats.date_format(day.date, "D") for day in weeks[0]] if weeks else []
    return _render(request, "pages/board_calendar.html", model, query, "calendar", {
        "date": date, "date_fields": _date_fields(query), "weeks": weeks, "weekday_names": weekday_names,
        "has_entries": any(day.entries for week in weeks for day in week),
        "month_label": f"{MONTHS[first.month]} {first.year}", "truncated": truncated, "limit": MONTH_LIMIT,
        "previous_url": query.url_with(**{MONTH: previous.strftime("%Y-%m")}),
        "next_url": query.url_with(**{MONTH: following.strftime("%Y-%m")}),
        "today_url": query.url_with(**{MONTH: None}),
    })


# --- gallery -----------------------------------------------------------------------------------


@dataclass
class GalleryCard:
    row: object
    #: The first file of the image field (file_fields.describe: name, content type, signed URLs).
    image: dict | None

    @property
    def picture_url(self) -> str:
        """Its thumbnail, or the image itself until the thumbnail is made; "" for other files."""
        if self.image is None:
            return ""
        if self.image.get("preview_url"):
            return self.image["preview_url"]
        return self.image["download_url"] if self.image["content_type"].startswith("image/") else ""


@login_required
def gallery(request, entity):
    model, query = _open(request, entity)
    image = arranging_field(query, IMAGE, _image_fields(query))
    shown = card_columns(query)
    page = queries.paginate(query, query.with_display_data(query.queryset, [*shown, *([image] if image else [])]),
                            per_page=GALLERY_PER_PAGE)
    rows = queries.present(request, model, page.records, [*shown, *([image] if image else [])])
    cards = []
    for row in rows:
        files = row.cells[-1].files if image is not None else []
        row.cells = row.cells[:len(shown)]
        cards.append(GalleryCard(row, files[0] if files else None))
    return _render(request, "pages/board_gallery.html", model, query, "gallery", {
        "image": image, "image_fields": _image_fields(query), "cards": cards, "page": page,
    })

