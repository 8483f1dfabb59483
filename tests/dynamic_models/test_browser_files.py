"""Receipts in a real browser (issue 11 acceptance, scenario.md): alice adds an expense with a
JPEG receipt in the generated admin, finds it in her list as its submitter and sees its thumbnail; bob gets 404 for the expense and
for the download URL; a signed URL stops working once it expires; frank downloads it."""

import io
import re
import time

import pytest
from django_tenants.utils import tenant_context
from PIL import Image, ImageDraw
from playwright.sync_api import Page, expect

from dynamic_models import file_fields, runtime
from files import previews
from tests.scenario import log_in, seed_acme_for_the_browser

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def receipt_jpeg() -> bytes:
    image = Image.new("RGB", (600, 800), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([20, 20, 579, 779], outline="navy", width=6)
    draw.text((60, 80), "TAXI RECEIPT  86.00 CNY", fill="black")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def scenario_people(committed_acme):
    seed_acme_for_the_browser(committed_acme, "alice", "bob", "frank")
    return committed_acme


def fetch(page: Page, path: str) -> dict:
    """GET `path` from the page (its cookies, its name resolution of acme.localhost)."""
    return page.evaluate("""async (path) => {
        const response = await fetch(path);
        const body = new Uint8Array(await response.arrayBuffer());
        return {status: response.status, url: response.url, headers: Object.fromEntries(response.headers),
                body: Array.from(body)};
    }""", path)


def test_receipts_in_the_browser(live_acme, scenario_people, browser, page, output_dir, settings):
    content = receipt_jpeg()
    # alice adds an expense with her receipt in the generated admin.
    log_in(page, live_acme, "alice")
    page.goto(f"{live_acme}/admin/data/expense/add/")
    page.fill("#id_title", "Taxi to the client")
    page.fill("#id_amount", "86.00")
    page.fill("#id_spent_on", "2026-01-05")
    page.select_option("#id_category", "travel")
    page.set_input_files("#id_receipt", files=[{"name": "taxi.jpg", "mimeType": "image/jpeg", "buffer": content}])
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    # It is hers (submitted_by is set to whoever creates it) and so in her own list (issue 12).
    row = page.locator("#result_list tbody tr", has_text="Taxi to the client")
    expect(row).to_contain_text("alice")
    page.screenshot(path=output_dir / "alice-list-with-her-new-expense.png")

    with tenant_context(scenario_people):
        expense = runtime.get_model("expense").objects.select_related("receipt").get(title="Taxi to the client")
        stored = expense.receipt
        assert stored.name == "taxi.jpg" and stored.content_type == "image/jpeg"
        assert stored.uploaded_by.username == "alice"
        previews.make_preview(str(stored.pk))  # What the Celery task does once the upload commits.
        described = file_fields.describe(stored, expense, "receipt")
    change_url = f"{live_acme}/admin/data/expense/{expense.pk}/change/"
    page.goto(change_url)
    thumbnail = page.locator(".record-file-thumbnail")
    expect(thumbnail).to_be_visible()
    assert page.evaluate("img => img.naturalWidth", thumbnail.element_handle()) > 0  # The preview loaded.
    expect(page.get_by_role("link", name="taxi.jpg")).to_have_attribute("href", described["open_url"])
    page.screenshot(path=output_dir / "alice-expense-with-receipt.png", full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=output_dir / "alice-expense-with-receipt-phone.png", full_page=True)

    # bob (a member of the same department) sees his own expenses only: 404 for the record and its file.
    bob = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    log_in(bob, live_acme, "bob")
    assert bob.goto(change_url).status == 404
    assert fetch(bob, described["download_url"])["status"] == 404
    assert fetch(bob, described["open_url"])["status"] == 404
    bob.screenshot(path=output_dir / "bob-404.png")

    # frank (finance, every expense) downloads it through the stable link: a fresh signed URL.
    frank = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    log_in(frank, live_acme, "frank")
    frank.goto(change_url)
    with frank.expect_popup() as popup:
        frank.get_by_role("link", name="taxi.jpg").click()
    opened = popup.value
    opened.wait_for_load_state()
    assert re.search(r"/files/d/[^/]+/$", opened.url)
    response = fetch(frank, described["open_url"])
    assert response["status"] == 200 and bytes(response["body"]) == content
    assert response["headers"]["x-content-type-options"] == "nosniff"
    frank.screenshot(path=output_dir / "frank-expense.png", full_page=True)

    # A signed URL stops working once it expires.
    settings.FILES_URL_MAX_AGE = 5  # Seconds; a busy machine takes more than 1 between signing and fetching.
    with tenant_context(scenario_people):
        signed = file_fields.describe(stored, expense, "receipt")["download_url"]
    assert fetch(frank, signed)["status"] == 200
    time.sleep(6.2)
    assert fetch(frank, signed)["status"] == 410
    frank.goto(f"{live_acme}{signed}")
    frank.screenshot(path=output_dir / "frank-expired-url.png")
