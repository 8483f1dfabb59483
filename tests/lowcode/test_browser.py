"""Browser tests: headless Chromium against the live server on *.localhost."""

import pytest
from django.contrib.auth import get_user_model
from django_tenants.utils import tenant_context
from playwright.sync_api import expect

from lowcode.tenancy.models import Tenant

pytestmark = pytest.mark.browser


def test_admin_logs_into_acme_admin(live_acme, page, output_dir):
    with tenant_context(Tenant.objects.get(schema_name="acme")):
        get_user_model().objects.create_superuser("chief", "chief@acme.test", "correct-horse-battery")
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("response", lambda response: response.status >= 400 and errors.append(response.url))

    page.goto(f"{live_acme}/admin/")
    page.fill("#id_username", "chief")
    page.fill("#id_password", "correct-horse-battery")
    page.click("input[type=submit]")

    expect(page.locator("#site-name")).to_have_text("Acme administration")
    assert page.url == f"{live_acme}/admin/"
    assert page.locator("#user-tools").inner_text().upper().startswith("WELCOME, CHIEF")
    assert "Users" in page.locator("#content-main").inner_text()
    page.screenshot(path=output_dir / "acme-admin.png", full_page=True)
    assert (output_dir / "acme-admin.png").stat().st_size > 10_000
    assert errors == []  # No CSP violation or script error on the admin pages.


def test_wrong_password_in_the_browser_shows_the_error(live_acme, page):
    page.goto(f"{live_acme}/accounts/login/")
    page.fill("#id_username", "nobody")
    page.fill("#id_password", "wrong-password")
    page.click("main button[type=submit]")
    expect(page.locator("main .errorlist")).to_contain_text("Please enter a correct username and password")


def test_swagger_ui_shows_the_tenants_entities_and_calls_them(live_acme, page, output_dir):
    from dynamic_models import services
    from tests.dynamic_models.conftest import EXPENSE_FIELDS, PROJECT_FIELDS, design

    acme = Tenant.objects.get(schema_name="acme")
    with tenant_context(acme):
        services.publish(design("project", PROJECT_FIELDS, label="Project", display_field="name"))
        services.publish(design("expense", EXPENSE_FIELDS, label="Expense", display_field="title"))
        get_user_model().objects.create_superuser("chief", "chief@acme.test", "correct-horse-battery")
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("response", lambda response: response.status >= 400 and errors.append(response.url))
    page.goto(f"{live_acme}/admin/login/?next=/api/docs/")
    page.fill("#id_username", "chief")
    page.fill("#id_password", "correct-horse-battery")
    page.click("input[type=submit]")

    # Swagger UI runs under the CSP (its scripts are static files) and lists acme's entities.
    expect(page.locator(".opblock-tag-section h3", has_text="expense")).to_be_visible(timeout=15_000)
    page.locator("#operations-expense-data_expense_list button.opblock-summary-control").click()
    page.get_by_role("button", name="Try it out").click()
    page.get_by_role("button", name="Execute").click()
    expect(page.locator(".live-responses-table tr.response .response-col_status").first).to_have_text("200")
    page.screenshot(path=output_dir / "swagger.png", full_page=True)
    assert errors == []
