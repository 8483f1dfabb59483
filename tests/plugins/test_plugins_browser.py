"""fx() of the fx-tools plugin in a form's conditions in a real browser (its JavaScript twin), and
gone from the page on the next request once the plugin is disabled. Screenshots at 1280x800 and
390x844 in test-results/."""

from __future__ import annotations

import re

import pytest
from django_tenants.utils import get_tenant_model, tenant_context
from playwright.sync_api import expect

from plugins import services
from tests.scenario import log_in, seed_acme_for_the_browser

from .conftest import EXAMPLES, FX_PACKAGE
from .test_lifecycle import TRAVEL_BUDGET

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def test_fx_in_a_form_condition_in_the_browser(live_acme, committed_acme, page, output_dir):
    from metadata import services as metadata

    seed_acme_for_the_browser(committed_acme, "alice")
    services.register_key("Examples", (EXAMPLES / "test-publisher.pub").read_text())
    services.install(FX_PACKAGE.read_bytes())
    services.enable(committed_acme, "fx-tools")
    with tenant_context(committed_acme):
        metadata.save_and_publish("form", "travel_budget", TRAVEL_BUDGET)
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))

    log_in(page, live_acme, "alice")
    page.goto(f"{live_acme}/forms/travel_budget/")
    approval = page.locator('.lc-field[data-field="approval"]')
    page.locator("#id_amount").fill("100")
    page.locator("#id_currency").select_option("EUR")
    expect(page.locator("#id_in_usd")).to_have_value(re.compile(r"^108(\.0+)?$"))
    expect(approval).to_be_hidden()
    page.locator("#id_amount").fill("1000")
    expect(page.locator("#id_in_usd")).to_have_value(re.compile(r"^1080(\.0+)?$"))
    expect(approval).to_be_visible()
    page.screenshot(path=output_dir / "fx-condition.png", full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=output_dir / "fx-condition-phone.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.locator("#id_currency").select_option("JPY")
    expect(approval).to_be_hidden()  # 1000 yen are under 1000 dollars.
    assert problems == []

    # Disabled: on the next request the page has neither fx.js nor fx's conditions.
    services.disable(get_tenant_model().objects.get(schema_name="acme"), "fx-tools")
    page.reload()
    assert page.evaluate("typeof LowcodeExpressions.functions.fx") == "undefined"
    assert page.locator('script[src*="/plugins/static/"]').count() == 0


def _sign_in(page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/admin/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_plugins_in_the_platform_and_tenant_admins(live_server, live_acme, committed_acme, page, output_dir, tmp_path):
    import uuid

    from django.contrib.auth import get_user_model

    from lowcode.tenancy.models import Tenant

    from .conftest import members_of, zip_of

    services.register_key("Examples", (EXAMPLES / "test-publisher.pub").read_text())
    password = "correct-horse-battery"
    staff = f"staff-{uuid.uuid4().hex[:8]}"
    with tenant_context(Tenant.objects.get(schema_name="public")):
        get_user_model().objects.create_superuser(staff, f"{staff}@example.com", password)
    with tenant_context(committed_acme):
        get_user_model().objects.create_superuser("boss", "boss@example.com", password)

    # Platform staff: a tampered package is refused with its reason, the signed one installs.
    platform = f"http://localhost:{live_server.thread.port}"
    _sign_in(page, platform, staff, password)
    tampered = members_of(FX_PACKAGE.read_bytes())
    tampered["fx_tools/functions.py"] += b"\n"
    (tmp_path / "tampered.zip").write_bytes(zip_of(tampered))
    page.goto(f"{platform}/admin/plugins/plugin/add/")
    page.get_by_label("Signed package (.zip)").set_input_files(str(tmp_path / "tampered.zip"))
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".errorlist")).to_contain_text("fx_tools/functions.py was changed after signing")
    page.screenshot(path=output_dir / "platform-install-refused.png", full_page=True)
    page.get_by_label("Signed package (.zip)").set_input_files(str(FX_PACKAGE))
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#result_list")).to_contain_text("fx-tools")
    page.screenshot(path=output_dir / "platform-plugins.png", full_page=True)

    # acme's administrator enables it for acme.
    _sign_in(page, live_acme, "boss", password)
    page.goto(f"{live_acme}/admin/plugins/plugin/")
    page.locator('input[name="_selected_action"]').first.check()
    page.locator('select[name="action"]').select_option("enable")
    page.locator('.actions button[name="index"]').click()
    expect(page.locator(".messagelist")).to_contain_text("is enabled")
    page.screenshot(path=output_dir / "tenant-plugins.png", full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=output_dir / "tenant-plugins-phone.png", full_page=True)
    assert services.tenant_plugins(committed_acme)[0][1] is True
