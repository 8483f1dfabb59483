"""The data-factory module of fx-tools in a real browser (PL-4): tina opens "Generate demo expenses",
sends it empty (each field says what it needs), fixes the dates, runs it and reads the result and the
execution log, on a desktop and a phone. Screenshots at 1280x800 and 390x844 in test-results/."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django_tenants.utils import tenant_context
from playwright.sync_api import expect

from plugins import services
from rbac import services as rbac
from rbac.models import Department, Role
from tests.scenario import PASSWORD, log_in, seed_acme_for_the_browser

from .conftest import EXAMPLES, FX_PACKAGE

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
WIDE = {"width": 1280, "height": 800}
OVERFLOW = "document.documentElement.scrollWidth <= window.innerWidth"


def test_tina_generates_demo_expenses_and_reads_the_log(live_acme, committed_acme, page, output_dir):
    seed_acme_for_the_browser(committed_acme)
    services.register_key("Examples", (EXAMPLES / "test-publisher.pub").read_text())
    services.install(FX_PACKAGE.read_bytes())
    services.enable(committed_acme, "fx-tools")
    with tenant_context(committed_acme):
        tina = get_user_model().objects.create_user("tina", "tina@acme.example", PASSWORD, is_staff=True)
        rbac.assign_role(tina, Role.objects.get(key=Role.TENANT_ADMIN))
        sales = Department.objects.get(name="Sales")
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: message.type == "error" and "status of 400" not in message.text
            and problems.append(message.text))

    def shot(name: str) -> None:
        page.screenshot(path=output_dir / f"{name}.png", full_page=True)
        page.set_viewport_size(PHONE)
        page.screenshot(path=output_dir / f"{name}-phone.png", full_page=True)
        assert page.evaluate(OVERFLOW), name
        page.set_viewport_size(WIDE)

    log_in(page, live_acme, "tina")
    page.goto(f"{live_acme}/dmm/")
    page.get_by_role("link", name="Generate demo expenses").click()
    expect(page.get_by_role("heading", name="Generate demo expenses")).to_be_visible()
    expect(page.get_by_label("How many")).to_have_value("10")
    shot("01-form")

    # Sent with the department missing and the dates the wrong way round: refused, field by field.
    page.get_by_label("Spent from").fill("2026-10-31")
    page.get_by_label("Spent until").fill("2026-10-01")
    page.get_by_role("button", name="Run").click()
    expect(page.locator('.lc-field[data-field="department"]')).to_contain_text("required")
    expect(page.locator('.lc-field[data-field="spent_until"]')).to_contain_text("Must be on or after the first date.")
    shot("02-validation")

    page.get_by_label("Department").select_option(str(sales.pk))
    page.get_by_label("Spent from").fill("2026-10-01")
    page.get_by_label("Spent until").fill("2026-10-31")
    page.get_by_label("How many").fill("5")
    page.get_by_role("button", name="Run").click()
    result = page.locator(".lc-dmm-result")
    expect(result).to_contain_text("Done")
    expect(result).to_contain_text("Created 5 expenses.")
    expect(page.locator(".lc-dmm-runs tbody tr")).to_have_count(1)
    shot("03-run")

    page.goto(f"{live_acme}/admin/datafactory/modulerun/")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(page.locator("#result_list")).to_contain_text("demo/expenses")
    shot("04-execution-log")
    assert problems == []
