"""The seeded "Expense claim" form filled in a real browser (issue 13 acceptance): conditions react
as alice types (static/forms_engine/form.js), the wizard validates per step, a valid claim with a
receipt creates her expense, and crafted POSTs that bypass a condition are refused by the server.
Screenshots at 1280x800 and 390x844 in test-results/."""

from __future__ import annotations

import datetime
import io

import pytest
from django.utils import translation
from django_tenants.utils import tenant_context
from playwright.sync_api import Page, expect

from dynamic_models import file_fields
from tests.scenario import expenses_of, log_in, seed_acme_for_the_browser

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
REQUIRED = "This field is required."


@pytest.fixture
def alice(committed_acme):
    return seed_acme_for_the_browser(committed_acme, "alice")["alice"]


def shoot(page: Page, output_dir, name: str) -> None:
    page.screenshot(path=output_dir / f"{name}.png", full_page=True)
    desktop = page.viewport_size
    page.set_viewport_size(PHONE)
    page.screenshot(path=output_dir / f"{name}-phone.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), f"{name}: scrolls sideways"
    page.set_viewport_size(desktop)


def png_bytes() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (120, 80), "white")
    ImageDraw.Draw(image).rectangle((10, 10, 110, 70), outline="black", width=3)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def field(page: Page, key: str):
    return page.locator(f'.lc-field[data-field="{key}"]')


def errors_of(page: Page, key: str):
    return page.locator(f"#id_{key}_errors")


def focused_id(page: Page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id")


def yesterday() -> str:
    return (datetime.date.today() - datetime.timedelta(days=1)).isoformat()


def expense_ids(tenant, user) -> set[int]:
    with tenant_context(tenant):
        return set(expenses_of(user).values_list("pk", flat=True))


def test_alice_fills_the_expense_claim(live_acme, alice, committed_acme, page, output_dir):
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    seeded = expense_ids(committed_acme, alice)
    log_in(page, live_acme, "alice")
    page.goto(f"{live_acme}/forms/expense_claim/")

    # The wizard: one step at a time, a step indicator, Next instead of Submit until the last step.
    details, evidence = page.locator('.lc-step[data-step="details"]'), page.locator('.lc-step[data-step="evidence"]')
    expect(details).to_be_visible()
    expect(evidence).to_be_hidden()
    indicator = page.locator(".lc-step-indicator")
    expect(indicator.locator("li")).to_have_count(2)
    expect(indicator.locator('[aria-current="step"]')).to_contain_text("Details")
    expect(page.get_by_role("button", name="Submit")).to_be_hidden()
    expect(page.get_by_role("button", name="Back")).to_be_hidden()
    shoot(page, output_dir, "1-opened")

    # Next on an empty step: messages linked to the inputs, focus on the first wrong field.
    page.get_by_role("button", name="Next").click()
    expect(details).to_be_visible()
    expect(errors_of(page, "title")).to_have_text(REQUIRED)
    expect(errors_of(page, "amount")).to_have_text(REQUIRED)
    title = page.locator("#id_title")
    expect(title).to_have_attribute("aria-invalid", "true")
    assert "id_title_errors" in title.get_attribute("aria-describedby").split()
    assert focused_id(page) == "id_title"
    shoot(page, output_dir, "2-step-errors")

    # iban only for travel (hidden, its input disabled so that it is not posted). Members see the
    # IBAN column masked (scenario.md), so for alice it shows read-only even for travel.
    iban = field(page, "iban")
    expect(iban).to_be_hidden()
    expect(page.locator("#id_iban")).to_be_disabled()
    page.locator("#id_category").select_option("travel")
    expect(iban).to_be_visible()
    page.locator("#id_category").select_option("meals")
    expect(iban).to_be_hidden()
    page.locator("#id_category").select_option("travel")
    expect(iban).to_be_visible()

    # Live validation as she types; the messages go once the value is right.
    title.fill("Train to Shanghai")
    expect(errors_of(page, "title")).to_be_empty()
    expect(title).not_to_have_attribute("aria-invalid", "true")
    amount = page.locator("#id_amount")
    amount.fill("-5")
    amount.blur()
    expect(errors_of(page, "amount")).to_have_text("Ensure this value is greater than 0.")

    # require_when: receipt over 200, notes over 1,000 (the label's mark follows as she types).
    notes_mark, receipt_mark = field(page, "notes").locator(".lc-required-mark"), field(page, "receipt").locator(".lc-required-mark")
    amount.fill("150")
    expect(receipt_mark).to_have_count(0)
    expect(notes_mark).to_have_count(0)
    amount.fill("250")
    expect(receipt_mark).to_have_count(1)
    expect(notes_mark).to_have_count(0)
    amount.fill("1500")
    expect(notes_mark).to_have_count(1)
    expect(page.locator("#id_notes")).to_have_attribute("aria-required", "true")
    page.locator("#id_spent_on").fill(yesterday())
    shoot(page, output_dir, "3-details-filled")

    # Enter in a field of the first step means Next; focus moves to the next step's first field.
    page.locator("#id_spent_on").press("Enter")
    expect(evidence).to_be_visible()
    expect(details).to_be_hidden()
    assert focused_id(page) == "id_receipt"
    expect(indicator.locator('[aria-current="step"]')).to_contain_text("Receipt and notes")
    expect(page.get_by_role("button", name="Next")).to_be_hidden()
    expect(page.get_by_role("button", name="Submit")).to_be_visible()

    # Back and forth with the keyboard.
    page.get_by_role("button", name="Back").focus()
    page.keyboard.press("Enter")
    expect(details).to_be_visible()
    assert focused_id(page) == "id_title"
    page.get_by_role("button", name="Next").focus()
    page.keyboard.press("Enter")
    expect(evidence).to_be_visible()

    # Submit without notes and receipt: blocked in the browser, messages on both fields.
    page.get_by_role("button", name="Submit").click()
    expect(errors_of(page, "receipt")).to_have_text(REQUIRED)
    expect(errors_of(page, "notes")).to_have_text(REQUIRED)
    assert page.url.endswith("/forms/expense_claim/")
    assert focused_id(page) == "id_receipt"
    shoot(page, output_dir, "4-submit-blocked")
    assert expense_ids(committed_acme, alice) == seeded

    page.locator("#id_receipt").set_input_files({"name": "receipt.png", "mimeType": "image/png", "buffer": png_bytes()})
    expect(errors_of(page, "receipt")).to_be_empty()
    page.locator("#id_notes").fill("Client visit, two return tickets.")
    expect(errors_of(page, "notes")).to_be_empty()
    shoot(page, output_dir, "5-ready")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator(".message.success")).to_be_visible()
    shoot(page, output_dir, "6-done")

    with tenant_context(committed_acme):
        expense = expenses_of(alice).exclude(pk__in=seeded).get()
        assert (expense.title, expense.amount, expense.category, expense.notes) == (
            "Train to Shanghai", 1500, "travel", "Client visit, two return tickets.")
        assert expense.submitted_by_id == alice.pk
        assert [stored.name for stored in file_fields.current_files(expense, "receipt")] == ["receipt.png"]
    assert problems == []


def crafted_post(page: Page, base: str, *, receipt: bool = False, **values) -> tuple[int, str]:
    """POST the claim as a script would, bypassing form.js (fetch with alice's session and CSRF
    token); (status, page text). A redirect (the claim saved) answers status 302."""
    page.goto(f"{base}/forms/expense_claim/")
    data = {"submit": "", "title": "Crafted", "currency": "CNY", "spent_on": yesterday(), **values}
    return page.evaluate("""async ([data, png]) => {
        const body = new FormData();
        body.append("csrfmiddlewaretoken", document.querySelector(".lc-form-page [name=csrfmiddlewaretoken]").value);
        for (const [key, value] of Object.entries(data)) body.append(key, value);
        if (png) body.append("receipt", new Blob([Uint8Array.from(png)], {type: "image/png"}), "receipt.png");
        const response = await fetch(location.href, {method: "POST", body, redirect: "manual"});
        return response.type === "opaqueredirect" ? [302, ""] : [response.status, await response.text()];
    }""", [data, list(png_bytes()) if receipt else None])


def refused_on(page: Page, answer: tuple[int, str], key: str):
    """The messages on `key` of a refused POST's page."""
    status, text = answer
    assert status == 400
    page.set_content(text)
    return errors_of(page, key)


def test_crafted_posts_bypassing_conditions_are_refused(live_acme, alice, committed_acme, page):
    seeded = expense_ids(committed_acme, alice)
    log_in(page, live_acme, "alice")

    # notes is required over 1,000: skipping it is refused even though the page was bypassed.
    answer = crafted_post(page, live_acme, amount="1500", category="meals", receipt=True)
    expect(refused_on(page, answer, "notes")).to_have_text(REQUIRED)

    # iban is hidden unless the category is travel: a value for it is refused.
    answer = crafted_post(page, live_acme, amount="50", category="meals", iban="DE89370400440532013000")
    expect(refused_on(page, answer, "iban")).not_to_be_empty()
    assert expense_ids(committed_acme, alice) == seeded

    # The same claim with its notes passes: the refusals were for the conditions alone.
    assert crafted_post(page, live_acme, amount="1500", category="meals", receipt=True, notes="Team dinner")[0] == 302
    assert len(expense_ids(committed_acme, alice) - seeded) == 1


def test_messages_in_simplified_chinese(live_acme, alice, page, output_dir):
    with translation.override("zh-hans"):
        required, number = translation.gettext(REQUIRED), translation.gettext("Enter a number.")
    assert required != REQUIRED and number != "Enter a number."
    log_in(page, live_acme, "alice")
    page.locator("#user-tools").get_by_role("button", name="简体中文").click()
    page.goto(f"{live_acme}/forms/expense_claim/")
    # The browser shows the server's translated message templates (the config's messages).
    page.locator(".lc-next").click()
    expect(errors_of(page, "title")).to_have_text(required)
    page.locator("#id_amount").fill("abc")
    page.locator("#id_amount").blur()
    expect(errors_of(page, "amount")).to_have_text(number)
    shoot(page, output_dir, "zh-hans")
    # The server says the same in the same language.
    answer = crafted_post(page, live_acme, amount="abc", category="meals")
    expect(refused_on(page, answer, "amount")).to_have_text(number)


SURVEY = {
    "label": "Office survey",
    "schema": {"type": "object", "properties": {
        "topic": {"type": "string", "enum": ["food", "office"]},
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "doubled": {"type": "number"},
        "agree": {"type": "boolean"},
        "reason": {"type": "string", "maxLength": 20},
        "desk": {"type": "string"},
        "visited_on": {"type": "string", "format": "date"},
        "why": {"type": "string"}},
        "required": ["topic", "score"]},
    "fields": {
        "topic": {"widget": "radio", "label": "Topic", "options": {"choices": [{"value": "food"}, {"value": "office"}]}},
        "score": {"widget": "number", "label": "Score"},
        "doubled": {"widget": "number", "label": "Doubled", "value": "score * 2"},
        "agree": {"widget": "checkbox", "label": "I want to say why"},
        "reason": {"widget": "text", "label": "Reason", "enable_when": "agree"},
        "desk": {"widget": "text", "label": "Desk", "require_when": "topic == 'office'"},
        "visited_on": {"widget": "date", "label": "Visited on"},
        "why": {"widget": "textarea", "label": "Why so low?", "require_when": "score < 3"},
        "thanks": {"widget": "paragraph", "text": "Thank you."},
    },
    "layout": {"steps": [
        {"key": "main", "label": "Main", "items": [
            {"field": "topic", "width": 6}, {"field": "score", "width": 3}, {"field": "doubled", "width": 3},
            {"field": "agree", "width": 6}, {"field": "reason", "width": 6},
            {"group": "office", "label": "Office", "show_when": "topic == 'office'",
             "items": [{"field": "desk", "width": 6}, {"field": "visited_on", "width": 6}]}]},
        {"key": "low", "label": "Low score", "show_when": "score < 3", "items": [{"field": "why"}]},
        {"key": "end", "label": "Thanks", "items": [{"field": "thanks"}]},
    ]},
    "checks": [
        {"expression": "topic != 'office' or score >= 2", "message": "Office scores start at 2.", "field": "score"},
        {"expression": "is_null(visited_on) or visited_on <= today()", "message": "Cannot be in the future.",
         "field": "visited_on"},
    ],
}


@pytest.fixture
def survey(alice, committed_acme):
    from metadata import services as metadata

    with tenant_context(committed_acme):
        metadata.save_and_publish("form", "office_survey", SURVEY)
    return "office_survey"


def test_groups_steps_enable_computed_values_and_checks(live_acme, survey, alice, committed_acme, page, output_dir):
    from forms_engine.models import FormSubmission

    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    log_in(page, live_acme, "alice")
    page.goto(f"{live_acme}/forms/{survey}/")
    steps = page.locator(".lc-step-indicator li")
    expect(steps.filter(has_text="Low score")).to_be_hidden()

    # A computed value follows its expression and cannot be typed in.
    doubled = page.locator("#id_doubled")
    expect(doubled).to_be_disabled()
    page.locator("#id_score").fill("3")
    expect(doubled).to_have_value("6")

    # enable_when: the reason takes a value only while the box is ticked.
    reason = page.locator("#id_reason")
    expect(reason).to_be_disabled()
    page.get_by_label("I want to say why").check()
    expect(reason).to_be_enabled()
    reason.fill("Too noisy")

    # A group shown by a condition, a field inside it required by another.
    office = page.locator('.lc-group[data-group="office"]')
    expect(office).to_be_hidden()
    expect(page.locator("#id_desk")).to_be_disabled()
    page.get_by_label("office").check()
    expect(office).to_be_visible()
    expect(field(page, "desk").locator(".lc-required-mark")).to_have_count(1)

    # A check over two fields, live; a step shown by a condition joins the indicator.
    page.locator("#id_score").fill("1")
    page.locator("#id_score").blur()
    expect(errors_of(page, "score")).to_have_text("Office scores start at 2.")
    expect(steps.filter(has_text="Low score")).to_be_visible()
    page.locator("#id_visited_on").fill((datetime.date.today() + datetime.timedelta(days=3)).isoformat())
    page.locator("#id_visited_on").blur()
    expect(errors_of(page, "visited_on")).to_have_text("Cannot be in the future.")
    shoot(page, output_dir, "1-checks")
    page.locator("#id_score").fill("4")
    expect(errors_of(page, "score")).to_be_empty()
    expect(doubled).to_have_value("8")
    expect(steps.filter(has_text="Low score")).to_be_hidden()
    page.locator("#id_visited_on").fill(yesterday())
    expect(errors_of(page, "visited_on")).to_be_empty()

    # Next with the group's required field empty stays; filled, it skips the hidden step.
    page.get_by_role("button", name="Next").click()
    expect(errors_of(page, "desk")).to_have_text(REQUIRED)
    assert focused_id(page) == "id_desk"
    page.locator("#id_desk").fill("B-12")
    page.get_by_role("button", name="Next").click()
    expect(page.locator('.lc-step[data-step="end"]')).to_be_visible()
    expect(page.locator('.lc-step[data-step="low"]')).to_be_hidden()
    page.get_by_role("button", name="Submit").click()
    expect(page.locator(".message.success")).to_be_visible()
    with tenant_context(committed_acme):
        submission = FormSubmission.objects.get(form_key=survey)
    assert submission.data == {"topic": "office", "score": 4, "doubled": 8, "agree": True, "reason": "Too noisy",
                               "desk": "B-12", "visited_on": yesterday()}
    assert problems == []


def test_without_javascript_every_step_shows_and_the_server_judges(live_acme, survey, browser, output_dir):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, java_script_enabled=False)
    page = context.new_page()
    try:
        log_in(page, live_acme, "alice")
        page.goto(f"{live_acme}/forms/{survey}/")
        expect(page.locator('.lc-step[data-step="main"]')).to_be_visible()
        expect(page.locator('.lc-step[data-step="end"]')).to_be_visible()
        expect(page.locator(".lc-wizard-nav")).to_be_hidden()
        expect(page.locator(".lc-step-indicator")).to_be_hidden()
        page.get_by_label("office").check()
        page.get_by_role("button", name="Submit").click()
        # The server drew the office group when it judged the data, and names what is missing.
        expect(errors_of(page, "score")).to_have_text(REQUIRED)
        expect(errors_of(page, "desk")).to_have_text(REQUIRED)
        expect(page.locator('.lc-group[data-group="office"]')).to_be_visible()
        shoot(page, output_dir, "no-javascript")
    finally:
        context.close()
