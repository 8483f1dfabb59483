"""The form designer's server side (FM-5): who may design (bea yes, alice 403), starting a form
(blank, template, from an entity), save draft and publish with the kind's errors named, the
condition check, the preview, versions with diff and roll back."""

import json

import pytest

from forms_engine import designer, services, starters
from metadata import services as metadata
from metadata.models import Definition
from tests.designers import post_json

BASE = "/admin/forms_engine/formdefinition"


def start(client, start: str, key: str = ""):
    return client.post(f"{BASE}/add/", {"start": start, "key": key})


def test_only_designers_reach_the_forms_admin(people, bea, alice):
    assert start(bea, "blank", "feedback").status_code == 302
    design = f"{BASE}/design/feedback/"
    body = metadata.current("form", "feedback").body
    for url in (f"{BASE}/", f"{BASE}/add/", design, f"{design}versions/"):
        assert bea.get(url).status_code == 200, url
        assert alice.get(url).status_code == 403, url
    for url, data in ((f"{design}save/", {"body": body}), (f"{design}preview/", {"body": body}),
                      (f"{design}validate/", {"body": body}), (f"{BASE}/check/", {"body": body, "expression": "1"})):
        assert alice.post(url, json.dumps(data), content_type="application/json").status_code == 403, url
    assert start(alice, "blank", "sneaky").status_code == 403
    assert not metadata.get_draft("form", "sneaky")
    # The admin's index offers forms to designers only.
    assert f'href="{BASE}/"' in bea.get("/admin/").content.decode()
    assert f'href="{BASE}/"' not in alice.get("/admin/").content.decode()


def test_a_form_starts_blank_from_a_template_or_from_an_entity(people, bea):
    # The key is made from the template's name unless one is given.
    response = start(bea, "template:survey")
    assert response.status_code == 302 and response["Location"].endswith("/design/survey/")
    assert metadata.get_draft("form", "survey").body == starters.starter("survey")
    assert start(bea, "template:expense_claim", "claim")["Location"].endswith("/design/claim/")
    # One click from an entity: the key is made from the entity's, the body is form_from_entity's.
    response = start(bea, "entity:expense")
    assert response["Location"].endswith("/design/expense/")
    assert metadata.get_draft("form", "expense").body == services.form_from_entity("expense")
    assert start(bea, "entity:expense")["Location"].endswith("/design/expense_2/")
    assert start(bea, "blank", "feedback")["Location"].endswith("/design/feedback/")
    # A taken or malformed key, an unknown template: the add page again, saying why.
    for key, begin, message in (("feedback", "blank", "exists already"), ("Bad Key", "blank", "must start with"),
                                ("", "template:nope", "no template or entity")):
        response = start(bea, begin, key)
        assert response.status_code == 200 and message in response.content.decode(), message
    # The list: one row per form, its label linking to the designer.
    page = bea.get(f"{BASE}/").content.decode()
    assert page.count('/design/claim/"') == 1 and "Expense claim" in page


@pytest.mark.parametrize("name", list(starters.STARTERS))
def test_every_template_is_a_valid_form(people, name):
    assert designer.body_errors(starters.starter(name)) == []


def test_save_draft_and_publish_name_what_is_wrong(people, bea):
    start(bea, "template:expense_claim", "claim")
    url = f"{BASE}/design/claim/save/"
    body = starters.starter("expense_claim")
    broken = json.loads(json.dumps(body))
    broken["fields"]["notes"]["require_when"] = "amont > 1000"
    status, answer = post_json(bea, url, {"body": broken, "publish": True})
    assert status == 400
    assert [error["path"] for error in answer["body"]] == ["fields/notes/require_when"]
    assert answer["body"][0]["code"] == "unknown_field" and "amont" in answer["body"][0]["message"]
    assert metadata.get_published("form", "claim") is None
    # Not JSON, or a body that is not an object: 400 naming the body.
    response = bea.post(url, "{nope", content_type="application/json")
    assert response.status_code == 400 and response.json()["body"][0]["code"] == "invalid"
    assert post_json(bea, url, {"body": []})[0] == 400
    assert bea.get(url).status_code == 405
    # A draft, then a publish.
    body["label"] = "Expense claim (draft)"
    status, answer = post_json(bea, url, {"body": body})
    assert (status, answer["status"]) == (200, "draft")
    assert metadata.get_draft("form", "claim").body["label"] == "Expense claim (draft)"
    status, answer = post_json(bea, url, {"body": body, "publish": True})
    assert (status, answer["status"]) == (200, "published")
    published = metadata.get_published("form", "claim").body
    assert published["fields"]["notes"]["require_when"] == "amount > 1000"
    assert published["fields"]["iban"]["show_when"] == "category == 'travel'"
    # The list shows the published version and no draft; the JSON view's check answers too.
    row = metadata.listed("form", Definition.objects.all()).get(key="claim")
    assert (row.published_version, row.has_draft) == (answer["version"], False)
    assert post_json(bea, f"{BASE}/design/claim/validate/", {"body": body}) == (200, {"body": []})
    status, answer = post_json(bea, f"{BASE}/design/claim/validate/", {"body": {"label": "x"}})
    assert status == 400 and answer["body"]


def test_the_condition_check_reads_the_forms_own_fields(people, bea):
    body = starters.starter("expense_claim")
    url = f"{BASE}/check/"
    status, answer = post_json(bea, url, {"body": body, "expression": "amount > 1000"})
    assert status == 200 and answer["errors"] == [] and answer["type"]
    status, answer = post_json(bea, url, {"body": body, "expression": "amont > 1000"})
    assert status == 200 and answer["errors"][0]["code"] == "unknown_field"
    status, answer = post_json(bea, url, {"body": body, "expression": "amount +"})
    assert answer["errors"] and answer["errors"][0]["message"]
    # A condition must be true or false; a computed value need not.
    assert post_json(bea, url, {"body": body, "expression": "amount * 2"})[1]["errors"]
    assert post_json(bea, url, {"body": body, "expression": "amount * 2", "condition": False})[1]["errors"] == []
    # A body being edited may be malformed: the check still answers.
    assert post_json(bea, url, {"body": {"fields": 3}, "expression": "1 == 1"})[1]["errors"] == []
    status, answer = post_json(bea, url, {"body": body, "expression": 5})
    assert status == 400 and answer["expression"][0]["code"] == "invalid"


def test_the_preview_is_the_rendered_form(people, bea):
    start(bea, "template:expense_claim", "claim")
    body = starters.starter("expense_claim")
    status, answer = post_json(bea, f"{BASE}/design/claim/preview/", {"body": body})
    assert status == 200
    assert 'data-field="title"' in answer["html"] and 'data-step="evidence"' in answer["html"]
    body["fields"]["ghost"] = {"widget": "text"}
    status, answer = post_json(bea, f"{BASE}/design/claim/preview/", {"body": body})
    assert status == 400 and {error["path"] for error in answer["body"]} >= {"fields/ghost"}


def test_versions_compare_and_roll_back(people, bea):
    start(bea, "template:contact")
    url = f"{BASE}/design/contact/save/"
    body = starters.starter("contact")
    assert post_json(bea, url, {"body": body, "publish": True})[0] == 200
    body["label"] = "Write to us"
    assert post_json(bea, url, {"body": body, "publish": True})[0] == 200
    page = bea.get(f"{BASE}/design/contact/versions/").content.decode()
    assert "Compare with v1" in page and "Roll back to v1" in page
    # The shared versions page, in the form designer's words and links: no export column.
    assert f'href="{BASE}/design/contact/diff/1/2/"' in page and f'action="{BASE}/design/contact/rollback/1/"' in page
    assert "forms_engine/designer.css" in page and "fd-version-archived" in page and "/export/" not in page
    diff = bea.get(f"{BASE}/design/contact/diff/1/2/").content.decode()
    assert "&quot;Write to us&quot;" in diff and "label" in diff  # Values as JSON.
    assert bea.get(f"{BASE}/design/contact/diff/1/9/").status_code == 404
    response = bea.post(f"{BASE}/design/contact/rollback/1/")
    assert response.status_code == 302
    live = metadata.get_published("form", "contact")
    assert (live.version, live.body["label"]) == (3, "Contact")


def test_the_design_page_carries_its_config(people, bea):
    start(bea, "template:expense_claim", "claim")
    response = bea.get(f"{BASE}/design/claim/")
    page = response.content.decode()
    assert 'id="form-designer-config"' in page and "forms_engine/designer.js" in page
    config = designer.config("claim", starters.starter("expense_claim"), urls={})
    assert {"text", "select", "file", "paragraph"} <= set(config["widgets"])
    assert config["widgets"]["select"]["schema"]["properties"]["choices"]
    expense = next(entity for entity in config["entities"] if entity["key"] == "expense")
    amount = next(field for field in expense["fields"] if field["key"] == "amount")
    assert amount["spec"]["widget"] == "number" and amount["schema"]["type"] == "number"
    # The old admin change URL of a version leads to the designer.
    definition = metadata.current("form", "claim")
    assert bea.get(f"{BASE}/{definition.pk}/change/")["Location"].endswith("/design/claim/")
    assert bea.get(f"{BASE}/design/nope/").status_code == 404
