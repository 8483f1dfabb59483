"""The permission screens in a real browser (issue 12): a 403 naming what is missing and a 404 in the
tenant's look, the admin header's language switch, a role's grid of entity actions and a user's roles;
screenshots at 1280x800 and 390x844 in test-results/."""

import pytest
from django.contrib.auth import get_user_model
from django_tenants.utils import tenant_context
from playwright.sync_api import Page, expect

from rbac import services as rbac
from rbac.models import Role
from tests.scenario import PASSWORD, log_in, seed_acme_for_the_browser

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def scenario_people(committed_acme):
    seed_acme_for_the_browser(committed_acme, "alice", "frank")
    return committed_acme


def shoot(page: Page, output_dir, name: str) -> None:
    page.screenshot(path=output_dir / f"{name}.png", full_page=True)
    desktop = page.viewport_size
    page.set_viewport_size(PHONE)
    page.screenshot(path=output_dir / f"{name}-phone.png", full_page=True)
    page.set_viewport_size(desktop)


def no_horizontal_overflow(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_error_pages_and_language_switch(live_acme, scenario_people, page, output_dir):
    log_in(page, live_acme, "frank")
    page.goto(f"{live_acme}/admin/data/expense/add/")
    expect(page.locator("h1")).to_have_text("Access denied")
    expect(page.locator(".reason")).to_have_text("You need the permission 'Add Expenses' (data.expense.add).")
    expect(page.get_by_role("link", name="Admin home")).to_have_attribute("href", "/admin/")
    expect(page.locator(".brand")).to_have_text("Acme")
    shoot(page, output_dir, "403")
    page.goto(f"{live_acme}/no-such-page/")
    expect(page.locator("h1")).to_have_text("Page not found")
    shoot(page, output_dir, "404")

    page.goto(f"{live_acme}/admin/")
    page.locator("#user-tools").get_by_role("button", name="简体中文").click()
    expect(page.locator("#site-name")).to_have_text("Acme 管理")
    expect(page.locator("#user-tools").get_by_role("button", name="简体中文")).to_be_disabled()
    shoot(page, output_dir, "admin-zh-hans")
    assert no_horizontal_overflow(page)
    page.goto(f"{live_acme}/admin/data/expense/add/")
    expect(page.locator(".reason")).to_contain_text("data.expense.add")
    shoot(page, output_dir, "403-zh-hans")
    page.get_by_role("button", name="English").click()
    expect(page.locator("h1")).to_have_text("Access denied")


def test_role_and_user_pages(live_acme, scenario_people, page, output_dir):
    with tenant_context(scenario_people):
        olga = get_user_model().objects.create_user("olga", "olga@acme.example", PASSWORD, is_staff=True)
        rbac.assign_role(olga, Role.objects.get(key=Role.TENANT_ADMIN))
        member = Role.objects.get(key=Role.MEMBER)
        alice = get_user_model().objects.get(username="alice")
    log_in(page, live_acme, "olga")
    page.goto(f"{live_acme}/admin/rbac/role/{member.pk}/change/")
    grid = page.locator("table.entity-actions")
    expect(grid.get_by_label("Expense: View")).to_be_checked()
    expect(grid.get_by_label("Expense: Delete")).not_to_be_checked()
    expect(page.locator(".field-operations")).to_contain_text("Roles and permissions")
    expect(page.locator("#id_users_from")).not_to_contain_text("AnonymousUser")
    shoot(page, output_dir, "role")
    assert no_horizontal_overflow(page)
    page.goto(f"{live_acme}/admin/auth/user/{alice.pk}/change/")
    expect(page.locator(".field-roles")).to_contain_text("Member (directly)")
    shoot(page, output_dir, "user")
    page.locator("#user-tools").get_by_role("button", name="简体中文").click()
    expect(page.locator(".field-roles")).to_contain_text("(直接分配)")
    page.goto(f"{live_acme}/admin/rbac/role/{member.pk}/change/")
    expect(grid.get_by_label("费用: 查看")).to_be_checked()
    shoot(page, output_dir, "role-zh-hans")
