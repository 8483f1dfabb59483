"""The form designer in a real browser (FM-5, issue 13's acceptance): bea builds the scenario's
"Expense claim" with the mouse and the keyboard (bound to `expense`, two steps, `notes` required
when amount > 1000, `receipt` required when amount > 200, `iban` shown only for travel), is told
what is wrong when she breaks a condition, saves a draft and publishes; the published body holds
the conditions. The page fits 1,280 px and 390 px, and its load time is printed."""

import re

import pytest
from django_tenants.utils import tenant_context
from playwright.sync_api import Page, expect

from metadata import services as metadata
from tests.scenario import log_in, seed_acme_for_the_browser

pytestmark = pytest.mark.browser

BASE = "/admin/forms_engine/formdefinition"

#: The elements of the page that reach beyond the viewport's width (none may).
OFF_SCREEN = """() => [...document.querySelectorAll("body *")].filter((node) => {
    const box = node.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && getComputedStyle(node).visibility !== "hidden"
        && (box.right > window.innerWidth + 0.5 || box.left < -0.5);
}).map((node) => `${node.tagName.toLowerCase()}.${node.className} ${Math.round(node.getBoundingClientRect().right)}`)"""

LOAD_TIMES = """() => { const n = performance.getEntriesByType("navigation")[0];
    return {server: n.responseStart - n.requestStart, load: n.loadEventEnd - n.startTime}; }"""


@pytest.fixture
def bea(committed_acme):
    return seed_acme_for_the_browser(committed_acme, "bea")["bea"]


def panel(page: Page):
    return page.locator(".fd-panel .designer-panel")


def field(page: Page, key: str):
    return page.locator(f'.fd-canvas .fd-field[data-field="{key}"]')


def step_list(page: Page, index: int):
    return page.locator(".fd-canvas > .fd-step").nth(index).locator(":scope > .fd-items")


def drag(page: Page, source, target) -> None:
    """Drag with the mouse as a hand does: down the palette's column, then across onto the lower
    part of the target (SortableJS puts a newcomer after an item when the pointer is in the item's
    lower band), in small moves; items that make room glide a moment."""
    target.evaluate("(node) => node.scrollIntoView({block: 'center'})")  # Away from the edges that scroll.
    box = source.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    goal = target.bounding_box()
    page.mouse.move(x, goal["y"] + goal["height"] * 0.85, steps=8)
    for nudge, steps in ((0, 12), (3, 4)):  # Sortable looks again only where the pointer moved.
        goal = target.bounding_box()
        page.mouse.move(goal["x"] + goal["width"] / 2 + nudge, goal["y"] + goal["height"] * 0.85, steps=steps)
        page.wait_for_timeout(200)
    page.mouse.up()


def add_from_palette(page: Page, key: str) -> None:
    """Select the bound entity's field in the palette: it goes after the selected item."""
    page.locator(f'.fd-palette-item[data-entity-field="{key}"] button').click()
    expect(field(page, key)).to_be_visible()


def condition(page: Page, key: str, name: str, source: str) -> None:
    field(page, key).locator(".fd-select").click()
    box = panel(page).get_by_label(name, exact=True)
    box.fill(source)
    expect(box.locator("xpath=..").locator(".designer-status")).to_have_class("designer-status is-valid")


def test_bea_builds_the_expense_claim_and_publishes_it(live_acme, committed_acme, bea, page, output_dir):
    problems = []
    # The refused save answers 400 on purpose; the browser logs that, and nothing else may fail.
    page.on("console", lambda message: message.type == "error" and "status of 400" not in message.text
            and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    for old in output_dir.glob("*.png"):
        old.unlink()

    def shot(name: str) -> None:
        page.screenshot(path=output_dir / f"{len(list(output_dir.glob('*.png'))):02d}-{name}.png", full_page=True)

    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, live_acme, "bea")
    page.goto(f"{live_acme}{BASE}/add/")
    shot("add-form")
    page.get_by_label("Key").fill("claim")
    page.get_by_role("button", name="Blank form").click()
    expect(page.locator("#form-designer[data-ready]")).to_be_attached()
    times = page.evaluate(LOAD_TIMES)
    print(f"\nDesigner page load: server {times['server']:.0f} ms, browser load event {times['load']:.0f} ms")
    # The 1 s target is held by benchmarks/forms_engine.py; this machine is shared while tests run.
    assert times["load"] < 3000

    # The form's settings: its label, bound to expense (the palette then lists expense's fields).
    panel(page).get_by_label("Label").fill("Expense claim")
    panel(page).get_by_label("Bound to entity").select_option("expense")
    expect(page.locator('.fd-palette-item[data-entity-field="title"]')).to_be_visible()

    # Step 1, "Details": title dragged onto it with the mouse, the rest added from the palette.
    drag(page, page.locator('.fd-palette-item[data-entity-field="title"]'), step_list(page, 0))
    expect(field(page, "title")).to_be_visible()
    for key in ("amount", "currency", "spent_on", "category", "iban", "project"):
        add_from_palette(page, key)
    # iban came before project: Alt+Down on it moves it after project (no mouse).
    field(page, "iban").locator(".fd-select").focus()
    page.keyboard.press("Alt+ArrowDown")
    expect(step_list(page, 0).locator(":scope > .fd-field")).to_have_count(7)
    order = step_list(page, 0).locator(":scope > .fd-field").evaluate_all("(nodes) => nodes.map((n) => n.dataset.field)")
    assert order == ["title", "amount", "currency", "spent_on", "category", "project", "iban"]
    expect(page.locator(".fd-field[data-field=iban] .fd-select")).to_be_focused()
    # The amount takes a third of the row.
    field(page, "amount").locator(".fd-select").click()
    panel(page).get_by_label("Width (of 12 columns)").select_option("4")
    page.locator(".fd-canvas > .fd-step").first.locator(".fd-step-head .fd-select").click()
    panel(page).get_by_label("Label").fill("Details")
    panel(page).get_by_label("Key").fill("details")

    # Step 2, "Receipt and notes": added, then receipt and notes put into it.
    page.get_by_role("button", name="Add a step").click()
    panel(page).get_by_label("Label").fill("Receipt and notes")
    panel(page).get_by_label("Key").fill("evidence")
    add_from_palette(page, "receipt")  # Into the selected step.
    drag(page, page.locator('.fd-palette-item[data-entity-field="notes"]'), step_list(page, 1).locator(".fd-field").first)
    expect(step_list(page, 1).locator(".fd-field")).to_have_count(2)

    # Conditions, each checked by the server as it is typed.
    condition(page, "notes", "Required when", "amount > 1000")
    condition(page, "receipt", "Required when", "amount > 200")
    condition(page, "iban", "Shown when", "category == 'travel'")
    # A group after project, "Travel", and iban moved into it with the keyboard ("Move to").
    field(page, "project").locator(".fd-select").click()
    page.locator('.fd-palette-item[data-widget="__group"] button').click()
    panel(page).get_by_label("Label").fill("Travel")
    panel(page).get_by_label("Key").fill("travel")
    field(page, "iban").locator(".fd-select").click()
    panel(page).get_by_label("Move to").select_option(label="— Travel")
    expect(page.locator(".fd-canvas .fd-group .fd-field[data-field=iban]")).to_be_visible()
    shot("designed-1280")

    # A broken condition: the check says so at once, and saving names it on the field.
    field(page, "iban").locator(".fd-select").click()
    shown = panel(page).get_by_label("Shown when", exact=True)
    shown.fill("categry == 'travel'")
    expect(shown.locator("xpath=..").locator(".designer-status")).to_contain_text("categry")
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator(".fd-errors")).to_be_visible()
    expect(page.locator(".fd-errors-list")).to_contain_text("categry")
    expect(field(page, "iban")).to_have_class(re.compile(r"\bhas-errors\b"))
    shot("error-named")
    shown.fill("category == 'travel'")

    page.get_by_role("button", name="Save draft").click()
    expect(page.locator(".fd-status")).to_contain_text("Draft saved")
    expect(page.locator(".fd-errors")).to_be_hidden()

    # The preview is the form as its users see it; the JSON view shows the body.
    page.get_by_role("tab", name="Preview").click()
    expect(page.locator('.fd-preview [data-field="notes"]')).to_be_attached()
    shot("preview")
    page.get_by_role("tab", name="JSON").click()
    json_view = page.locator(".fd-json")
    expect(json_view).to_have_value(re.compile('"require_when": "amount > 1000"'))
    json_view.fill("{")
    page.get_by_role("button", name="Apply JSON").click()
    expect(page.locator(".fd-json-status")).to_contain_text("This is not valid JSON")
    page.get_by_role("tab", name="Design").click()

    page.get_by_role("button", name="Publish").click()
    expect(page.locator(".fd-status")).to_contain_text("Published version")
    expect(page.locator("#fd-state")).to_have_text("Live")
    assert problems == []

    with tenant_context(committed_acme):
        body = metadata.get_published("form", "claim").body
    assert body["entity"] == "expense" and body["label"] == "Expense claim"
    steps = body["layout"]["steps"]
    assert [step["key"] for step in steps] == ["details", "evidence"]
    assert [item.get("field") or item["group"] for item in steps[0]["items"]] == [
        "title", "amount", "currency", "spent_on", "category", "project", "travel"]
    assert steps[0]["items"][6]["label"] == "Travel" and steps[0]["items"][6]["items"] == [{"field": "iban", "width": 12}]
    assert {item["field"] for item in steps[1]["items"]} == {"receipt", "notes"}
    assert steps[0]["items"][1]["width"] == 4
    assert body["fields"]["notes"]["require_when"] == "amount > 1000"
    assert body["fields"]["receipt"]["require_when"] == "amount > 200"
    assert body["fields"]["iban"]["show_when"] == "category == 'travel'"

    # At 390 px: one column, the panel below the canvas, nothing off-screen.
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.locator("#form-designer[data-ready]")).to_be_attached()
    field(page, "notes").locator(".fd-select").click()
    assert page.locator(".fd-panel-pane").bounding_box()["y"] > page.locator(".fd-canvas").bounding_box()["y"]
    assert page.evaluate(OFF_SCREEN) == []
    shot("designed-390")
    page.goto(f"{live_acme}{BASE}/add/")
    assert page.evaluate(OFF_SCREEN) == []
    shot("add-390")
    page.goto(f"{live_acme}{BASE}/")  # The list's table scrolls in its own box, as every admin list.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot("list-390")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{live_acme}{BASE}/design/claim/")
    page.get_by_role("link", name="Versions").click()
    expect(page.get_by_role("cell", name="Published")).to_be_visible()
    shot("versions")
    assert problems == []


def test_bea_starts_from_a_template_and_adds_a_choice_field(live_acme, committed_acme, bea, page, output_dir):
    """A standalone form from the contact template: a select added from the palette (its key
    follows its label), its choices typed (mirrored into the schema), a rule and required set."""
    problems = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    log_in(page, live_acme, "bea")
    page.goto(f"{live_acme}{BASE}/add/")
    page.get_by_role("button", name="Contact").click()
    expect(page.locator("#form-designer[data-ready]")).to_be_attached()
    assert page.url.endswith("/design/contact/")
    field(page, "email").locator(".fd-select").click()
    page.locator('.fd-palette-item[data-widget="select"] button').click()  # After the selected field.
    expect(panel(page).get_by_label("Label")).to_be_focused()
    page.keyboard.press("Control+A")
    page.keyboard.type("Preferred reply")
    expect(panel(page).get_by_label("Key")).to_have_value("preferred_reply")
    panel(page).locator("[data-option=choices]").fill("email: By email\nphone: By phone")
    panel(page).get_by_label("Required", exact=True).check()
    field(page, "subject").locator(".fd-select").click()
    panel(page).locator("[data-rule=maxLength]").fill("80")
    page.get_by_role("tab", name="Preview").click()
    expect(page.locator('.fd-preview [data-field="preferred_reply"] option', has_text="By phone")).to_be_attached()
    page.get_by_role("tab", name="Design").click()
    page.get_by_role("button", name="Publish").click()
    expect(page.locator(".fd-status")).to_contain_text("Published version")
    page.screenshot(path=output_dir / "published-contact.png", full_page=True)
    with tenant_context(committed_acme):
        body = metadata.get_published("form", "contact").body
    items = [item["field"] for item in body["layout"]["steps"][0]["items"]]
    assert items[items.index("email") + 1] == "preferred_reply"
    assert body["fields"]["preferred_reply"]["options"]["choices"] == [
        {"value": "email", "label": "By email"}, {"value": "phone", "label": "By phone"}]
    assert body["schema"]["properties"]["preferred_reply"] == {"type": "string", "enum": ["email", "phone"]}
    assert "preferred_reply" in body["schema"]["required"]
    assert body["schema"]["properties"]["subject"]["maxLength"] == 80
    assert problems == []
