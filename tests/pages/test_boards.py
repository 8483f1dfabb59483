"""Kanban, calendar and gallery of an entity (pages.boards), as the scenario's people see them:
scoped records, arranged only by fields read in clear, moves through the records service (refused
when read-only, out of scope or invalid, audited when done), bounded queries."""

from __future__ import annotations

import datetime
import re

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from dynamic_models import runtime
from rbac import services as rbac
from rbac.models import Role
from tests.pages.test_query_counts import add_expenses, queries_of
from tests.scenario import client_for, expenses_of


@pytest.fixture
def clients(people):
    return {name: client_for(people[name], key=False) for name in ("alice", "bob", "mia", "frank")}


@pytest.fixture
def approver(people):
    """mia also holds an "approver" role, as a tenant admin would set it up: she may change her
    department's expenses, status included (the scenario's manager role only sees them)."""
    role = rbac.create_role("approver", "Approver", grants=["data.expense.view", "data.expense.change"])
    rbac.add_scope(role, "expense", "department", owner_field="submitted_by")
    rbac.add_scope(role, "expense", "department", action="change", owner_field="submitted_by")
    rbac.assign_role(people["mia"], role)
    return role


def get(client, path: str, status: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == status, (path, response.status_code, response.content[:1500])
    return response.content.decode()


def columns_of(html: str) -> dict[str, int]:
    """{column label: count} of a kanban page."""
    found = re.findall(r'<h2 id="pg-column-\d+">([^<]*)</h2>\s*<span class="pg-kanban-count" data-count="(\d+)"', html)
    return {label: int(count) for label, count in found}


def move(client, record, value: str, *, field: str = "status"):
    return client.post(f"/data/expense/{record.pk}/move/", {"field": field, "value": value},
                       HTTP_ACCEPT="application/json")


# --- kanban --------------------------------------------------------------------------------------


def test_kanban_groups_the_viewers_records_by_the_first_choice_field(clients, people):
    alice = people["alice"]
    html = get(clients["alice"], "/data/expense/kanban/?group=status")
    mine = expenses_of(alice)
    counts = columns_of(html)
    assert list(counts) == ["Draft", "Submitted", "Approved", "Rejected"]
    for label, count in counts.items():
        assert count == mine.filter(status=label.lower()).count(), label
    expense = runtime.get_model("expense")
    for record in expense.objects.all():
        assert (f'href="/data/expense/{record.pk}/"' in html) == (record.submitted_by_id == alice.pk)
    assert mine.filter(iban__gt="").first().iban not in html
    # Without a field asked, the first choice field the viewer reads in clear: currency.
    assert list(columns_of(get(clients["alice"], "/data/expense/kanban/"))) == ["CNY", "USD", "EUR"]


def test_kanban_cards_of_a_read_only_field_are_locked_and_offer_no_move_form(clients, people, approver):
    html = get(clients["alice"], "/data/expense/kanban/?group=status")
    submitted = expenses_of(people["alice"]).filter(status="submitted").first()
    assert f'data-locked="“{submitted}” cannot be moved: you may not change Status."' in html
    assert 'name="value"' not in html  # No "Move to" form.
    html = get(clients["mia"], "/data/expense/kanban/?group=status")
    assert 'class="pg-move"' in html and "you may not change Status" not in html


def test_kanban_columns_are_bounded_and_link_to_the_rest(clients, people):
    project = runtime.get_model("project").objects.first()
    add_expenses(people["alice"], project, 25)  # Drafts.
    html = get(clients["alice"], "/data/expense/kanban/?group=status&category=meals")
    draft = re.search(r'<ul class="pg-kanban-cards" data-value="draft".*?</ul>', html, re.S).group(0)
    assert len(re.findall(r'<li class="pg-kanban-card', draft)) == 20
    total = expenses_of(people["alice"]).filter(status="draft", category="meals").count()
    assert columns_of(html)["Draft"] == total
    assert f"{total - 20} more" in html
    assert 'href="/data/expense/?category=meals&amp;status=draft"' in html


def test_records_without_a_value_have_their_own_column(clients, people):
    record = expenses_of(people["alice"]).first()
    type(record).objects.filter(pk=record.pk).update(category=None)
    html = get(clients["frank"], "/data/expense/kanban/?group=category")
    assert columns_of(html)["No value"] == 1
    empty = re.search(r'<ul class="pg-kanban-cards" data-value="" .*?</ul>', html, re.S).group(0)
    assert f'href="/data/expense/{record.pk}/"' in empty


def test_kanban_and_calendar_queries_do_not_grow_with_rows(clients, people):
    project = runtime.get_model("project").objects.first()
    month = datetime.date(2026, 1, 1).strftime("%Y-%m")
    for name in ("alice", "mia", "frank"):
        add_expenses(people["alice"], project, 2)
        few = [queries_of(clients[name], "/data/expense/kanban/?group=status"),
               queries_of(clients[name], f"/data/expense/calendar/?date=spent_on&month={month}"),
               queries_of(clients[name], "/data/expense/gallery/")]
        add_expenses(people["alice"], project, 30)
        many = [queries_of(clients[name], "/data/expense/kanban/?group=status"),
                queries_of(clients[name], f"/data/expense/calendar/?date=spent_on&month={month}"),
                queries_of(clients[name], "/data/expense/gallery/")]
        assert many == few, name


@pytest.fixture
def category_masked_currency_hidden(people):
    member = Role.objects.get(key=Role.MEMBER)
    rbac.set_column_rule(member, "expense", "category", "masked")
    rbac.set_column_rule(member, "expense", "currency", "hidden")
    rbac.set_column_rule(member, "expense", "spent_on", "masked")


def test_a_member_cannot_arrange_records_by_a_hidden_or_masked_field(clients, people, category_masked_currency_hidden):
    alice = clients["alice"]
    html = get(alice, "/data/expense/kanban/?group=category", 400)
    assert "You may not filter, order or search by a field you cannot read in clear." in html
    assert list(columns_of(html)) == ["Draft", "Submitted", "Approved", "Rejected"]  # Falls back to status.
    html = get(alice, "/data/expense/kanban/?group=currency", 400)
    assert "Choose one of: status." in html and "CNY" not in html
    assert list(columns_of(get(alice, "/data/expense/kanban/"))) == ["Draft", "Submitted", "Approved", "Rejected"]
    assert "You may not filter, order" in get(alice, "/data/expense/calendar/?date=spent_on", 400)
    assert "no date field you may arrange it by" in get(alice, "/data/expense/calendar/")
    record = expenses_of(people["alice"]).first()
    assert move(alice, record, "meals", field="category").status_code == 400
    # frank has no such rules: he groups by category.
    assert "Travel" in columns_of(get(clients["frank"], "/data/expense/kanban/?group=category"))


def test_kanban_outside_the_scope_or_of_an_unknown_entity_answers_404(clients, people):
    bobs = expenses_of(people["bob"]).filter(status="draft").first()
    assert move(clients["alice"], bobs, "submitted").status_code == 404
    for path in ("/data/nothing/kanban/", "/data/nothing/calendar/", "/data/nothing/gallery/"):
        get(clients["alice"], path, 404)
    bobs.refresh_from_db()
    assert bobs.status == "draft"


def test_moves_refused_change_nothing(clients, people, approver):
    alice, mia = clients["alice"], clients["mia"]
    submitted = expenses_of(people["alice"]).filter(status="submitted").first()
    events = AuditEvent.objects.count()
    response = move(alice, submitted, "draft")
    assert response.status_code == 400
    assert response.json() == {"status": [{"code": "read_only", "message":
                                           f"“{submitted}” cannot be moved: You may not change this field."}]}
    response = move(mia, submitted, "paid")
    assert response.status_code == 400 and response.json()["status"][0]["code"] == "invalid_choice"
    response = move(mia, submitted, "")  # The status is required.
    assert response.status_code == 400 and "status" in response.json()
    response = move(mia, submitted, "draft", field="title")
    assert response.status_code == 400
    frank_only = expenses_of(people["bob"]).first()
    frank_only.submitted_by = people["frank"]
    frank_only.save()
    assert move(mia, frank_only, "approved").status_code == 404  # Not in Sales.
    submitted.refresh_from_db()
    assert submitted.status == "submitted"
    assert AuditEvent.objects.count() == events


def test_a_permitted_move_is_written_and_audited(clients, people, approver):
    record = expenses_of(people["bob"]).filter(status="submitted").first()
    response = move(clients["mia"], record, "approved")
    assert response.status_code == 200, response.content
    assert response.json() == {"value": "approved", "label": "Approved"}
    record.refresh_from_db()
    assert record.status == "approved" and record.updated_by == people["mia"]
    event = AuditEvent.objects.filter(target_id=str(record.pk), action="data.expense.update").latest("seq")
    assert event.actor == people["mia"]
    assert event.before["status"] == "submitted" and event.after["status"] == "approved"


def test_the_move_form_works_without_javascript(clients, people, approver):
    record = expenses_of(people["bob"]).filter(status="draft").first()
    response = clients["mia"].post(f"/data/expense/{record.pk}/move/", {
        "field": "status", "value": "submitted", "next": "/data/expense/kanban/?group=status"}, follow=True)
    assert response.redirect_chain[-1][0] == "/data/expense/kanban/?group=status"
    assert f"“{record}” moved to Submitted." in response.content.decode()
    submitted = expenses_of(people["alice"]).filter(status="submitted").first()
    response = clients["alice"].post(f"/data/expense/{submitted.pk}/move/", {
        "field": "status", "value": "draft", "next": "//evil.example/"}, follow=True)
    assert response.redirect_chain[-1][0] == "/data/expense/kanban/"
    assert "cannot be moved: You may not change this field." in response.content.decode()


# --- calendar ------------------------------------------------------------------------------------


def test_calendar_shows_the_months_records_on_their_day(clients, people):
    alice = people["alice"]
    today = timezone.localdate()
    html = get(clients["alice"], "/data/expense/calendar/?date=spent_on")
    this_month = expenses_of(alice).filter(spent_on__year=today.year, spent_on__month=today.month)
    assert this_month.exists()
    for record in expenses_of(alice):
        assert (f'href="/data/expense/{record.pk}/"' in html) == (record in this_month), record
    record = this_month.first()
    day = re.search(rf'<time datetime="{record.spent_on:%Y-%m-%d}">.*?</li>\s*</ul>', html, re.S).group(0)
    assert f'href="/data/expense/{record.pk}/"' in day
    previous = (today.replace(day=1) - datetime.timedelta(days=1)).strftime("%Y-%m")
    assert f"month={previous}" in html
    assert "No records this month." in get(clients["alice"], "/data/expense/calendar/?date=spent_on&month=1999-01")
    assert "Enter a month as YYYY-MM" in get(clients["alice"], "/data/expense/calendar/?month=May", 400)


def test_calendar_and_kanban_honour_the_tables_filters_and_search(clients, people):
    mine = expenses_of(people["alice"])
    travel = mine.filter(category="travel")
    html = get(clients["alice"], "/data/expense/kanban/?group=status&category=travel")
    assert sum(columns_of(html).values()) == travel.count()
    assert '<span class="pg-chip">Category = travel</span>' in html
    assert 'href="/data/expense/?category=travel">Change in the table' in html
    assert 'href="?group=status">Clear' in html
    term = mine.first().title.split()[0]
    html = get(clients["alice"], f"/data/expense/kanban/?group=status&q={term}")
    assert sum(columns_of(html).values()) == mine.filter(title__icontains=term).count()
    html = get(clients["alice"], "/data/expense/calendar/?date=spent_on&category=travel")
    for record in mine.exclude(category="travel"):
        assert f'href="/data/expense/{record.pk}/"' not in html


# --- gallery and the switcher -----------------------------------------------------------------------


def test_gallery_shows_receipts_through_signed_urls_of_visible_records(clients, people):
    html = get(clients["alice"], "/data/expense/gallery/")
    mine = expenses_of(people["alice"])
    for record in runtime.get_model("expense").objects.all():
        assert (f'href="/data/expense/{record.pk}/"' in html) == (record in mine)
    with_receipt = mine.exclude(receipt=None).first()
    card = re.search(rf'<li class="pg-gallery-card">(?:(?!</li>).)*href="/data/expense/{with_receipt.pk}/".*?</li>', html,
                     re.S).group(0)
    assert re.search(r'<img src="/files/[^"]+"', card)
    assert "No picture" in html  # The others have none.

def test_the_switcher_offers_the_boards_and_saved_board_views_open_on_them(clients, people):
    html = get(clients["alice"], "/data/expense/?category=travel")
    for path in ("kanban", "calendar", "gallery"):
        assert f'href="/data/expense/{path}/?category=travel"' in html
    response = clients["alice"].post("/data/expense/views/", {"name": "Travel board", "type": "kanban",
                                                               "query": "group=status&category=travel"})
    assert response.status_code == 302 and response["Location"].startswith("/data/expense/kanban/?")
    html = get(clients["alice"], response["Location"])
    assert sum(columns_of(html).values()) == expenses_of(people["alice"]).filter(category="travel").count()


def test_boards_of_an_entity_without_such_fields_say_so(clients):
    assert "no choice field you may group by" in get(clients["alice"], "/data/project/kanban/")
    assert "no date field you may arrange it by" in get(clients["alice"], "/data/project/calendar/")
    html = get(clients["alice"], "/data/project/gallery/")
    assert "no image field you may see" in html and "Apollo" in html
