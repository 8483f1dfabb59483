"""The workflow designer in a real browser (WF-7): bea adds a workflow, drops a user task and a
gateway on its flow, adds an end and connects the gateway to it with the connect tool, binds the
workflow to `expense`, sets the task's assignee in the panel, sees the gateway marked for having no
default path, fixes it (a default and a condition, checked live) and publishes. The published
workflow exported as BPMN imports as the same body; BPMN files open in the designer (a Camunda
Modeler file with its layout and the ignored parts listed by line; one with unsupported elements
refused by id, type and line). Screenshots at 1280x800 and 390x844."""

from pathlib import Path

import pytest
from django_tenants.utils import tenant_context
from playwright.sync_api import Page, expect

from metadata import services as metadata
from tests.scenario import log_in, seed_acme_for_the_browser
from workflows import bpmn

pytestmark = pytest.mark.browser

BASE = "/admin/workflows/workflowdefinition"
SAMPLES = Path(__file__).parent / "bpmn_samples"

#: Screen position of a diagram point, from the start event's drawn box (diagram x 180, y 160, 36 wide).
SCREEN = """([x, y]) => {
    const box = document.querySelector('.djs-element[data-element-id="start"] .djs-visual').getBoundingClientRect();
    const scale = box.width / 36;
    return [box.left + (x - 180) * scale, box.top + (y - 160) * scale];
}"""
#: The ids of the diagram's elements of a BPMN type.
OF_TYPE = """(type) => [...document.querySelectorAll('.djs-element[data-element-id]')]
    .map((node) => node.dataset.elementId).filter((id) => id.startsWith(type))"""

#: The diagram's connections with their drawn boxes.
CONNECTIONS = """() => [...document.querySelectorAll('.djs-element.djs-connection')].map((node) => {
    const box = node.querySelector('.djs-visual').getBoundingClientRect();
    return {id: node.dataset.elementId, x: box.x, y: box.y, width: box.width, height: box.height};
})"""

OFF_SCREEN = """() => [...document.querySelectorAll("body *")].filter((node) => {
    const box = node.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && getComputedStyle(node).visibility !== "hidden"
        && !node.closest(".wd-canvas") && (box.right > window.innerWidth + 0.5 || box.left < -0.5);
}).map((node) => `${node.tagName.toLowerCase()}.${node.className} ${Math.round(node.getBoundingClientRect().right)}`)"""


@pytest.fixture
def bea(committed_acme):
    return seed_acme_for_the_browser(committed_acme, "bea")["bea"]


def at(page: Page, x: float, y: float) -> tuple[float, float]:
    return tuple(page.evaluate(SCREEN, [x, y]))


def create(page: Page, action: str, x: float, y: float) -> None:
    """Take `action` from the palette and drop it at diagram point (x, y), as a hand does."""
    page.locator(f'.djs-palette [data-action="{action}"]').click()
    screen_x, screen_y = at(page, x, y)
    page.mouse.move(screen_x - 20, screen_y - 20)
    page.mouse.move(screen_x, screen_y, steps=6)
    page.mouse.click(screen_x, screen_y)


def select(page: Page, element_id: str) -> None:
    """Click the element; a click may only close the label editor a new element opened, and under
    load the panel follows the selection a moment later, so click again until it shows the element."""
    kind = page.locator(".wd-kind")
    for _attempt in range(4):
        page.locator(f'.djs-element[data-element-id="{element_id}"] .djs-hit').first.click(force=True)
        try:
            expect(kind).to_contain_text(element_id, timeout=1500)
            return
        except AssertionError:
            page.keyboard.press("Escape")
    expect(kind).to_contain_text(element_id)


def test_bea_draws_a_workflow_fixes_the_gateway_and_publishes(live_acme, committed_acme, bea, page, output_dir):
    problems = []
    page.on("console", lambda message: message.type == "error" and "status of 400" not in message.text
            and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))

    def shot(name: str) -> None:
        page.screenshot(path=output_dir / f"{len(list(output_dir.glob('*.png'))):02d}-{name}.png")

    log_in(page, live_acme, "bea")
    page.goto(f"{live_acme}{BASE}/add/")
    page.get_by_label("Name").fill("Claim check")
    page.get_by_label("Key").fill("claim_check")
    page.get_by_role("button", name="Create and design").click()
    expect(page.locator('[data-element-id="start"]')).to_be_visible()
    expect(page.locator(".wd-kind")).to_contain_text("Workflow")

    # Bind it to expense (the process's panel: nothing selected).
    page.locator(".wd-panel").get_by_label("Entity").select_option("expense")

    # A user task dropped on the flow joins it; a gateway dropped on the next flow too.
    create(page, "create.user-task", 330, 178)
    expect(page.locator('.djs-element[data-element-id^="Activity_"]')).to_have_count(1)
    task = page.evaluate(OF_TYPE, "Activity_")[0]
    assert len(page.evaluate(CONNECTIONS)) == 2  # start -> task -> end: the task joined the flow.
    create(page, "create.exclusive-gateway", 530, 178)
    expect(page.locator('.djs-element[data-element-id^="Gateway_"]')).to_have_count(1)
    gateway = page.evaluate(OF_TYPE, "Gateway_")[0]
    # A second end below the gateway, connected with the connect tool from the gateway's pad.
    create(page, "create.end-event", 530, 330)
    second_end = page.evaluate(OF_TYPE, "Event_")[0]
    select(page, gateway)
    page.locator('.djs-context-pad [data-action="connect"]').click()
    page.mouse.move(*at(page, 540, 300), steps=4)
    page.mouse.click(*at(page, 548, 348))
    expect(page.locator(".djs-connection")).to_have_count(4)

    # The user task's assignee, in the panel.
    select(page, task)
    page.locator(".wd-panel").get_by_label("Label").fill("Review the claim")
    page.locator(".wd-panel").get_by_label("Assignee").select_option("user")
    page.locator(".wd-panel").get_by_label("A user").fill("mia")

    # The gateway has two paths and no default: marked on the diagram and listed.
    badge = page.locator(f'.djs-overlay-container [data-container-id="{gateway}"] .wd-badge')
    expect(badge).to_be_visible()
    expect(badge).to_have_attribute("title", "A gateway with several paths needs a default path.")
    expect(page.locator(".wd-errors")).to_contain_text("A gateway with several paths needs a default path.")
    shot("gateway-without-default")

    # Fix it: the path on to Done (right of the gateway) is the default, the one down gets a condition.
    boxes = page.evaluate(CONNECTIONS)
    gateway_right = page.locator(f'.djs-element[data-element-id="{gateway}"]').bounding_box()["x"] + 40
    default_flow = next(box["id"] for box in boxes if box["height"] < 12 and box["x"] >= gateway_right - 20)
    other = next(box["id"] for box in boxes if box["height"] > 30)
    select(page, default_flow)
    page.locator(".wd-panel .wd-default").check()
    select(page, other)
    condition = page.locator(".wd-panel .wd-expression")
    condition.fill("amount >")
    expect(page.locator(".wd-panel .wd-verdict")).to_have_class("wd-verdict is-invalid")
    condition.fill("amount > 1000")
    expect(page.locator(".wd-panel .wd-verdict")).to_have_class("wd-verdict is-valid")
    expect(badge).to_have_count(0)
    select(page, second_end)
    page.locator(".wd-panel").get_by_label("Outcome").select_option("rejected")
    expect(page.locator(".wd-errors")).to_be_hidden()
    shot("fixed")

    page.get_by_role("button", name="Publish").click()
    expect(page.locator(".wd-status")).to_have_text("Published version 1.")
    expect(page.locator("#wd-state")).to_have_text("Live")
    shot("published")
    assert problems == []

    with tenant_context(committed_acme):
        body = metadata.get_published("workflow", "claim_check").body
    nodes = {node["id"]: node for node in body["nodes"]}
    assert body["entity"] == "expense"
    assert nodes[task] == {"id": task, "type": "user_task", "label": "Review the claim", "assign": {"user": "mia"}}
    assert nodes[gateway]["default"] == default_flow
    assert nodes[second_end]["outcome"] == "rejected"
    assert next(flow for flow in body["flows"] if flow["id"] == other)["condition"] == "amount > 1000"
    assert set(body["diagram"]["nodes"]) == set(nodes)
    # The published workflow, downloaded as BPMN, imports as the same body.
    download = page.evaluate("(url) => fetch(url).then((response) => response.text())",
                             f"{BASE}/design/claim_check/export/")
    assert bpmn.import_xml(download) == (body, [], [])

    # A file with elements outside the subset is refused by id, type and line; the diagram stays.
    page.locator(".wd-import-file").set_input_files(str(SAMPLES / "camunda8_zeebe_unsupported.bpmn"))
    expect(page.locator(".wd-errors")).to_contain_text("scriptTask “compute_total” (line 8) is not supported.")
    expect(page.locator(".wd-status")).to_have_text("The diagram cannot be read; see the list.")
    expect(page.locator(f'[data-element-id="{gateway}"]')).to_be_visible()
    # A Camunda Modeler file opens with its layout; what is ignored is listed with its line.
    page.locator(".wd-import-file").set_input_files(str(SAMPLES / "camunda_modeler_expense.bpmn"))
    expect(page.locator('.djs-element[data-element-id="payout"]')).to_be_visible()
    expect(page.locator(".wd-status")).to_have_text("The file is open in the designer; save to keep it.")
    page.locator(".wd-warnings summary").click()
    expect(page.locator(".wd-warnings")).to_contain_text("userTask “manager” (line 8): attributes of Camunda are ignored.")
    # camunda:assignee names mia, who exists here: she does the task.
    expect(page.locator(".wd-warnings")).to_contain_text("Camunda's assignee “mia” is the user who does the task.")
    shot("camunda-file")
    assert problems == []

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.locator(f'[data-element-id="{gateway}"]')).to_be_visible()
    assert page.evaluate(OFF_SCREEN) == []
    shot("phone")
