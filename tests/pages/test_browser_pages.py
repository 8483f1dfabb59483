"""The end-user site in a real browser (issue 14 acceptance): alice signs in at acme.localhost, sees
her expenses only (IBAN masked), opens one, edits a cell, creates one through the generated form and
saves a view; frank exports the filtered list. Screenshots at 1280x800 and 390x844; at phone size no
page scrolls sideways."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django_tenants.utils import tenant_context
from playwright.sync_api import Page, expect

from dynamic_models import runtime
from tests.scenario import PASSWORD, seed_acme_for_the_browser

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
IBAN = "DE89370400440532013000"


@pytest.fixture
def seeded(committed_acme):
    people = seed_acme_for_the_browser(committed_acme, "alice", "frank")
    with tenant_context(committed_acme):
        runtime.get_model("expense").objects.filter(submitted_by=people["alice"]).update(iban=IBAN)
    return committed_acme, people


def sign_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome to Acme")


def both_sizes(page: Page, output_dir, name: str) -> None:
    """Screenshots at desktop and phone size; at phone size the page itself does not scroll sideways."""
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=output_dir / f"{name}-1280.png", full_page=True)
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (name, page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]"))
    page.screenshot(path=output_dir / f"{name}-390.png", full_page=True)
    page.set_viewport_size(DESKTOP)


def test_alice_works_with_her_expenses(live_acme, seeded, page, output_dir):
    tenant, people = seeded
    with tenant_context(tenant):
        expense = runtime.get_model("expense")
        own = list(expense.objects.filter(submitted_by=people["alice"]))
        others = list(expense.objects.exclude(submitted_by=people["alice"]))
    sign_in(page, live_acme, "alice")
    expect(page.locator(".pg-card")).to_contain_text(["Expenses"])
    both_sizes(page, output_dir, "home")

    page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Expenses").click()
    table = page.locator("table.pg-table")
    expect(table.locator("tbody tr")).to_have_count(len(own))
    text = table.inner_text()
    assert IBAN not in text and "****" + IBAN[-4:] in text
    for record in others:
        expect(page.locator(f'a[href="/data/expense/{record.pk}/"]')).to_have_count(0)
    both_sizes(page, output_dir, "table")

    # An inline edit of a draft's title; the status column is not editable for her.
    draft = next(record for record in own if record.status == "draft")
    row = page.locator("tbody tr", has=page.locator(f'a[href="/data/expense/{draft.pk}/"]'))
    expect(row.locator('td[data-edit="status"]')).to_have_count(0)
    title_cell = row.locator('td[data-edit="title"]')
    title_cell.click()
    title_cell.locator("input").fill("Taxi to the airport")
    title_cell.locator("input").press("Enter")
    expect(title_cell).to_have_text("Taxi to the airport")
    amount_cell = row.locator('td[data-edit="amount"]')
    amount_cell.click()
    amount_cell.locator("input").fill("-5")
    amount_cell.locator("input").press("Enter")
    expect(amount_cell.locator(".pg-cell-error")).to_be_visible()
    page.screenshot(path=output_dir / "inline-error-1280.png")
    amount_cell.locator("input").press("Escape")

    # Her expense's page: fields, masked IBAN, history.
    page.goto(f"{live_acme}/data/expense/{draft.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Taxi to the airport")
    expect(page.locator(".pg-fields")).to_contain_text("****" + IBAN[-4:])
    expect(page.locator(".pg-timeline")).to_contain_text("Taxi to the airport")
    both_sizes(page, output_dir, "detail")

    # A new expense through the generated form.
    page.goto(f"{live_acme}/data/expense/")
    page.get_by_role("link", name="New", exact=True).click()
    expect(page.locator(".lc-form")).to_be_visible()
    both_sizes(page, output_dir, "form")
    page.fill("#id_title", "Hotel in Lyon")
    page.fill("#id_amount", "120.00")
    page.fill("#id_spent_on", "2026-01-05")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Hotel in Lyon")
    expect(page.locator(".pg-message")).to_contain_text("Saved.")

    # A saved view: her meals, newest first.
    page.goto(f"{live_acme}/data/expense/?category=meals&sort=-amount")
    page.locator("details.pg-saved summary").click()
    page.fill("#pg-view-name", "My meals")
    page.get_by_role("button", name="Save view").click()
    expect(page.locator(".pg-message")).to_contain_text("My meals")
    page.goto(f"{live_acme}/data/expense/")
    page.locator("details.pg-saved summary").click()
    page.get_by_role("link", name="My meals").click()
    expect(page.locator("#pg-f-category")).to_have_value("meals")
    both_sizes(page, output_dir, "saved-view")


def test_frank_exports_the_filtered_list(live_acme, seeded, page, output_dir):
    sign_in(page, live_acme, "frank")
    page.goto(f"{live_acme}/data/expense/")
    page.select_option("#pg-f-status", "draft")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"status=draft"))
    rows = page.locator("table.pg-table tbody tr").count()
    both_sizes(page, output_dir, "frank-filtered")
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    lines = Path(download.value.path()).read_text(encoding="utf-8").strip().splitlines()
    assert len(lines) == rows + 1
    assert IBAN in "\n".join(lines)


def test_dark_theme_and_chinese_on_a_phone(live_acme, seeded, page, output_dir):
    from pages.models import Theme

    tenant, _people = seeded
    with tenant_context(tenant):
        Theme.objects.create(brand_colour="#0f766e", mode="dark")
    sign_in(page, live_acme, "frank")
    page.get_by_role("button", name="简体中文").click()
    page.goto(f"{live_acme}/data/expense/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(17, 20, 24)"
    both_sizes(page, output_dir, "dark-zh-table")
    page.set_viewport_size(PHONE)
    page.locator("label.pg-menu-button").click()
    expect(page.locator("nav.pg-menu")).to_be_visible()
    page.screenshot(path=output_dir / "dark-zh-menu-390.png", full_page=True)
