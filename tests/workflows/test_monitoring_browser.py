"""Workflow monitoring in a real browser (WF-8): tina, a tenant admin, opens the instance list,
filters it to the Expense approvals waiting for finance, opens one and sees the diagram with the
finance task highlighted as active, the timeline and the variables; she cancels it (confirmed) and
sees it cancelled and audited; the statistics page draws its charts. Screenshots at 1280x800 and
390x844."""

from decimal import Decimal

import pytest
from django_tenants.utils import tenant_context
from playwright.sync_api import expect

from tests.scenario import PASSWORD, log_in, seed_acme_for_the_browser

pytestmark = pytest.mark.browser

BASE = "/admin/viewflow/process"

#: Elements (outside the diagram and tables that scroll) reaching past the window's right edge.
OFF_SCREEN = """() => [...document.querySelectorAll("body *")].filter((node) => {
    const box = node.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && getComputedStyle(node).visibility !== "hidden"
        && !node.closest(".wf-scroll, .wf-diagram-canvas") && box.right > window.innerWidth + 0.5;
}).map((node) => `${node.tagName.toLowerCase()}.${node.className} ${Math.round(node.getBoundingClientRect().right)}`)"""


@pytest.fixture
def running(committed_acme):
    """acme seeded, tina (tenant admin) able to log in, and three Expense approvals: approved,
    waiting for mia, and waiting for finance (mia approved 1500)."""
    import datetime

    from django.contrib.auth import get_user_model
    from django.utils import timezone
    from viewflow.workflow.models import Task

    from dynamic_models import records, runtime
    from rbac import services as rbac
    from rbac.models import Role
    from tests.workflows.test_engine import open_task
    from workflows import services

    people = seed_acme_for_the_browser(committed_acme, "alice", "mia")
    with tenant_context(committed_acme):
        tina = get_user_model().objects.create_user("tina", "tina@acme.example", PASSWORD, is_staff=True)
        rbac.assign_role(tina, Role.objects.get(key=Role.TENANT_ADMIN))
        alice, mia = people["alice"], people["mia"]

        def claim(amount: str, title: str):
            record = runtime.get_model("expense")(
                title=title, amount=Decimal(amount), currency="CNY", category="travel", submitted_by=alice,
                spent_on=timezone.localdate() - datetime.timedelta(days=2), notes="For the fair.")
            return services.start("expense_approval", records.save(record, user=alice), user=alice)

        done = claim("300.00", "Train to Suzhou")
        services.complete(open_task(done, "manager"), user=mia, outcome="approved", comment="Fine.")
        waiting = open_task(claim("120.00", "Lunch with a client"), "manager")
        finance = claim("1500.00", "Stand at the fair")
        services.complete(open_task(finance, "manager"), user=mia, outcome="approved", comment="Worth it.")
        # Known figures for the charts: mia took 20 and 30 hours; the lunch is past its deadline.
        now = timezone.now()
        for hours, process in ((20, done), (30, finance)):
            Task.objects.filter(process=process, flow_task__endswith=".n_manager").update(
                created=now - datetime.timedelta(hours=hours + 1), finished=now - datetime.timedelta(hours=1))
        waiting.data["deadline"]["expire_at"] = (now - datetime.timedelta(hours=1)).isoformat()
        waiting.save(update_fields=["data"])
    return finance


def test_tina_filters_opens_an_instance_and_cancels_it(live_acme, running, page, output_dir):
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))

    def shot(name: str) -> None:
        page.screenshot(path=output_dir / f"{len(list(output_dir.glob('*.png'))):02d}-{name}.png", full_page=True)

    log_in(page, live_acme, "tina")
    page.goto(f"{live_acme}/admin/")
    page.get_by_role("link", name="Process list").first.click()
    expect(page.locator(".wf-instances tbody tr")).to_have_count(3)
    shot("list")

    page.get_by_label("Workflow").select_option("expense_approval")
    page.get_by_label("Active task").select_option("finance")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator(".wf-instances tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Stand at the fair")
    expect(rows.first).to_contain_text("Finance approval")
    shot("filtered")

    rows.first.get_by_role("link", name="Expense approval").click()
    expect(page.locator(".wf-diagram[data-ready=true]")).to_be_visible()
    assert "wf-active" in page.locator('.djs-element[data-element-id="finance"]').get_attribute("class")
    assert "wf-done" in page.locator('.djs-element[data-element-id="manager"]').get_attribute("class")
    assert "wf-pending" in page.locator('.djs-element[data-element-id="mark_approved"]').get_attribute("class")
    expect(page.locator(".wf-timeline")).to_contain_text("Finance approval")
    expect(page.locator(".wf-timeline")).to_contain_text("Worth it.")
    expect(page.locator(".wf-variables")).to_contain_text("outcome")
    expect(page.locator(".wf-events")).to_contain_text("Workflow started")
    shot("instance")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.locator(".wf-diagram[data-ready=true]")).to_be_visible()
    assert page.evaluate(OFF_SCREEN) == []
    shot("instance-phone")
    page.set_viewport_size({"width": 1280, "height": 800})

    page.get_by_role("link", name="Cancel instance").click()
    expect(page.locator(".wf-confirm")).to_contain_text("Cancel this instance?")
    shot("confirm")
    page.get_by_role("button", name="Yes, I’m sure").click()
    expect(page.locator(".messagelist")).to_contain_text("The instance was cancelled.")
    expect(page.locator("#wf-process-status")).to_have_text("Canceled")
    cancelled = page.locator(".wf-events tr", has_text="Workflow cancelled")
    expect(cancelled).to_contain_text("tina")
    expect(page.get_by_role("link", name="Cancel instance")).to_have_count(0)
    shot("cancelled")

    page.get_by_label("Breadcrumbs").get_by_role("link", name="Process list").click()
    page.get_by_role("link", name="Statistics").click()
    expect(page.locator("#wf-started")).to_have_text("3")
    expect(page.locator("canvas[data-drawn=true]")).to_have_count(3)
    manager = page.locator(".wf-task-figures tr", has_text="Manager approval")
    expect(manager).to_contain_text("25.00")  # the average of 20 and 30 hours
    expect(manager).to_contain_text("29.50")  # their 95th percentile
    shot("statistics")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.locator("canvas[data-drawn=true]")).to_have_count(3)
    assert page.evaluate(OFF_SCREEN) == []
    shot("statistics-phone")
    page.goto(f"{live_acme}{BASE}/")
    assert page.evaluate(OFF_SCREEN) == []
    shot("list-phone")
    assert problems == []
