"""The script admin's test console in a real browser (SC-1): tina runs a script with params and a
record, reads the result, its log and the run at the top of the last runs; then a script that loops
ends as an error within its limit. Screenshots at 1280x800 and 390x844 in test-results/."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django_tenants.utils import tenant_context
from playwright.sync_api import expect

from dynamic_models import runtime
from rbac import services as rbac
from rbac.models import Role
from scripts.models import Script
from tests.scenario import PASSWORD, log_in, seed_acme_for_the_browser

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
WIDE = {"width": 1280, "height": 800}

CODE = """log("claim", record.title, "of", record.amount);
return {in_usd: Math.round(Number(record.amount) * params.rate * 100) / 100, open: records.list("expense").length};"""


def test_tina_tries_a_script_in_the_console(live_acme, committed_acme, page, output_dir):
    seed_acme_for_the_browser(committed_acme)
    with tenant_context(committed_acme):
        tina = get_user_model().objects.create_user("tina", "tina@acme.example", PASSWORD, is_staff=True)
        rbac.assign_role(tina, Role.objects.get(key=Role.TENANT_ADMIN))
        script = Script.objects.create(key="usd_value", name="Value in US dollars", code=CODE)
        looping = Script.objects.create(key="spin", name="Spins", code="while (true) {}", time_limit=1)
        expense = runtime.get_model("expense").objects.order_by("pk").first()
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))

    def shot(name: str) -> None:
        page.screenshot(path=output_dir / f"{name}.png", full_page=True)
        page.set_viewport_size(PHONE)
        page.screenshot(path=output_dir / f"{name}-phone.png", full_page=True)
        page.set_viewport_size(WIDE)

    log_in(page, live_acme, "tina")
    page.goto(f"{live_acme}/admin/scripts/script/{script.pk}/change/")
    console = page.locator("#sc-console")
    expect(console).to_contain_text("No run yet.")
    page.locator("#sc-params").fill('{"rate": 0.14}')
    page.locator("#sc-entity").fill("expense")
    page.locator("#sc-record-id").fill(str(expense.pk))
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#sc-status")).to_contain_text("OK")
    expect(page.locator("#sc-output")).to_contain_text('"in_usd"')
    expect(page.locator("#sc-logs")).to_contain_text(f"claim {expense.title} of")
    expect(page.locator("#sc-runs tbody tr")).to_have_count(1)
    console.scroll_into_view_if_needed()
    shot("01-run")

    page.goto(f"{live_acme}/admin/scripts/script/{looping.pk}/change/")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#sc-status")).to_contain_text("Error", timeout=20_000)
    expect(page.locator("#sc-message")).to_contain_text("longer than its time limit")
    shot("02-timeout")

    page.reload()  # The runs are logged: the last runs show them from the server too.
    expect(page.locator("#sc-runs tbody tr")).to_have_count(1)
    expect(page.locator("#sc-runs")).to_contain_text("Test console")
    page.goto(f"{live_acme}/admin/scripts/scriptrun/")
    expect(page.locator("#result_list tbody tr")).to_have_count(2)
    shot("03-runs")
    assert problems == []
