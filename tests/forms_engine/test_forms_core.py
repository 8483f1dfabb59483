"""The forms engine's server side (issue 13): the form kind, submissions of bound and standalone
forms, conditions judged on the server, drafts, public forms, rendering."""

from __future__ import annotations

import datetime
import io
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from audit.models import AuditEvent
from forms_engine import rendering, services
from forms_engine.models import FormSubmission
from forms_engine.signals import form_submitted
from forms_engine.widgets import TimeWidget
from metadata import services as metadata
from metadata.exceptions import DefinitionValidationError
from tests.scenario import client_for, expenses_of

pytestmark = pytest.mark.django_db


def _png(name: str = "receipt.png") -> SimpleUploadedFile:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), "white").save(buffer, "PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def _claim(**values) -> dict:
    data = {"title": "Hotel in Shanghai", "amount": "150.00", "currency": "CNY",
            "spent_on": (datetime.date.today() - datetime.timedelta(days=2)).isoformat(), "category": "meals"}
    data.update(values)
    return {key: value for key, value in data.items() if value is not None}


STANDALONE = {
    "label": "Feedback",
    "schema": {"type": "object", "properties": {
        "topic": {"type": "string", "enum": ["food", "office"]}, "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "doubled": {"type": "number"}, "why": {"type": "string", "maxLength": 200}},
        "required": ["topic"]},
    "fields": {
        "topic": {"widget": "radio", "label": "Topic",
                  "options": {"choices": [{"value": "food"}, {"value": "office", "label": "Office"}]}},
        "score": {"widget": "number", "label": "Score", "help": "From 1 to 5."},
        "doubled": {"widget": "number", "label": "Doubled", "value": "score * 2"},
        "why": {"widget": "textarea", "label": "Why", "show_when": "score < 3", "require_when": "score < 3"},
    },
    "layout": {"steps": [{"key": "main", "items": [{"field": "topic"}, {"field": "score", "width": 6},
                                                   {"field": "doubled", "width": 6}, {"field": "why"}]}]},
    "checks": [{"expression": "topic != 'office' or score >= 2", "message": "Office scores start at 2.",
                "field": "score"}],
}


def _publish(key: str, body: dict):
    return metadata.save_and_publish("form", key, body)


def _errors(body: dict) -> dict:
    with pytest.raises(DefinitionValidationError) as caught:
        metadata.validate("form", body)
    return {error["path"]: error["code"] for error in caught.value.errors}


def test_kind_refuses_bad_bodies_naming_path_and_rule(people):
    import copy

    body = copy.deepcopy(STANDALONE)
    body["fields"]["score"]["options"] = {"colour": "red"}
    body["fields"]["why"]["show_when"] = "salary > 3"
    body["fields"]["extra"] = {"widget": "text"}
    body["schema"]["properties"]["why"]["type"] = "number"
    body["layout"]["steps"][0]["items"].append({"field": "ghost"})
    body["layout"]["steps"][0]["items"].append({"field": "topic"})
    body["public"] = True
    body["checks"].append({"expression": "topic +", "message": "x"})
    errors = _errors(body)
    assert errors["fields/score/options"] == "invalid_option"
    assert errors["fields/why/show_when"] == "unknown_field"
    assert errors["fields/extra"] == "not_placed"
    assert errors["schema/properties/why/type"] == "widget_type"
    assert errors["layout/steps/0/items/4/field"] == "unknown_field"
    assert errors["layout/steps/0/items/5/field"] == "duplicate"
    assert "checks/1/expression" in errors

    bound = services.form_from_entity("expense")
    metadata.validate("form", bound)  # "Form from entity" makes a valid form.
    bound["fields"]["title"]["widget"] = "checkbox"
    bound["public"] = True
    bound["schema"]["properties"]["nope"] = {"type": "string"}
    bound["fields"]["nope"] = {"widget": "text"}
    bound["layout"]["steps"][0]["items"].append({"field": "nope"})
    errors = _errors(bound)
    assert errors["fields/title/widget"] == "incompatible_widget"
    assert errors["public"] == "public_bound"
    assert errors["fields/nope"] == "unknown_field"
    assert _errors({**STANDALONE, "schema": {"type": "object", "properties": {"topic": {"type": "strin"}}}})


def test_form_from_entity_mirrors_the_entity(people):
    body = services.form_from_entity("expense")
    assert body["entity"] == "expense"
    assert {"title", "amount", "spent_on"} <= set(body["schema"]["required"])
    assert body["schema"]["properties"]["title"] == {"type": "string", "maxLength": 120}
    assert body["schema"]["properties"]["amount"]["exclusiveMinimum"] == 0
    assert body["schema"]["properties"]["category"]["enum"] == ["travel", "meals", "equipment", "other"]
    assert body["fields"]["receipt"]["widget"] == "file"
    assert "number" not in body["fields"]  # Auto numbers are the database's.
    from metadata.registries import definition_kind_registry

    assert definition_kind_registry.get("form").dependencies(body) == [("entity", "expense")]


def test_entity_pages_form_is_one_per_entity(people):
    body = {**services.form_from_entity("project"), "entity_pages": True}
    _publish("project_page", body)
    with pytest.raises(DefinitionValidationError) as caught:
        _publish("project_page_two", body)
    assert caught.value.errors[0]["code"] == "entity_pages_taken"


def test_bound_form_creates_alices_expense_with_receipt(people, django_capture_on_commit_callbacks):
    alice = people["alice"]
    received = []

    def receiver(**kwargs):
        received.append(kwargs)

    form_submitted.connect(receiver, dispatch_uid="test-bound")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = client_for(alice, key=False).post(
                "/forms/expense_claim/", _claim(title="Hotel for the fair", amount="480.00", receipt=_png()))
    finally:
        form_submitted.disconnect(dispatch_uid="test-bound")
    assert response.status_code == 302, _shown_errors(response)
    expense = expenses_of(alice).get(title="Hotel for the fair")
    assert expense.submitted_by == alice  # Its status is the workflows app's (it subscribes to form_submitted).
    assert expense.receipt is not None and expense.receipt.name == "receipt.png"
    submission = FormSubmission.objects.get(record_id=expense.pk)
    assert submission.record_entity == "expense" and submission.data == {} and submission.user == alice
    assert received[0]["record"] == expense and received[0]["submission"] == submission
    assert AuditEvent.objects.filter(action="forms_engine.form.submitted", target_id=str(submission.pk)).exists()
    assert AuditEvent.objects.filter(action="data.expense.create", target_id=str(expense.pk)).exists()


@pytest.mark.parametrize(("values", "field"), [
    ({"amount": "1500.00", "receipt": "upload"}, "notes"),  # Skips a field required by condition.
    ({"amount": "300.00"}, "receipt"),
    ({"category": "meals", "iban": "DE89370400440532013000"}, "iban"),  # A value for a hidden field.
    ({"status": "approved"}, "status"),  # Not in the form at all: ignored, see below.
])
def test_crafted_posts_are_refused_and_nothing_is_written(people, values, field):
    alice = people["alice"]
    before = expenses_of(alice).count()
    values = {key: _png() if value == "upload" else value for key, value in values.items()}
    response = client_for(alice, key=False).post("/forms/expense_claim/", _claim(**values))
    if field == "status":
        # `status` is no field of the form: the record gets its default, never the posted value.
        assert response.status_code == 302
        assert expenses_of(alice).get(title="Hotel in Shanghai").status == "draft"
        return
    assert response.status_code == 400
    assert f'id="id_{field}_errors"' in response.content.decode()
    assert expenses_of(alice).count() == before


def test_masked_and_read_only_columns_cannot_be_written(people):
    """In the generated form a member sees the IBAN masked and the status read-only; posting them is refused."""
    alice = people["alice"]
    from dynamic_models import runtime

    form = services.entity_form(runtime.get_model("expense"), user=alice)
    rules = services.column_rules(form, alice)
    assert rules["iban"] == "masked" and rules["status"] == "read_only"
    from django.http import QueryDict
    from django.utils.datastructures import MultiValueDict

    def post(**values):
        data = QueryDict(mutable=True)
        data.update({**_claim(category="travel", project=None), **values})
        return services.submit(form, data, MultiValueDict(), user=alice)

    for values, field in [({"iban": "DE89370400440532013000"}, "iban"), ({"status": "approved"}, "status")]:
        result = post(**values)
        assert not result.ok and field in result.errors
    assert post(status="draft").ok  # The value it has is no change.
    html = rendering.render(form, request=_request(alice), record=expenses_of(alice).exclude(iban=None).first())
    assert 'id="id_iban"' in html and "****" in html


def _shown_errors(response) -> dict:
    """{field: messages} of a form page, to say why a test's submission was refused."""
    import re

    html = response.content.decode()
    return {key: re.findall(r"<li>(.*?)</li>", items)
            for key, items in re.findall(r'id="id_(\w+)_errors"[^>]*>(.*?)</ul>', html, re.S) if items}


def _request(user):
    from django.test import RequestFactory

    request = RequestFactory().get("/", HTTP_HOST="acme.localhost")
    request.user = user
    return request


def test_standalone_submission_signal_and_audit(people, django_capture_on_commit_callbacks):
    _publish("feedback", STANDALONE)
    bob = people["bob"]
    client = client_for(bob, key=False)
    received = []
    form_submitted.connect(lambda **kwargs: received.append(kwargs), dispatch_uid="test-standalone", weak=False)
    try:
        # A computed field's value is the server's: a different one is refused.
        response = client.post("/forms/feedback/", {"topic": "food", "score": "4", "doubled": "100"})
        assert response.status_code == 400 and "This field cannot be changed." in response.content.decode()
        # Required by condition (score < 3) and the check (office scores start at 2).
        response = client.post("/forms/feedback/", {"topic": "office", "score": "1"})
        body = response.content.decode()
        assert response.status_code == 400 and "Office scores start at 2." in body
        assert "This field is required." in body
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/forms/feedback/", {"topic": "food", "score": "4"})
    finally:
        form_submitted.disconnect(dispatch_uid="test-standalone")
    assert response.status_code == 302
    submission = FormSubmission.objects.get(form_key="feedback")
    assert submission.data == {"topic": "food", "score": 4, "doubled": 8}
    assert submission.status == "submitted" and submission.user == bob and submission.form_version == 1
    assert received[0]["submission"] == submission and received[0]["record"] is None
    event = AuditEvent.objects.get(action="forms_engine.form.submitted", target_id=str(submission.pk))
    assert event.data["form"] == "feedback"


def test_drafts_resume_for_their_owner_only(people):
    _publish("feedback", STANDALONE)
    alice = client_for(people["alice"], key=False)
    response = alice.post("/forms/feedback/", {"score": "9", "save_draft": "1"})  # Types only: no range, no required.
    assert response.status_code == 302
    draft = FormSubmission.objects.get(form_key="feedback", status="draft")
    assert response["Location"] == f"/forms/feedback/drafts/{draft.pk}/"
    page = alice.get(response["Location"])
    assert page.status_code == 200 and 'value="9"' in page.content.decode()
    assert client_for(people["bob"], key=False).get(response["Location"]).status_code == 404
    response = alice.post(response["Location"], {"topic": "food", "score": "5"})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == "submitted" and draft.data["score"] == 5


class RefusingCaptcha:
    def html(self, request):
        return ""

    def verify(self, request):
        return request.POST.get("captcha") == "human"


def test_public_form_is_rate_limited_and_asks_the_captcha(people, settings):
    _publish("contact", {**STANDALONE, "label": "Contact", "public": True})
    settings.FORMS_PUBLIC_RATE = (3, 60)
    settings.FORMS_CAPTCHA = "tests.forms_engine.test_forms_core.RefusingCaptcha"
    visitor = Client(HTTP_HOST="acme.localhost", REMOTE_ADDR=f"10.{uuid.uuid4().int % 250}.0.{uuid.uuid4().int % 250}")
    assert visitor.get("/forms/contact/").status_code == 200
    assert visitor.post("/forms/contact/", {"topic": "food", "score": "4"}).status_code == 400  # No captcha.
    assert visitor.post("/forms/contact/", {"topic": "food", "score": "4", "captcha": "human"}).status_code == 302
    assert FormSubmission.objects.filter(form_key="contact", user=None).count() == 1
    assert visitor.post("/forms/contact/", {"topic": "food", "captcha": "human"}).status_code == 302
    assert visitor.post("/forms/contact/", {"topic": "food", "captcha": "human"}).status_code == 429
    # Not public: visitors are sent to sign in.
    assert Client(HTTP_HOST="acme.localhost").get("/forms/expense_claim/").status_code == 302


def test_rendering_is_accessible_and_applies_conditions(people, django_assert_max_num_queries):
    alice = people["alice"]
    form = services.get_form("expense_claim")
    with django_assert_max_num_queries(25):
        html = str(rendering.render(form, request=_request(alice)))
    assert '<label for="id_title">' in html
    assert 'aria-describedby="id_iban_help id_iban_errors"' in html
    assert 'data-field="iban" data-widget="text" style="--span: 6" hidden' in html  # Not travel yet.
    assert html.count('class="lc-step"') == 2
    assert 'id="lc-form-config-expense_claim"' in html
    travel = str(rendering.render(form, request=_request(alice), data={"category": "travel", "amount": 1500}))
    assert 'data-field="iban" data-widget="text" style="--span: 6" hidden' not in travel
    assert 'data-field="notes" data-widget="textarea" style="--span: 12">' in travel
    config = rendering.config(form, user=alice)
    assert config["fields"]["notes"]["require_when"]["t"]
    page = client_for(alice, key=False).get("/forms/")
    assert "/forms/expense_claim/" in page.content.decode()
    assert client_for(people["frank"], key=False).get("/forms/expense_claim/").status_code == 403


def test_relation_search_answers_what_the_viewer_may_see(people):
    response = client_for(people["alice"], key=False).get("/forms/expense_claim/relation/project/?q=apo")
    assert response.status_code == 200
    assert [row["label"] for row in response.json()["results"]] == ["Apollo"]


def test_submissions_admin_lists_filters_and_exports(people):
    from django.contrib.auth import get_user_model

    _publish("feedback", STANDALONE)
    client_for(people["bob"], key=False).post("/forms/feedback/", {"topic": "food", "score": "4"})
    client_for(people["alice"], key=False).post("/forms/expense_claim/", _claim())
    admin_user = get_user_model().objects.create_superuser("formadmin", "formadmin@acme.example", "x-123-secret")
    client = client_for(admin_user, key=False)
    listing = client.get("/admin/forms_engine/formsubmission/?status__exact=submitted&form_key=feedback")
    assert listing.status_code == 200 and "feedback" in listing.content.decode()
    submissions = FormSubmission.objects.order_by("id")
    response = client.post("/admin/forms_engine/formsubmission/", {
        "action": "export_csv", "_selected_action": [str(row.pk) for row in submissions]})
    assert response.status_code == 200
    lines = b"".join(response.streaming_content).decode("utf-8-sig").splitlines()
    assert lines[0].startswith("id,form,version,status,user") and lines[0].endswith("score,topic")
    assert any(",expense#" in line for line in lines[1:])  # A bound form's row names its record, no copy.
    assert any(line.endswith(",8,4,food") for line in lines[1:])
    assert AuditEvent.objects.filter(action="forms_engine.submissions.export").exists()
    assert client.get(f"/admin/forms_engine/formsubmission/{submissions[0].pk}/change/").status_code == 200


EVERY_WIDGET = {
    "label": "Every widget",
    "schema": {"type": "object", "properties": {
        "text": {"type": "string"}, "area": {"type": "string"}, "rich": {"type": "string"},
        "number": {"type": "number"}, "slider": {"type": "number"}, "select": {"type": "string"},
        "many": {"type": "array", "items": {"type": "string"}}, "radio": {"type": "string"},
        "tick": {"type": "boolean"}, "switch": {"type": "boolean"}, "day": {"type": "string", "format": "date"},
        "moment": {"type": "string", "format": "date-time"}, "clock": TimeWidget.json_schema,
        "attachment": {"type": "array", "items": {"type": "string", "format": "uuid"}},
        "photo": {"type": "array", "items": {"type": "string", "format": "uuid"}},
        "person": {"type": "integer"}, "team": {"type": "integer"}, "project": {"type": "integer"}}},
    "fields": {
        "note": {"widget": "paragraph", "text": "Read me."},
        "text": {"widget": "text"}, "area": {"widget": "textarea"}, "rich": {"widget": "rich_text"},
        "number": {"widget": "number"}, "slider": {"widget": "slider", "options": {"min": 0, "max": 10}},
        "select": {"widget": "select", "options": {"choices": [{"value": "a"}, {"value": "b"}]}},
        "many": {"widget": "multi_select", "options": {"choices": [{"value": "a"}, {"value": "b"}]}},
        "radio": {"widget": "radio", "options": {"choices": [{"value": "a"}, {"value": "b"}]}},
        "tick": {"widget": "checkbox"}, "switch": {"widget": "switch"}, "day": {"widget": "date"},
        "moment": {"widget": "datetime"}, "clock": {"widget": "time"}, "attachment": {"widget": "file"},
        "photo": {"widget": "image"}, "person": {"widget": "user"}, "team": {"widget": "department"},
        "project": {"widget": "relation", "options": {"entity": "project"}},
    },
    "layout": {"steps": [
        {"key": "one", "label": "One", "items": [{"field": "note"}, {"group": "texts", "label": "Texts", "items": [
            {"field": "text", "width": 4}, {"field": "area", "width": 4}, {"field": "rich", "width": 4}]},
            {"field": "number"}, {"field": "slider"}, {"field": "select"}, {"field": "many"}, {"field": "radio"}]},
        {"key": "two", "label": "Two", "items": [
            {"field": "tick"}, {"field": "switch"}, {"field": "day"}, {"field": "moment"}, {"field": "clock"},
            {"field": "attachment"}, {"field": "photo"}, {"field": "person"}, {"field": "team"}, {"field": "project"}]},
    ]},
}


def test_every_widget_renders_and_reads_its_post(people, django_assert_max_num_queries):
    from rbac.models import Department

    _publish("every", EVERY_WIDGET)
    form = services.get_form("every")
    frank = people["frank"]
    with django_assert_max_num_queries(30):
        html = str(rendering.render(form, request=_request(frank)))
    for key in EVERY_WIDGET["schema"]["properties"]:
        assert f'data-field="{key}"' in html and f'id="id_{key}_errors"' in html
    assert html.count('<fieldset class="lc-group" data-group="texts"') == 1 and "Read me." in html
    project = services.relation_choices(form, "project", "Apollo", user=frank)[0]["value"]
    team = Department.objects.get(name="Sales").pk
    client = client_for(frank, key=False)
    response = client.post("/forms/every/", {
        "text": " hello ", "area": "two\nlines", "rich": '<p onclick="x()">Hi<script>bad()</script></p>',
        "number": "1,234.50", "slider": "7", "select": "b", "many": ["a", "b"], "radio": "a", "tick": "true",
        "day": "2026-01-02", "moment": "2026-01-02T10:30", "clock": "09:15", "attachment": _png("scan.png"),
        "person": str(people["alice"].pk), "team": str(team), "project": project})
    assert response.status_code == 302, _shown_errors(response)
    data = FormSubmission.objects.get(form_key="every").data
    assert data["text"] == "hello" and data["rich"] == "<p>Hi</p>" and data["number"] == 1234.5
    assert data["many"] == ["a", "b"] and data["tick"] is True and data["switch"] is False
    assert data["moment"].startswith("2026-01-02T10:30:00") and data["clock"] == "09:15"
    assert len(data["attachment"]) == 1 and data["person"] == people["alice"].pk and data["team"] == team
    from files.models import StoredFile

    assert StoredFile.objects.get(pk=data["attachment"][0]).name == "scan.png"
    refused = client.post("/forms/every/", {"number": "abc", "day": "2026-02-30", "clock": "25:00",
                                            "person": "999999", "select": "z"})
    body = refused.content.decode()
    assert refused.status_code == 400
    for key in ("number", "day", "clock", "person", "select"):
        assert f'data-field="{key}" data-widget' in body
        assert f'<ul class="lc-errors" id="id_{key}_errors" aria-live="polite"><li>' in body, key


def test_bound_draft_with_receipt_resumes_into_the_expense(people):
    alice = people["alice"]
    client = client_for(alice, key=False)
    response = client.post("/forms/expense_claim/", {**_claim(title="Printer ink", amount="250.00"),
                                                     "receipt": _png("ink.png"), "save_draft": "1"})
    assert response.status_code == 302
    draft = FormSubmission.objects.get(form_key="expense_claim", status="draft", user=alice)
    assert draft.data["title"] == "Printer ink" and len(draft.data["receipt"]) == 1
    assert not expenses_of(alice).filter(title="Printer ink").exists()
    page = client.get(response["Location"]).content.decode()
    assert "Keep ink.png" in page
    response = client.post(response["Location"], {**_claim(title="Printer ink", amount="250.00"),
                                                  "receipt": draft.data["receipt"]})
    assert response.status_code == 302, _shown_errors(response)
    expense = expenses_of(alice).get(title="Printer ink")
    assert str(expense.receipt_id) == draft.data["receipt"][0]
    draft.refresh_from_db()
    assert draft.status == "submitted" and draft.record_id == expense.pk and draft.data == {}


def test_entity_form_edits_a_record_through_the_write_path(people):
    from django.http import QueryDict
    from django.utils.datastructures import MultiValueDict

    from dynamic_models import runtime

    alice = people["alice"]
    expense = expenses_of(alice).get(title="Team lunch with the customer")  # A draft: alice may change it.
    form = services.entity_form(runtime.get_model("expense"), user=alice)
    data = QueryDict(mutable=True)
    data.update({key: str(value) for key, value in services.initial_data(form, record=expense).items()
                 if value is not None and key not in ("iban", "status", "submitted_by", "receipt")})
    data["title"] = "Team lunch, renamed"
    result = services.submit(form, data, MultiValueDict(), user=alice, record=expense)
    assert result.ok, result.errors
    expense.refresh_from_db()
    assert expense.title == "Team lunch, renamed" and expense.submitted_by == alice
    submitted = expenses_of(alice).get(status="submitted", title__startswith="Train")
    result = services.submit(form, data, MultiValueDict(), user=alice, record=submitted)
    assert not result.ok and result.forbidden  # Members change their expenses only while draft.


def test_conditions_of_steps_groups_and_fields(people):
    from forms_engine import conditions

    body = {
        "label": "Trip",
        "schema": {"type": "object", "properties": {
            "kind": {"type": "string"}, "nights": {"type": "integer"}, "hotel": {"type": "string"},
            "night_cost": {"type": "number"}, "total": {"type": "number"}, "start": {"type": "string", "format": "date"},
            "reason": {"type": "string"}}},
        "fields": {"kind": {"widget": "text"}, "nights": {"widget": "number"}, "hotel": {"widget": "text"},
                   "night_cost": {"widget": "number", "enable_when": "nights > 0"},
                   "total": {"widget": "number", "value": "coalesce(nights, 0) * coalesce(night_cost, 0)"},
                   "start": {"widget": "date"},
                   "reason": {"widget": "text", "require_when": "start < date(2026, 1, 1)"}},
        "layout": {"steps": [
            {"key": "what", "items": [{"field": "kind"}, {"field": "start"}, {"field": "reason"}]},
            {"key": "stay", "show_when": "kind == 'overnight'", "items": [
                {"field": "nights"},
                {"group": "hotel", "enable_when": "user.is_staff", "items": [{"field": "hotel"}]},
                {"field": "night_cost"}, {"field": "total"}]},
        ]},
    }
    _publish("trip", body)
    alice = people["alice"]
    state = conditions.evaluate(body, {"kind": "day", "start": "2025-12-31"}, user=alice)
    assert not state.steps["stay"].visible and state.hidden() == {"nights", "hotel", "night_cost", "total"}
    assert state.fields["reason"].required
    state = conditions.evaluate(body, {"kind": "overnight", "nights": 2, "night_cost": 80.5}, user=alice)
    assert state.hidden() == set() and state.data["total"] == 161
    assert state.fields["total"].computed and not state.fields["total"].enabled
    assert state.fields["hotel"].enabled  # alice is staff (the demo people are).
    assert not conditions.evaluate(body, {"kind": "overnight"}, user=alice).fields["night_cost"].enabled
    assert not conditions.evaluate(body, {"kind": "overnight"}, user=None).fields["hotel"].enabled  # A visitor.
    # A disabled field keeps the server's value: a posted one is refused, nothing stored.
    response = client_for(alice, key=False).post("/forms/trip/", {"kind": "overnight", "night_cost": "99"})
    assert response.status_code == 400 and _shown_errors(response) == {"night_cost": ["This field cannot be changed."]}
    assert not FormSubmission.objects.filter(form_key="trip").exists()


def test_versions_diff_reads_by_field(people):
    import copy

    _publish("feedback", STANDALONE)
    changed = copy.deepcopy(STANDALONE)
    changed["fields"]["why"]["label"] = "Tell us why"
    changed["fields"]["mood"] = {"widget": "text"}
    changed["schema"]["properties"]["mood"] = {"type": "string"}
    changed["layout"]["steps"][0]["items"].append({"field": "mood"})
    _publish("feedback", changed)
    summary = metadata.compare("form", "feedback", 1, 2)["summary"]
    assert summary == ["Added field mood (text)", 'Changed field why, label: "Why" → "Tell us why"',
                       "Changed the layout", "Changed the data schema"]
