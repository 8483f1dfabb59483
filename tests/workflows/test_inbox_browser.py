"""The Expense approval in a real browser (WF-4, WF-9): alice submits two claims with receipts; mia
approves the big one with a comment in her inbox (the diagram marks her task) and rejects the
small one; frank claims the big one from the finance queue and approves it; alice's expense reads
approved, and her bell tells her of the rejection with mia's comment, as does an email.
Screenshots at 1280x800 and 390x844."""

import datetime
import io
import re

import pytest
from django_tenants.utils import tenant_context
from PIL import Image
from playwright.sync_api import Page, expect

from tests.scenario import PASSWORD, seed_acme_for_the_browser

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (60, 80), "white").save(buffer, "PNG")
    return buffer.getvalue()


def log_in(page: Page, base: str, username: str, next_url: str = "/inbox/") -> None:
    page.goto(f"{base}/accounts/login/?next={next_url}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def submit_claim(page: Page, base: str, title: str, amount: str, notes: str) -> None:
    """The server-rendered Expense claim (JavaScript off: every step on one page)."""
    page.goto(f"{base}/forms/")
    page.get_by_role("link", name="Expense claim").click()
    page.get_by_label("Title").fill(title)
    page.get_by_label("Amount").fill(amount)
    page.get_by_label("Spent on").fill((datetime.date.today() - datetime.timedelta(days=1)).isoformat())
    page.get_by_label("Category").select_option("travel")
    page.get_by_label("Notes").fill(notes)
    page.get_by_label("Receipt").set_input_files(files=[{"name": "receipt.png", "mimeType": "image/png",
                                                         "buffer": _png()}])
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("status")).to_contain_text("your form was submitted")


def fits_the_phone(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], page.url


def test_expense_claims_through_the_inbox(live_acme, committed_acme, browser, output_dir, mailoutbox):
    from dynamic_models import runtime

    seed_acme_for_the_browser(committed_acme, "alice", "mia", "frank")
    problems = []

    def new_page(javascript: bool = True) -> Page:
        page = browser.new_context(viewport=DESKTOP, java_script_enabled=javascript).new_page()
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("console", lambda message: message.type == "error" and problems.append(message.text))
        return page

    def shot(page: Page, name: str) -> None:
        page.screenshot(path=str(output_dir / f"{len(list(output_dir.glob('*.png'))):02d}-{name}.png"), full_page=True)
        page.set_viewport_size(PHONE)
        page.wait_for_timeout(300)
        fits_the_phone(page)
        page.screenshot(path=str(output_dir / f"{len(list(output_dir.glob('*.png'))):02d}-{name}-phone.png"),
                        full_page=True)
        page.set_viewport_size(DESKTOP)

    alice = new_page(javascript=False)
    log_in(alice, live_acme, "alice", "/forms/")
    submit_claim(alice, live_acme, "Fair booth in Hangzhou", "1500", "Booth for the three days of the fair.")
    submit_claim(alice, live_acme, "Dinner with the client", "300", "Four people.")

    # mia: both claims wait in her inbox; she approves the booth with a comment.
    mia = new_page()
    log_in(mia, live_acme, "mia")
    expect(mia.get_by_role("heading", name="Inbox")).to_be_visible()
    rows = mia.locator("table.wf-inbox tbody tr")
    expect(rows).to_have_count(2)
    expect(mia.get_by_role("link", name=re.compile(r"^Inbox"))).to_contain_text("2")
    shot(mia, "mia-inbox")
    rows.filter(has_text="Fair booth in Hangzhou").get_by_role("link", name="Manager approval").click()
    expect(mia.get_by_role("heading", name="Manager approval: ")).to_be_visible()
    expect(mia.locator('.djs-element.wf-active[data-element-id="manager"]')).to_be_visible()
    expect(mia.locator('.djs-element.wf-done[data-element-id="claim"]')).to_be_visible()
    expect(mia.locator('.djs-element.wf-pending[data-element-id="finance"]')).to_be_visible()
    expect(mia.locator(".pg-field", has_text="Amount")).to_contain_text("1500.00")
    expect(mia.locator(".pg-field", has_text="IBAN").locator("dd")).to_have_class(re.compile("pg-masked"))
    shot(mia, "mia-task")
    mia.get_by_label("Comment").fill("Booth approved; the fair pays off.")
    mia.get_by_role("button", name="Approve").click()
    expect(mia.get_by_role("status")).to_contain_text("Manager approval: Approved.")
    expect(rows).to_have_count(1)

    # ... and rejects the dinner: no receipt for the drinks.
    rows.filter(has_text="Dinner with the client").get_by_role("link", name="Manager approval").click()
    mia.get_by_label("Comment").fill("No receipt for the drinks.")
    mia.get_by_role("button", name="Reject").click()
    expect(mia.get_by_role("status")).to_contain_text("Manager approval: Rejected.")
    expect(mia.get_by_text("No tasks waiting for you.")).to_be_visible()
    mia.get_by_role("link", name="Done").click()
    expect(mia.locator("table.wf-inbox tbody tr")).to_have_count(2)

    # frank: the booth waits in the finance queue; he claims it and approves.
    frank = new_page()
    log_in(frank, live_acme, "frank")
    frank.get_by_role("link", name="Claimable").click()
    queue = frank.locator("table.wf-inbox tbody tr")
    expect(queue).to_have_count(1)
    expect(queue).to_contain_text("Fair booth in Hangzhou")
    shot(frank, "frank-claimable")
    queue.get_by_role("button", name="Claim").click()
    expect(frank.get_by_role("status")).to_contain_text("The task is yours now.")
    expect(frank.locator(".wf-steps")).to_contain_text("Booth approved; the fair pays off.")
    expect(frank.locator('.djs-element.wf-active[data-element-id="finance"]')).to_be_visible()
    expect(frank.locator('.djs-element.wf-done[data-element-id="manager"]')).to_be_visible()
    shot(frank, "frank-task")
    frank.get_by_label("Comment").fill("Paid with the next run.")
    frank.get_by_role("button", name="Approve").click()
    expect(frank.get_by_role("status")).to_contain_text("Finance approval: Approved.")

    with tenant_context(committed_acme):
        expense = runtime.get_model("expense")
        booth = expense.objects.get(title="Fair booth in Hangzhou")
        dinner = expense.objects.get(title="Dinner with the client")
        assert (booth.status, dinner.status) == ("approved", "rejected")

    # alice: the booth reads approved; the bell tells her of the rejection with mia's comment.
    alice = new_page()
    log_in(alice, live_acme, "alice", f"/data/expense/{booth.pk}/")
    expect(alice.locator(".pg-field", has_text="Status")).to_contain_text(re.compile("approved", re.I))
    bell = alice.get_by_role("link", name=re.compile(r"^Notifications: \d+ new"))
    expect(bell).to_be_visible()
    shot(alice, "alice-approved")
    bell.click()
    expect(alice.locator(".wf-unread", has_text="No receipt for the drinks.")).to_be_visible()
    expect(alice.locator(".wf-unread", has_text="ended: approved")).to_be_visible()
    shot(alice, "alice-notifications")
    alice.get_by_role("link", name=re.compile("No receipt for the drinks")).click()
    expect(alice).to_have_url(re.compile(rf"/data/expense/{dinner.pk}/$"))
    expect(alice.locator(".pg-field", has_text="Status")).to_contain_text(re.compile("rejected", re.I))

    mails = [mail for mail in mailoutbox if mail.to == ["alice@acme.example"]]
    assert any("No receipt for the drinks." in mail.body for mail in mails), [mail.body for mail in mails]
    assert problems == []
