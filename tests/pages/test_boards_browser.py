"""Kanban, calendar and gallery in a real browser (issue 14 acceptance): alice switches to the
kanban by status and the calendar by spent_on and cannot drag her submitted expense (status is
read-only for members: a clear message, the card stays); mia drags a Sales expense to another
status and it sticks. Screenshots at 1280x800 and 390x844, without horizontal page scroll."""

import datetime

import pytest
from django_tenants.utils import tenant_context
from playwright.sync_api import Page, expect

from dynamic_models import runtime
from rbac import services as rbac
from tests.scenario import log_in, seed_acme_for_the_browser

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def seeded(committed_acme):
    """acme with the scenario; mia also holds an "approver" role letting her change her department's
    expenses, status included (set up as a tenant admin would)."""
    people = seed_acme_for_the_browser(committed_acme, "alice", "mia")
    with tenant_context(committed_acme):
        role = rbac.create_role("approver", "Approver", grants=["data.expense.view", "data.expense.change"])
        rbac.add_scope(role, "expense", "department", owner_field="submitted_by")
        rbac.add_scope(role, "expense", "department", action="change", owner_field="submitted_by")
        rbac.assign_role(people["mia"], role)
    return committed_acme


def no_overflow(page: Page) -> None:
    """Nothing but a scroll box is wider than the window."""
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]")


def shoot(page: Page, output_dir, name: str) -> None:
    """Screenshots at desktop and phone size, checking that the page itself never scrolls sideways."""
    page.set_viewport_size({"width": 1280, "height": 800})
    no_overflow(page)
    page.screenshot(path=output_dir / f"{name}-1280.png", full_page=True)
    page.set_viewport_size(PHONE)
    no_overflow(page)
    page.screenshot(path=output_dir / f"{name}-390.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})


def column(page: Page, value: str):
    return page.locator(f'.pg-kanban-cards[data-value="{value}"]')


def drag(page: Page, card, target) -> None:
    """Drag with the mouse in small steps, as a person does (SortableJS needs the moves)."""
    card.scroll_into_view_if_needed()
    start, end = card.bounding_box(), target.bounding_box()
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + 12)
    page.mouse.down()
    page.mouse.move(start["x"] + start["width"] / 2 + 10, start["y"] + 20, steps=5)
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + 20, steps=20)
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + 24, steps=5)
    page.mouse.up()


def test_boards_in_the_browser(live_acme, seeded, page, browser, output_dir):
    with tenant_context(seeded):
        expense = runtime.get_model("expense")
        alices = expense.objects.get(submitted_by__username="alice", status="submitted", receipt__isnull=False)
        bobs = expense.objects.filter(submitted_by__username="bob", status="submitted").first()

    # alice: from the table to the kanban, grouped by status.
    log_in(page, live_acme, "alice")
    page.goto(f"{live_acme}/data/expense/")
    page.locator(".pg-switcher").get_by_role("link", name="Kanban").click()
    page.get_by_label("Group by").select_option("status")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(f"{live_acme}/data/expense/kanban/?group=status")
    card = column(page, "submitted").locator(".pg-kanban-card", has_text=alices.title)
    expect(card).to_be_visible()
    shoot(page, output_dir, "kanban-alice")

    # Her submitted expense does not move: status is read-only for members.
    drag(page, card, column(page, "draft"))
    expect(page.locator("#pg-board-message")).to_have_text(f"“{alices}” cannot be moved: you may not change Status.")
    expect(column(page, "submitted").locator(".pg-kanban-card", has_text=alices.title)).to_be_visible()
    page.screenshot(path=output_dir / "kanban-alice-refused-1280.png", full_page=True)
    with tenant_context(seeded):
        alices.refresh_from_db()
        assert alices.status == "submitted"

    # The calendar by spent_on: this month's expenses on their day.
    page.locator(".pg-switcher").get_by_role("link", name="Calendar").click()
    expect(page).to_have_url(f"{live_acme}/data/expense/calendar/?group=status")
    expect(page.locator(".pg-board-field")).to_contain_text("Spent on")
    expect(page.locator(".pg-today")).to_be_visible()
    this_month = alices.spent_on.replace(day=1) == datetime.date.today().replace(day=1)
    expect(page.locator(f'.pg-day a[href="/data/expense/{alices.pk}/"]')).to_have_count(1 if this_month else 0)
    shoot(page, output_dir, "calendar-alice")
    page.get_by_role("link", name="Previous month").click()
    previous = (datetime.date.today().replace(day=1) - datetime.timedelta(days=1)).strftime("%Y-%m")
    expect(page).to_have_url(f"{live_acme}/data/expense/calendar/?group=status&month={previous}")

    # The gallery: receipts as pictures.
    page.locator(".pg-switcher").get_by_role("link", name="Gallery").click()
    picture = page.locator(".pg-gallery-card", has_text=alices.title).locator("img")
    expect(picture).to_be_visible()
    assert picture.evaluate("image => image.decode().then(() => image.naturalWidth > 0)")  # Loaded, a real picture.
    shoot(page, output_dir, "gallery-alice")

    # mia drags bob's submitted expense to approved; it sticks.
    mia = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    log_in(mia, live_acme, "mia")
    mia.goto(f"{live_acme}/data/expense/kanban/?group=status")
    card = column(mia, "submitted").locator(".pg-kanban-card", has_text=bobs.title)
    approved = int(mia.locator(".pg-kanban-column", has=column(mia, "approved")).locator(".pg-kanban-count").inner_text())
    drag(mia, card, column(mia, "approved"))
    expect(mia.locator("#pg-board-message")).to_have_text(f"“{bobs}” moved to Approved.")
    expect(mia.locator(".pg-kanban-column", has=column(mia, "approved")).locator(".pg-kanban-count")).to_have_text(
        str(approved + 1))
    mia.screenshot(path=output_dir / "kanban-mia-moved-1280.png", full_page=True)
    mia.reload()
    expect(column(mia, "approved").locator(".pg-kanban-card", has_text=bobs.title)).to_be_visible()
    with tenant_context(seeded):
        bobs.refresh_from_db()
        assert bobs.status == "approved"
    shoot(mia, output_dir, "kanban-mia")
