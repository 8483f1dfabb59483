"""The entity designer in a real browser (issue 12): bea, the scenario's builder, designs `vendor`
with widgets only (no JSON typed), is told what is wrong on save, fixes it and publishes; the
page fits 1,280 px with nothing off-screen and stays usable at 390 px."""

import pytest
from django_tenants.utils import tenant_context
from playwright.sync_api import Page, expect

from dynamic_models.models import Entity
from lowcode.tenancy.models import Tenant
from tests.scenario import PASSWORD, seed_acme_for_the_browser

pytestmark = pytest.mark.browser

CHOICES = [("Active", "#2e7d32"), ("On hold", None), ("Blocked", "#c62828")]

#: The elements of the page that reach beyond the viewport's width (none may).
OFF_SCREEN = """() => [...document.querySelectorAll("body *")].filter((node) => {
    const box = node.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && getComputedStyle(node).visibility !== "hidden"
        && (box.right > window.innerWidth + 0.5 || box.left < -0.5);
}).map((node) => `${node.tagName.toLowerCase()}.${node.className} ${Math.round(node.getBoundingClientRect().right)}`)"""


@pytest.fixture
def bea(committed_acme):
    """acme seeded with the scenario, bea (its builder) with a known password."""
    return seed_acme_for_the_browser(committed_acme, "bea")["bea"]


def panel(page: Page):
    return page.locator(".designer-panel.is-selected")


def option(page: Page, name: str):
    return panel(page).locator(f"[data-option={name}]")


def add_field(page: Page, label: str, type_: str) -> None:
    page.get_by_role("button", name="Add field").click()
    panel(page).get_by_label("Label:").fill(label)
    panel(page).get_by_label("Type:").select_option(type_)


def select_field(page: Page, label: str) -> None:
    page.locator(".designer-list .designer-select").filter(has_text=label).click()


def assert_fits(page: Page) -> None:
    assert page.evaluate(OFF_SCREEN) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]


def test_builder_designs_vendor_with_widgets_only(live_acme, bea, page, output_dir):
    problems = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    for old in output_dir.glob("*.png"):
        old.unlink()

    def shot(name: str) -> None:
        page.screenshot(path=output_dir / f"{len(list(output_dir.glob('*.png'))):02d}-{name}.png", full_page=True)

    base = live_acme
    page.goto(f"{base}/admin/login/")
    page.get_by_label("Username").fill("bea")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{base}/admin/dynamic_models/entity/add/")
    page.get_by_label("Key:").fill("vendor")
    page.get_by_label("Label:", exact=True).first.fill("Vendor")
    page.get_by_label("Plural label:").fill("Vendors")
    page.get_by_label("App:").fill("expenses")
    page.get_by_label("Display field:").fill("name")

    add_field(page, "Name", "text")
    expect(panel(page).get_by_label("Key:")).to_have_value("name")  # The key follows the label.
    panel(page).get_by_label("Required").check()
    panel(page).get_by_label("Searchable").check()
    option(page, "max_length").fill("120")
    option(page, "regex").fill(r"^[A-Z]")
    panel(page).get_by_placeholder("Try a value").fill("acme")
    expect(panel(page).locator(".designer-status")).to_have_text("Does not match.")
    panel(page).get_by_placeholder("Try a value").fill("Acme Ltd")
    expect(panel(page).locator(".designer-status")).to_have_text("Matches.")

    add_field(page, "Rating", "integer")
    option(page, "min").fill("1")
    option(page, "max").fill("5")
    panel(page).get_by_label("Default value").fill("3")

    add_field(page, "Credit limit", "decimal")
    option(page, "max_digits").fill("12")
    option(page, "decimal_places").fill("2")

    add_field(page, "Status", "choice")  # No choice yet: saving says so.
    panel(page).get_by_label("Filterable").check()

    add_field(page, "Since", "date")
    option(page, "not_in_future").check()
    panel(page).get_by_label("Default value").fill("2025-01-01")

    add_field(page, "Preferred", "boolean")
    expect(panel(page).get_by_label("Unique")).to_be_disabled()  # A boolean cannot be unique.
    panel(page).get_by_label("Checked").check()  # Default: true.

    add_field(page, "Email", "email")

    add_field(page, "Project", "relation")
    option(page, "target").select_option("project")
    option(page, "on_delete").select_option(label="Refuse the delete")
    option(page, "cardinality").select_option(label="Many to one")
    expect(panel(page).locator(".designer-default-section")).to_be_hidden()  # A relation takes no default.

    add_field(page, "Score", "formula")
    option(page, "expression").fill("rating * 2 + credt_limit")
    expect(panel(page).locator(".designer-status")).to_contain_text("credt_limit")
    option(page, "expression").fill("")
    panel(page).get_by_label("Insert a field…").select_option("rating")
    option(page, "expression").press("End")
    option(page, "expression").type(" * 2")
    expect(option(page, "expression")).to_have_value("rating * 2")
    expect(panel(page).locator(".designer-status")).to_have_text("Valid: gives a number.")

    add_field(page, "Scratch", "text")  # Added by mistake: removed before the save.
    panel(page).get_by_label("Remove this field").check()
    expect(page.locator(".designer-item.is-removed")).to_contain_text("scratch · Short text")

    # Email before Rating: drag it by its handle.
    email = page.locator(".designer-item").filter(has_text="Email").locator(".designer-handle")
    email.drag_to(page.locator(".designer-item").filter(has_text="Rating").locator(".designer-handle"))
    since = page.locator(".designer-select").filter(has_text="Since")
    since.press("Alt+ArrowUp")  # The keyboard moves a field too.
    expect(page.locator(".designer-item-label").nth(4)).to_have_text("Since")
    since.press("Alt+ArrowDown")
    order = ["Name", "Email", "Rating", "Credit limit", "Status", "Since", "Preferred", "Project", "Score", "Scratch"]
    expect(page.locator(".designer-item-label")).to_have_text(order)
    expect(page.locator("#designer-field-keys option")).to_have_count(9)  # For the display field; not the removed one.
    page.wait_for_timeout(300)  # The drop's animation.
    shot("vendor-designed")

    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".errornote")).to_be_visible()
    # The field with the error is marked and opened, the message says what to do.
    expect(page.locator(".designer-item.has-errors")).to_have_text("⠿ Status status · Choice")
    expect(panel(page)).to_contain_text("Field “Status”: add at least one choice.")
    expect(page.locator(".designer-item-label")).to_have_text(order)  # As posted, not as first added.
    expect(page.locator(".designer-item.is-removed")).to_have_count(1)  # Still to be removed.
    expect(page.locator(".designer-empty")).to_be_hidden()
    shot("vendor-error")
    with tenant_context(Tenant.objects.get(schema_name="acme")):
        assert not Entity.objects.filter(key="vendor").exists()

    for label, colour in CHOICES:
        panel(page).get_by_role("button", name="Add a choice").click()
        row = panel(page).locator(".designer-choices tbody tr").last
        row.get_by_placeholder("Label").fill(label)
        if colour:
            row.get_by_label("Colour", exact=True).fill(colour)
    panel(page).get_by_label("Default value").select_option("active")
    values = panel(page).locator(".designer-choices [data-choice=value]")
    expect(values.nth(0)).to_have_value("active")
    expect(values.nth(1)).to_have_value("on_hold")
    expect(values.nth(2)).to_have_value("blocked")
    page.set_viewport_size({"width": 1280, "height": 800})
    assert_fits(page)
    shot("status-choices-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    list_box = page.locator(".designer-list").bounding_box()
    panel_box = panel(page).bounding_box()
    assert panel_box["y"] >= list_box["y"] + list_box["height"]  # The panel below the list.
    assert panel_box["x"] >= 0 and panel_box["x"] + panel_box["width"] <= 390
    shot("status-choices-390")
    page.set_viewport_size({"width": 1280, "height": 800})

    page.get_by_role("button", name="Save and preview publishing").click()
    expect(page.locator("h1")).to_contain_text("Preview publishing vendor")
    expect(page.locator("ul.summary")).to_have_text("Create table dm_vendor with 9 fields.")
    page.get_by_role("button", name="Publish").click()
    expect(page.locator(".messagelist")).to_contain_text("Published vendor version 1 in")
    expect(page.locator("h1 .design-state")).to_have_text("Live")
    expect(page.get_by_role("link", name="Roll back")).to_have_count(0)  # No earlier version.
    assert_fits(page)
    shot("vendor-published-1280")

    # A change not yet published shows, and can be discarded after a confirmation.
    select_field(page, "Email")
    panel(page).get_by_label("Label:").fill("Contact email")
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator("h1 .design-state")).to_have_text("Unpublished changes")
    page.goto(f"{base}/admin/dynamic_models/entity/")
    expect(page.locator("#result_list tr").filter(has_text="vendor")).to_contain_text("Unpublished changes")
    page.locator("#result_list").get_by_role("link", name="vendor", exact=True).click()
    page.get_by_role("link", name="Discard changes").click()
    expect(page.locator("#content-main")).to_contain_text("Changed field email, label")
    page.get_by_role("button", name="Discard changes").click()
    expect(page.locator(".messagelist")).to_contain_text("are discarded")
    expect(page.locator("h1 .design-state")).to_have_text("Live")
    assert problems == []

    with tenant_context(Tenant.objects.get(schema_name="acme")):
        vendor = Entity.objects.get(key="vendor")
        fields = {field.key: field for field in vendor.fields.all()}
        assert [field.key for field in vendor.fields.order_by("position")] == [
            "name", "email", "rating", "credit_limit", "status", "since", "preferred", "project", "score"]
        assert fields["status"].options == {"choices": [
            {"value": "active", "label": "Active", "color": "#2e7d32"}, {"value": "on_hold", "label": "On hold"},
            {"value": "blocked", "label": "Blocked", "color": "#c62828"}]}
        assert fields["status"].default == "active" and fields["status"].filterable
        assert fields["name"].options == {"max_length": 120, "regex": "^[A-Z]"} and fields["name"].required
        assert fields["rating"].options == {"min": 1, "max": 5} and fields["rating"].default == 3
        assert fields["since"].default == "2025-01-01" and fields["since"].options == {"not_in_future": True}
        assert fields["preferred"].default is True
        assert fields["project"].options == {"target": "project", "on_delete": "protect", "cardinality": "many_to_one"}
        assert fields["score"].options == {"expression": "rating * 2"}
        assert fields["email"].label == "Email" and vendor.published_version == 1
