"""The server-rendered form without JavaScript (issue 13 point 5): every step on one page, the
server judges the submission and shows its errors by the fields; alice's claim with its receipt
becomes her expense. (The live behaviour with form.js is tested by test_browser_forms*.)"""

import datetime
import io

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.scenario import PASSWORD, seed_acme_for_the_browser

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (60, 80), "white").save(buffer, "PNG")
    return buffer.getvalue()


def _log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/?next=/forms/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_expense_claim_without_javascript(live_acme, committed_acme, browser, output_dir):
    from django_tenants.utils import tenant_context

    from dynamic_models import runtime

    seed_acme_for_the_browser(committed_acme, "alice")
    for name, viewport in (("desktop", {"width": 1280, "height": 800}), ("phone", PHONE)):
        context = browser.new_context(viewport=viewport, java_script_enabled=False)
        page = context.new_page()
        _log_in(page, live_acme, "alice")
        expect(page.get_by_role("link", name="Expense claim")).to_be_visible()
        page.get_by_role("link", name="Expense claim").click()
        expect(page.get_by_role("group", name="Step 1 of 2 Details")).to_be_visible()
        expect(page.get_by_role("group", name="Step 2 of 2 Receipt and notes")).to_be_visible()
        expect(page.locator('[data-field="iban"]')).to_be_hidden()
        page.screenshot(path=str(output_dir / f"expense-claim-{name}.png"), full_page=True)
        if name == "phone":
            context.close()
            break
        page.get_by_label("Title").fill("Taxi to the trade fair")
        page.get_by_label("Amount").fill("1500")
        page.get_by_label("Spent on").fill((datetime.date.today() - datetime.timedelta(days=1)).isoformat())
        page.get_by_label("Category").select_option("meals")
        page.get_by_role("button", name="Submit").click()
        # Over 1,000 and over 200: notes and the receipt are required, and the server says so by the fields.
        expect(page.locator("#id_notes_errors")).to_contain_text("This field is required.")
        expect(page.locator("#id_receipt_errors")).to_contain_text("This field is required.")
        expect(page.get_by_label("Title")).to_have_value("Taxi to the trade fair")
        page.screenshot(path=str(output_dir / "expense-claim-errors.png"), full_page=True)
        page.get_by_label("Notes").fill("Shared with bob.")
        page.get_by_label("Receipt").set_input_files(files=[{"name": "taxi.png", "mimeType": "image/png",
                                                             "buffer": _png()}])
        page.get_by_label("Amount").fill("1500")
        page.get_by_role("button", name="Submit").click()
        expect(page.get_by_role("status")).to_contain_text("your form was submitted")
        context.close()
    with tenant_context(committed_acme):
        expense = runtime.get_model("expense").objects.get(title="Taxi to the trade fair")
        assert expense.submitted_by.username == "alice" and expense.receipt.name == "taxi.png"
