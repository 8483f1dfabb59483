"""The record admin in a real browser (issue 12 acceptance): the history of an edited expense shows
labels and display values, the list scrolls inside its box with the display column in place, and
the import page shows a background job's progress bar until its report."""

import re

import pytest
from django.contrib.auth import get_user_model
from django_tenants.utils import tenant_context
from playwright.sync_api import Page, expect

from dynamic_models import runtime, transfer
from dynamic_models.models import ImportJob
from tests.scenario import log_in, seed_acme_for_the_browser

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def seeded(committed_acme):
    """acme seeded with the scenario, known passwords; frank may do everything (restore, import)."""
    people = seed_acme_for_the_browser(committed_acme, "alice", "frank")
    with tenant_context(committed_acme):
        get_user_model().objects.filter(pk=people["frank"].pk).update(is_superuser=True)
    return committed_acme


def no_overflow(page: Page) -> None:
    """Nothing but a scroll box is wider than the window."""
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]")


def test_history_list_and_import_in_the_browser(live_acme, seeded, page, browser, output_dir, settings,
                                                 jobs_wait_in_the_queue):
    with tenant_context(seeded):
        expense = runtime.get_model("expense").objects.get(title="Team lunch with the customer")
        borealis = runtime.get_model("project").objects.get(name="Borealis")

    # frank edits alice's expense in the generated admin: another project, another amount.
    log_in(page, live_acme, "frank")
    page.goto(f"{live_acme}/admin/data/expense/{expense.pk}/change/")
    assert "object at 0x" not in page.content()
    page.select_option("#id_project", str(borealis.pk))
    page.fill("#id_amount", "455.00")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")

    # alice reads its history: labels and names, her IBAN rule applies.
    alice = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    log_in(alice, live_acme, "alice")
    alice.goto(f"{live_acme}/admin/data/expense/{expense.pk}/history/")
    update = alice.locator("tr.event-update").first
    expect(update).to_contain_text("Project")
    expect(update).to_contain_text("Apollo")
    expect(update).to_contain_text("Borealis")
    expect(update).to_contain_text("Amount")
    expect(update).to_contain_text("455.00")
    created = alice.locator("tr.event-create")
    expect(created).to_contain_text("Submitted by")
    expect(created).to_contain_text("Alice")
    assert not re.search(r"(project|submitted_by): ", alice.inner_text("#change-history"))
    no_overflow(alice)
    alice.screenshot(path=output_dir / "history-1280.png", full_page=True)
    alice.set_viewport_size(PHONE)
    no_overflow(alice)
    alice.screenshot(path=output_dir / "history-390.png", full_page=True)

    # Restoring the first version asks first, showing what would change.
    page.goto(f"{live_acme}/admin/data/expense/{expense.pk}/history/")
    page.locator("tr.event-create").get_by_role("link", name="Restore this version").click()
    changes = page.locator("#restore-changes")
    expect(changes).to_contain_text("Borealis")
    expect(changes).to_contain_text("Apollo")
    no_overflow(page)
    page.screenshot(path=output_dir / "restore-confirmation-1280.png", full_page=True)
    page.get_by_role("link", name="No, take me back").click()
    expect(page.locator("#change-history")).to_be_visible()

    # frank's list: every column, scrolling inside its box with the title in place.
    page.goto(f"{live_acme}/admin/data/expense/")
    no_overflow(page)
    results = page.locator("#changelist-form .results")
    title = page.locator("#result_list tbody tr").first.locator("th, td").nth(1)
    assert results.evaluate("box => box.scrollWidth > box.clientWidth")  # Wider than its box: it scrolls.
    x_before = title.bounding_box()["x"]
    results.evaluate("box => { box.scrollLeft = box.scrollWidth; }")
    assert abs(title.bounding_box()["x"] - x_before) < 1  # Sticky.
    page.screenshot(path=output_dir / "list-1280.png", full_page=True)
    results.evaluate("box => { box.scrollLeft = 0; }")

    # frank imports a file too big to import at once: a job with a progress bar, then its report.
    settings.API_IMPORT_SYNC_MAX_ROWS = 2
    page.get_by_role("link", name="Import", exact=True).click()
    rows = "".join(f"Taxi {number},1{number}.00,2026-01-0{number}\n" for number in range(1, 4))
    page.set_input_files("#id_file", files=[{"name": "taxis.csv", "mimeType": "text/csv",
                                             "buffer": ("title,amount,spent_on\n" + rows).encode()}])
    page.get_by_role("button", name="Check the file").click()
    expect(page.locator("progress")).to_be_visible()
    no_overflow(page)
    page.screenshot(path=output_dir / "import-progress-1280.png", full_page=True)
    page.set_viewport_size(PHONE)
    no_overflow(page)
    page.screenshot(path=output_dir / "import-progress-390.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})
    with tenant_context(seeded):
        transfer.run_import_job(ImportJob.objects.get().pk)  # What the Celery worker does.
    # The page polls the job's status and shows its report once it has finished.
    expect(page.locator(".import-report")).to_contain_text("Dry run: 3 of 3 rows are valid", timeout=10_000)
    page.screenshot(path=output_dir / "import-dry-run-1280.png", full_page=True)
    page.get_by_role("button", name="Import 3 rows").click()
    expect(page.locator("progress")).to_be_visible()
    with tenant_context(seeded):
        transfer.run_import_job(ImportJob.objects.get(dry_run=False).pk)
    expect(page.locator(".import-report")).to_contain_text("Imported 3 records.", timeout=10_000)
    page.screenshot(path=output_dir / "import-done-1280.png", full_page=True)
