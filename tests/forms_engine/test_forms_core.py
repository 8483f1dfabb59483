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
    body["layout"]["steps"][0]["items"].append({"field": "ghost"})
    body["layout"]["steps"][0]["items"].append({"field": "topic"})
    body["public"] = True
    body["checks"].append({"expression": "topic +", "message": "x"})
    errors = _errors(body)
    assert errors["fields/score/options"] == "invalid_option"
    assert errors["fields/why/show_when"] == "unknown_field"
    assert errors["fields/extra"] == "not_placed"
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
    assert response.status_code == 302, response.content.decode()[:2000]
    expense = expenses_of(alice).get(title="Hotel for the fair")
    assert expense.submitted_by == alice and expense.status == "draft"
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
