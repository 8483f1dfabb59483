"""The builder's acceptance test in a real browser (scenario.md "Data model", DM-3, DM-4).

bea designs `project` and `expense` in admin, previews and publishes them, adds records in
the generated admin pages, then evolves `expense` (add `vat_rate`, rename `notes`, change
`category` choices, roll back) on the running server, checking that no data is lost.
Every step goes through the UI; the ORM only creates the user and checks the end state.
"""

import datetime
import decimal
import json
import re

import pytest
from django.contrib.auth import get_user_model
from django_tenants.utils import tenant_context
from playwright.sync_api import Page, expect

from dynamic_models import runtime
from dynamic_models.models import Entity, SchemaMigration
from lowcode.tenancy.models import Tenant

pytestmark = pytest.mark.browser

PASSWORD = "correct-horse-battery"
NOTES = "Client dinner with Globex, receipt to follow."
CATEGORIES = ["travel", "meals", "equipment", "other"]

PROJECT = [
    {"key": "name", "type": "text", "options": {"max_length": 100}, "required": True, "unique": True,
     "searchable": True},
    {"key": "code", "type": "text", "options": {"max_length": 7, "regex": r"^[A-Z]{3}-\d{3}$"}},
    {"key": "budget", "type": "decimal", "options": {"max_digits": 12, "decimal_places": 2}},
    {"key": "active", "type": "boolean", "default": True, "required": True, "filterable": True},
]
EXPENSE = [
    {"key": "number", "type": "auto_number", "options": {"prefix": "EXP-", "digits": 4}},
    {"key": "title", "type": "text", "options": {"max_length": 120}, "required": True, "searchable": True},
    {"key": "amount", "type": "decimal", "required": True,
     "options": {"max_digits": 12, "decimal_places": 2, "min": 0, "exclusive_min": True}},
    {"key": "currency", "type": "choice", "default": "CNY", "required": True, "filterable": True,
     "options": {"choices": [{"value": "CNY"}, {"value": "USD"}, {"value": "EUR"}]}},
    {"key": "spent_on", "type": "date", "required": True, "options": {"not_in_future": True}},
    {"key": "category", "type": "choice", "filterable": True,
     "options": {"choices": [{"value": value} for value in CATEGORIES]}},
    {"key": "project", "type": "relation", "options": {"target": "project", "on_delete": "protect"}},
    {"key": "iban", "type": "text", "options": {"max_length": 34}},
    {"key": "notes", "type": "long_text", "show_in_list": False},
    {"key": "status", "type": "choice", "default": "draft", "required": True, "filterable": True,
     "options": {"choices": [{"value": v} for v in ("draft", "submitted", "approved", "rejected")]}},
    {"key": "submitted_by", "type": "user"},
]
FLAGS = ("required", "unique", "filterable", "searchable")


def label(key: str) -> str:
    return key.replace("_", " ").capitalize()


def log_in(page: Page, base: str) -> None:
    page.goto(f"{base}/admin/")
    page.get_by_label("Username").fill("bea")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#site-name")).to_have_text("Acme administration")


def field_row(page: Page, index: int, spec: dict) -> None:
    """Type one field into the designer's panel of field `index` (options and default as JSON in
    its advanced view), adding the field if needed."""
    prefix = f"#id_fields-{index}-"
    if page.locator(f"{prefix}key").count() == 0:
        page.get_by_role("button", name="Add field").click()
    else:
        page.locator(f".designer-item[data-index='{index}'] .designer-select").click()
    page.fill(f"{prefix}label", label(spec["key"]))
    page.fill(f"{prefix}key", spec["key"])
    page.select_option(f"{prefix}type", spec["type"])
    open_advanced(page)
    page.fill(f"{prefix}options", json.dumps(spec.get("options", {})))
    if "default" in spec:
        page.fill(f"{prefix}default", json.dumps(spec["default"]))
    for flag in FLAGS:
        page.set_checked(f"{prefix}{flag}", spec.get(flag, False))
    page.set_checked(f"{prefix}show_in_list", spec.get("show_in_list", True))


def open_advanced(page: Page) -> None:
    """Open the selected field's "Advanced: JSON" view (this test types JSON; test_browser_designer does not)."""
    advanced = page.locator(".designer-panel.is-selected details.designer-advanced")
    if advanced.get_attribute("open") is None:
        advanced.locator("summary").click()


def row_of(page: Page, key: str) -> str:
    """Select the field whose key is `key` in the designer; return its id prefix (`#id_fields-5-`)."""
    field_id = page.locator(f"input[name^='fields-'][name$='-key'][value='{key}']").get_attribute("id")
    page.locator(f".designer-item[data-index='{field_id.split('-')[1]}'] .designer-select").click()
    return "#" + field_id.removesuffix("key")


def design_entity(page: Page, base: str, key: str, plural: str, display: str, fields: list[dict], shot) -> None:
    page.goto(f"{base}/admin/")
    page.get_by_role("link", name="Entities").click()
    page.get_by_role("link", name="Add entity").click()
    page.get_by_label("Key:").fill(key)
    page.get_by_label("Label:", exact=True).fill(label(key))
    page.get_by_label("Plural label:").fill(plural)
    page.get_by_label("App:").fill("expenses")
    page.get_by_label("Display field:").fill(display)
    for index, spec in enumerate(fields):
        field_row(page, index, spec)
    shot(f"{key}-entity-form")
    save_and_preview(page)


def save_and_preview(page: Page) -> None:
    page.get_by_role("button", name="Save and preview publishing").click()
    expect(page).to_have_url(re.compile(r"/admin/dynamic_models/entity/\d+/preview/$"))
    expect(page.locator("h1")).to_contain_text("Preview publishing")


def publish(page: Page, key: str, version: int, note: str) -> None:
    expect(page.locator(".impact-ok")).to_have_text("No existing row is affected.")
    page.get_by_label("Change note").fill(note)
    page.get_by_role("button", name="Publish").click()
    expect(page.locator(".messagelist")).to_contain_text(f"Published {key} version {version} in")


def open_entity(page: Page, base: str, key: str) -> None:
    page.goto(f"{base}/admin/dynamic_models/entity/")
    page.locator("#result_list").get_by_role("link", name=key, exact=True).click()
    expect(page.locator("h1")).to_contain_text("Change entity")


def test_builder_designs_publishes_and_evolves_expense_in_the_browser(live_acme, page, output_dir):
    acme = Tenant.objects.get(schema_name="acme")
    with tenant_context(acme):
        get_user_model().objects.create_superuser("bea", "bea@acme.test", PASSWORD)
    problems = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("response", lambda response: response.status >= 400 and problems.append(response.url))
    page.on("pageerror", lambda error: problems.append(str(error)))

    def shot(name: str) -> None:
        page.screenshot(path=output_dir / f"{len(list(output_dir.glob('*.png'))):02d}-{name}.png", full_page=True)

    for old in output_dir.glob("*.png"):
        old.unlink()
    base = live_acme
    log_in(page, base)

    # 1. project: design, preview, publish, records.
    design_entity(page, base, "project", "Projects", "name", PROJECT, shot)
    expect(page.locator("ul.summary")).to_have_text("Create table dm_project with 4 fields.")
    expect(page.locator("pre.sql")).to_contain_text('CREATE TABLE "dm_project"')
    expect(page.locator("pre.sql")).to_contain_text('"code" varchar(7)')
    shot("project-preview")
    publish(page, "project", 1, "Projects for expenses")
    # The key names the table: fixed now, shown with its table.
    expect(page.locator(".field-table_key")).to_contain_text("project (table dm_project)")
    expect(page.locator("#id_key")).to_have_count(0)
    page.get_by_role("link", name="Records").click()
    expect(page).to_have_url(f"{base}/admin/data/project/")
    expect(page.locator("h1")).to_have_text("Select Project to change")
    page.get_by_role("link", name="Add Project").click()
    expect(page.get_by_label("Active")).to_be_checked()  # default true
    page.get_by_label("Name:").fill("Apollo")
    page.get_by_label("Code:").fill("APO-001")
    page.get_by_label("Budget:").fill("1200.50")
    page.get_by_role("button", name="Save and add another").click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    page.get_by_label("Name:").fill("Borealis")
    page.get_by_label("Code:").fill("bor-1")  # Breaks the regex: the form says so.
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".errornote")).to_be_visible()
    expect(page.locator(".field-code .errorlist")).to_be_visible()
    page.get_by_label("Code:").fill("BOR-002")
    page.get_by_label("Budget:").fill("80000")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#result_list tbody tr")).to_have_count(2)
    expect(page.locator("#result_list")).to_contain_text("APO-001")
    expect(page.locator("#result_list tbody tr").filter(has_text="Apollo")).to_contain_text("1200.50")
    shot("project-list")

    # 2. expense: design, preview, publish, two records.
    design_entity(page, base, "expense", "Expenses", "title", EXPENSE, shot)
    expect(page.locator("ul.summary")).to_have_text("Create table dm_expense with 11 fields.")
    sql = page.locator("pre.sql")
    expect(sql).to_contain_text('CREATE TABLE "dm_expense"')
    expect(sql).to_contain_text('REFERENCES "dm_project"')
    expect(sql).to_contain_text('"dm_expense_number_seq"')
    shot("expense-preview")
    publish(page, "expense", 1, "Expense claims")
    page.get_by_role("link", name="Records").click()
    expect(page.locator("h1")).to_have_text("Select Expense to change")
    expenses = [
        {"title": "Team dinner", "amount": "356.40", "currency": None, "spent_on": "2025-03-14",
         "category": "meals", "project": "Apollo", "iban": "DE89370400440532013000", "notes": NOTES},
        {"title": "Flight to Berlin", "amount": "1830.00", "currency": "EUR", "spent_on": "2025-04-02",
         "category": "travel", "project": "Borealis", "iban": "", "notes": "Economy class."},
    ]
    for expense in expenses:
        page.get_by_role("link", name="Add Expense").click()
        expect(page.get_by_label("Currency:")).to_have_value("CNY")  # default
        expect(page.get_by_label("Status:")).to_have_value("draft")
        page.get_by_label("Title:").fill(expense["title"])
        page.get_by_label("Amount:").fill(expense["amount"])
        if expense["currency"]:
            page.get_by_label("Currency:").select_option(expense["currency"])
        page.get_by_label("Spent on:").fill(expense["spent_on"])
        page.get_by_label("Category:").select_option(expense["category"])
        page.get_by_label("Project:").select_option(label=expense["project"])
        page.get_by_label("Iban:").fill(expense["iban"])
        page.get_by_label("Notes:").fill(expense["notes"])
        page.get_by_label("Submitted by:").select_option(label="bea")
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.locator(".messagelist")).to_contain_text(f"“{expense['title']}” was added successfully")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="Team dinner")).to_contain_text("EXP-0001")
    expect(rows.filter(has_text="Flight to Berlin")).to_contain_text("EXP-0002")
    expect(rows.filter(has_text="Team dinner")).to_contain_text("Apollo")
    expect(rows.filter(has_text="Team dinner")).to_contain_text("CNY")
    shot("expense-list")

    def expense_page(title: str) -> None:
        page.goto(f"{base}/admin/data/expense/")
        page.locator("#result_list").get_by_role("link", name=title).click()
        expect(page.locator("h1")).to_have_text("Change Expense")

    # 3. Add vat_rate (decimal, default 0).
    open_entity(page, base, "expense")
    field_row(page, len(EXPENSE), {"key": "vat_rate", "type": "decimal", "default": 0,
                                   "options": {"max_digits": 5, "decimal_places": 2}})
    expect(page.locator(f"#id_fields-{len(EXPENSE)}-position")).to_have_value(str(len(EXPENSE)))  # A new field goes last.
    save_and_preview(page)
    expect(page.locator("ul.summary")).to_contain_text("vat_rate")
    expect(page.locator("pre.sql")).to_contain_text('ADD COLUMN "vat_rate"')
    shot("vat-rate-preview")
    publish(page, "expense", 2, "VAT")
    for expense in expenses:
        expense_page(expense["title"])
        expect(page.get_by_label("Vat rate:")).to_have_value("0.00")
    shot("vat-rate-on-record")

    # 4. Rename notes to description: a RENAME, the text stays.
    open_entity(page, base, "expense")
    notes = row_of(page, "notes")
    page.fill(f"{notes}key", "description")
    page.fill(f"{notes}label", "Description")
    save_and_preview(page)
    expect(page.locator("ul.summary")).to_contain_text("Renamed field notes to description")
    expect(page.locator("pre.sql")).to_contain_text('RENAME COLUMN "notes" TO "description"')
    expect(page.locator("pre.sql")).not_to_contain_text("DROP")
    shot("rename-preview")
    publish(page, "expense", 3, "notes are descriptions")
    expense_page("Team dinner")
    expect(page.get_by_label("Description:")).to_have_value(NOTES)
    expect(page.get_by_label("Notes:")).to_have_count(0)
    expect(page.locator("fieldset .form-row").first).to_contain_text("EXP-0001")  # The entity's order.
    shot("renamed-on-record")

    # 5. Change category choices: add software.
    open_entity(page, base, "expense")
    category = row_of(page, "category")
    open_advanced(page)
    page.fill(f"{category}options", json.dumps({"choices": [{"value": v} for v in [*CATEGORIES, "software"]]}))
    save_and_preview(page)
    expect(page.locator("ul.summary")).to_contain_text(
        'Changed field category, options.choices: ["travel", "meals", "equipment", "other"] → '
        '["travel", "meals", "equipment", "other", "software"]')
    publish(page, "expense", 4, "software licences")
    page.goto(f"{base}/admin/data/expense/add/")
    page.get_by_label("Category:").select_option("software")
    expect(page.get_by_label("Category:")).to_have_value("software")

    # 6. Roll the choices back.
    open_entity(page, base, "expense")
    page.get_by_role("link", name="Roll back").click()
    expect(page.locator("#content-main")).to_contain_text("Publish the version of expense before version 4 again?")
    expect(page.locator(".breadcrumbs").get_by_role("link", name="Expense")).to_be_visible()
    shot("rollback-confirm")
    page.get_by_role("button", name="Roll back").click()
    expect(page.locator(".messagelist")).to_contain_text("Rolled expense back: version 5 is live.")
    expect(page.locator(f"{row_of(page, 'category')}options")).not_to_have_value(re.compile("software"))
    expect(page.locator(f"{row_of(page, 'description')}key")).to_have_value("description")
    history = page.locator("table.migration-history tbody tr")
    expect(history).to_have_count(5)
    expect(history.first).to_contain_text("v4 → v5")
    expect(history.filter(has_text="v3 → v4")).to_contain_text("Rolled back")
    expect(history.filter(has_text="v2 → v3")).to_contain_text("alter_field description")
    expect(history.filter(has_text="v1 → v2")).to_contain_text("add_field vat_rate")
    shot("entity-after-rollback")
    page.goto(f"{base}/admin/data/expense/add/")
    expect(page.get_by_label("Category:").locator("option")).to_have_text(["---------", *CATEGORIES])
    page.goto(f"{base}/admin/data/expense/")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    shot("expense-list-after-rollback")
    for expense in expenses:
        expense_page(expense["title"])
        expect(page.get_by_label("Description:")).to_have_value(expense["notes"])
        expect(page.get_by_label("Vat rate:")).to_have_value("0.00")
        expect(page.get_by_label("Category:")).to_have_value(expense["category"])
        expect(page.get_by_label("Amount:")).to_have_value(expense["amount"])
    page.goto(f"{base}/admin/data/project/")
    expect(page.locator("#result_list tbody tr")).to_have_count(2)
    assert problems == []

    # The data as stored.
    with tenant_context(Tenant.objects.get(schema_name="acme")):
        assert Entity.objects.get(key="project").published_version == 1
        assert Entity.objects.get(key="expense").published_version == 5
        assert list(SchemaMigration.objects.filter(entity_key="expense").order_by("to_version")
                    .values_list("to_version", "status")) == [
            (1, "applied"), (2, "applied"), (3, "applied"), (4, "rolled_back"), (5, "applied")]
        Project, Expense = runtime.get_model("project"), runtime.get_model("expense")
        assert sorted(Project.all_objects.values_list("name", "code", "budget", "active")) == [
            ("Apollo", "APO-001", decimal.Decimal("1200.50"), True),
            ("Borealis", "BOR-002", decimal.Decimal("80000.00"), True)]
        stored = {e.title: e for e in Expense.all_objects.select_related("project", "submitted_by")}
        assert len(stored) == 2 and Expense.objects.count() == 2
        for number, expense in enumerate(expenses, start=1):
            record = stored[expense["title"]]
            assert record.number == f"EXP-{number:04d}"
            assert record.amount == decimal.Decimal(expense["amount"])
            assert record.currency == (expense["currency"] or "CNY")
            assert record.spent_on == datetime.date.fromisoformat(expense["spent_on"])
            assert record.category == expense["category"]
            assert record.project.name == expense["project"]
            assert (record.iban or "") == expense["iban"]
            assert record.description == expense["notes"]
            assert record.vat_rate == decimal.Decimal("0")
            assert record.status == "draft"
            assert record.submitted_by.username == "bea" and record.created_by.username == "bea"
            assert not hasattr(record, "notes")
