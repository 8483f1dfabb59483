"""Ordered child rows in a real browser (issue 17): the third line of an expense claim dragged to the
top in the admin is saved in its new order (one audited save per moved row) and shows so in the API
record and on the end-user detail and edit pages; the move buttons work from the keyboard; a member who may
not change the lines sees no handles."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django_tenants.utils import tenant_context
from playwright.sync_api import Page, expect

from audit.models import AuditEvent
from dynamic_models import runtime, services
from rbac import services as rbac
from tests.dynamic_models.test_child_rows import CHILD_OF, CLAIM, LINE, body
from tests.scenario import PASSWORD, log_in

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
PREFIX = "expense_line_claim_set"


@pytest.fixture
def claim(committed_acme):
    """An expense claim with three lines (Train, Hotel, Taxi); frank may do everything, mia (staff)
    may change claims but only read their lines. Keys of their own: the audit events this test
    commits stay, and test_child_rows counts those of claim_line."""
    with tenant_context(committed_acme):
        services.publish_body(body("expense_claim", CLAIM, display_field="title"))
        services.publish_body(body("expense_line", [{**LINE[0], "options": {**LINE[0]["options"], "target": "expense_claim"}}, *LINE[1:]],
                                   child_of=CHILD_OF, display_field="description"))
        record = runtime.get_model("expense_claim").objects.create(title="Trip to Lyon")
        for position, description, amount in [(1, "Train", "40"), (2, "Hotel", "90"), (3, "Taxi", "12.50")]:
            runtime.get_model("expense_line").objects.create(claim=record, position=position, description=description,
                                                             amount=amount)
        users = get_user_model().objects
        users.create_user("frank", password=PASSWORD, is_staff=True, is_superuser=True)
        mia = users.create_user("mia", password=PASSWORD, is_staff=True)
        role = rbac.create_role("claims", grants=[Permission.objects.get(codename=name) for name in (
            "view_expense_claim", "change_expense_claim", "view_expense_line")])
        rbac.add_scope(role, "expense_claim", "all")
        rbac.add_scope(role, "expense_line", "all")
        rbac.assign_role(mia, role)
    return record


def descriptions(page: Page) -> list[str]:
    return page.locator(f"#{PREFIX}-group tr.form-row:not(.empty-form) td.field-description input").evaluate_all(
        "inputs => inputs.map((input) => input.value)")


def positions(page: Page) -> list[str]:
    return page.locator(f"#{PREFIX}-group tr.form-row:not(.empty-form) td.field-position input").evaluate_all(
        "inputs => inputs.map((input) => input.value)")


def drag(page: Page, source, target) -> None:
    """Drag `source` onto `target` by mouse moves in steps (SortableJS's fallback, as a hand would)."""
    start, end = source.bounding_box(), target.bounding_box()
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(start["x"] + start["width"] / 2,
                        start["y"] + (end["y"] + 2 - start["y"]) * step / 10, steps=2)
    page.mouse.up()


def no_overflow(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]")


def test_drag_the_third_line_to_the_top(live_acme, committed_acme, claim, page, browser, output_dir):
    url = f"{live_acme}/admin/data/expense_claim/{claim.pk}/change/"
    log_in(page, live_acme, "frank")
    page.goto(url)
    handles = page.locator(f"#{PREFIX}-group tr.form-row:not(.empty-form) .lc-child-handle")
    expect(handles).to_have_count(3)
    page.screenshot(path=output_dir / "admin-before-1280.png", full_page=True)
    drag(page, handles.nth(2), handles.nth(0))
    assert descriptions(page) == ["Taxi", "Train", "Hotel"]
    assert positions(page) == ["1", "2", "3"]
    page.screenshot(path=output_dir / "admin-dragged-1280.png", full_page=True)
    with tenant_context(committed_acme):
        last_event = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    assert descriptions(page) == ["Taxi", "Train", "Hotel"]

    with tenant_context(committed_acme):
        saved = AuditEvent.objects.filter(seq__gt=last_event, target_type__endswith="expense_line")
        assert sorted(saved.values_list("action", flat=True)) == ["data.expense_line.update"] * 3  # One per moved row.
    record = page.evaluate("(url) => fetch(url, {headers: {Accept: 'application/json'}}).then((r) => r.json())",
                           f"/api/v1/data/expense_claim/{claim.pk}/")
    assert [(row["description"], row["position"]) for row in record["expense_line"]] == [
        ("Taxi", 1), ("Train", 2), ("Hotel", 3)]

    # From the keyboard: Train moves down; "Add another" appends with the next number.
    page.locator(f"#{PREFIX}-1 .lc-child-down").focus()
    page.keyboard.press("Enter")
    assert descriptions(page) == ["Taxi", "Hotel", "Train"] and positions(page) == ["1", "2", "3"]
    assert page.evaluate("document.activeElement.classList.contains('lc-child-up')")  # Train is last now.
    expect(page.locator(".lc-child-rows .lc-child-status")).to_have_text("Row moved to position 3 of 3.")
    page.locator(f"#{PREFIX}-group .add-row a").click()
    assert positions(page) == ["1", "2", "3", "4"]
    page.locator(f"#{PREFIX}-group tr.form-row:not(.empty-form) td.field-amount input").nth(3).fill("18")
    page.get_by_role("button", name="Save and continue editing").click()
    # Refused (no description): the rows come back in the order they were moved to, with their numbers.
    expect(page.locator(".errornote")).to_be_visible()
    assert descriptions(page) == ["Taxi", "Hotel", "Train", ""] and positions(page) == ["1", "2", "3", "4"]
    page.locator(f"#{PREFIX}-group tr.form-row:not(.empty-form) td.field-description input").nth(3).fill("Lunch")
    page.set_viewport_size(PHONE)
    page.screenshot(path=output_dir / "admin-added-390.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    assert descriptions(page) == ["Taxi", "Hotel", "Train", "Lunch"]

    # The end-user detail page lists the lines in that order.
    page.goto(f"{live_acme}/data/expense_claim/{claim.pk}/")
    lines = page.locator("[data-child-rows=expense_line] tbody tr")
    expect(lines).to_have_count(4)
    assert [text.split("\t")[1] for text in lines.all_inner_texts()] == ["Taxi", "Hotel", "Train", "Lunch"]
    no_overflow(page)
    page.screenshot(path=output_dir / "detail-1280.png", full_page=True)
    page.set_viewport_size(PHONE)
    no_overflow(page)
    page.screenshot(path=output_dir / "detail-390.png", full_page=True)
    # The edit page shows them read-only, with a link to their list (rows of this claim, in order).
    page.goto(f"{live_acme}/data/expense_claim/{claim.pk}/edit/")
    expect(page.locator("[data-child-rows=expense_line] tbody tr").first).to_contain_text("Taxi")
    page.get_by_role("link", name="Edit the rows").click()
    expect(page.locator("table.pg-table tbody tr").first).to_contain_text("Taxi")
    expect(page.locator("table.pg-table tbody tr")).to_have_count(4)
    no_overflow(page)
    page.screenshot(path=output_dir / "rows-list-390.png", full_page=True)

    # mia may change the claim but not its lines: she reads them, with no handle or move button.
    mia = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    log_in(mia, live_acme, "mia")
    mia.goto(url)
    expect(mia.locator(f"#{PREFIX}-group")).to_contain_text("Taxi")
    expect(mia.locator(".lc-child-handle")).to_have_count(0)
    expect(mia.locator(".lc-child-move")).to_have_count(0)
    mia.screenshot(path=output_dir / "admin-member-1280.png", full_page=True)
    mia.set_viewport_size(PHONE)
    mia.screenshot(path=output_dir / "admin-member-390.png", full_page=True)
