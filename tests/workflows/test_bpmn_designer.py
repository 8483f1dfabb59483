"""The workflow designer's server side (WF-7) and BPMN in admin (WF-6): who may design (bea yes,
alice 403), starting a workflow, the live check naming problems by element, save draft and
publish refused with the problems and accepted when fixed, the condition check, BPMN export
(which imports as the same body), versions with diff and roll back; bad input answers 400."""

import json

import pytest

from metadata import services as metadata
from tests.designers import post_json
from tests.workflows.bpmn_round_trip import through_bpmn
from workflows import bpmn, designer

BASE = "/admin/workflows/workflowdefinition"


def approval(*, default: bool = True, assignee: bool = True) -> dict:
    """A small expense approval: manager, then finance above 1000; laid out."""
    body = {"label": "Expense approval", "entity": "expense", "nodes": [
        {"id": "claim", "type": "start", "label": "Claim"},
        {"id": "manager", "type": "user_task", "label": "Manager approval", "task": {"kind": "approval"},
         **({"assign": {"user": "mia"}} if assignee else {})},
        {"id": "big", "type": "exclusive_gateway", "label": "Over 1000?", **({"default": "f_small"} if default else {})},
        {"id": "finance", "type": "user_task", "label": "Finance approval", "task": {"kind": "approval"},
         "assign": {"role": "finance"}},
        {"id": "approved", "type": "end", "outcome": "approved"},
        {"id": "rejected", "type": "end", "outcome": "rejected"}],
        "flows": [
            {"id": "f1", "source": "claim", "target": "manager"},
            {"id": "f_ok", "source": "manager", "target": "big", "outcome": "approved"},
            {"id": "f_no", "source": "manager", "target": "rejected", "outcome": "rejected"},
            {"id": "f_big", "source": "big", "target": "finance", "condition": "amount > 1000"},
            {"id": "f_small", "source": "big", "target": "approved"},
            {"id": "f_fin_ok", "source": "finance", "target": "approved", "outcome": "approved"},
            {"id": "f_fin_no", "source": "finance", "target": "rejected", "outcome": "rejected"}]}
    return {**body, "diagram": bpmn.import_xml(bpmn.export(body))[0]["diagram"]}


def start(client, key="claim_approval", label="Expense approval"):
    return client.post(f"{BASE}/add/", {"key": key, "label": label})


def test_only_designers_reach_the_workflows_admin(bea, alice):
    assert start(bea).status_code == 302
    design = f"{BASE}/design/claim_approval/"
    for url in (f"{BASE}/", f"{BASE}/add/", design, f"{design}versions/", f"{design}export/"):
        assert bea.get(url).status_code == 200, url
        assert alice.get(url).status_code == 403, url
    xml = bpmn.export(approval())
    for url, data in ((f"{design}check/", {"xml": xml}), (f"{design}save/", {"xml": xml}),
                      (f"{BASE}/expression/", {"expression": "1"})):
        assert alice.post(url, json.dumps(data), content_type="application/json").status_code == 403, url
    assert start(alice, "sneaky").status_code == 403
    assert metadata.get_draft("workflow", "sneaky") is None


def test_a_workflow_starts_as_a_start_joined_to_an_end(bea):
    response = start(bea)
    assert response.status_code == 302 and response["Location"].endswith("/design/claim_approval/")
    body = metadata.get_draft("workflow", "claim_approval").body
    assert [node["type"] for node in body["nodes"]] == ["start", "end"]
    assert start(bea).status_code == 200  # Taken: the page says so.
    assert "exists already" in start(bea).content.decode()
    page = start(bea, "Not A Key", "").content.decode()
    assert "Give the workflow a name." in page


def test_the_designer_page_carries_the_diagram_and_the_choices(bea):
    start(bea)
    response = bea.get(f"{BASE}/design/claim_approval/")
    config = response.context["config"]
    assert config["xml"] == bpmn.export(metadata.get_draft("workflow", "claim_approval").body, key="claim_approval")
    assert "expense" in [entity["key"] for entity in config["choices"]["entities"]]
    assert "finance" in [role["key"] for role in config["choices"]["roles"]]
    assert {"mia", "frank"} <= set(config["choices"]["users"])
    assert "set_fields" in [action["type"] for action in config["choices"]["actions"]]
    html = response.content.decode()
    assert 'id="workflow-designer-config"' in html and "bpmn-modeler.production.min.js" in html
    assert "<script>" not in html.replace('<script type="application/json"', "")  # CSP: no inline script


def test_the_check_names_problems_by_element_and_save_refuses_them(bea):
    start(bea)
    design = f"{BASE}/design/claim_approval/"
    status, result = post_json(bea, f"{design}check/", {"xml": bpmn.export(approval(default=False, assignee=False))})
    assert status == 200 and result["errors"] == []
    problems = {(problem["node"], problem["code"]) for problem in result["problems"]}
    assert ("big", "no_default") in problems or any(node == "big" for node, _code in problems)
    assert any(node == "manager" for node, _code in problems)
    status, refused = post_json(bea, f"{design}save/", {"xml": bpmn.export(approval(default=False))})
    assert status == 400 and any(problem["node"] == "big" for problem in refused["body"])
    assert [node["type"] for node in metadata.get_draft("workflow", "claim_approval").body["nodes"]] == ["start", "end"]
    # Fixed: saved as the draft, then published.
    status, saved = post_json(bea, f"{design}save/", {"xml": bpmn.export(approval(), key="claim_approval")})
    assert status == 200 and saved["status"] == "draft", saved
    assert metadata.get_draft("workflow", "claim_approval").body == approval()
    status, published = post_json(bea, f"{design}save/", {"xml": bpmn.export(approval()), "publish": True,
                                                          "note": "first"})
    assert status == 200 and published["status"] == "published"
    assert metadata.get_published("workflow", "claim_approval").body == approval()


def test_problems_of_the_whole_graph_name_their_node(bea):
    start(bea)
    body = approval()
    body["nodes"].append({"id": "stray", "type": "user_task", "assign": {"user": "mia"}})
    body["flows"].append({"id": "f_stray", "source": "stray", "target": "approved"})
    status, result = post_json(bea, f"{BASE}/design/claim_approval/check/", {"xml": bpmn.export(body)})
    assert status == 200
    assert [(problem["node"], problem["code"]) for problem in result["problems"]] == [("stray", "unreachable")]


def test_xml_the_import_refuses_is_a_400_naming_element_type_and_line(bea):
    start(bea)
    design = f"{BASE}/design/claim_approval/"
    xml = bpmn.export(approval()).replace("<bpmn:userTask id=\"finance\"", "<bpmn:scriptTask id=\"finance\"").replace(
        "</bpmn:userTask>\n    <bpmn:endEvent id=\"approved\"", "</bpmn:scriptTask>\n    <bpmn:endEvent id=\"approved\"")
    status, result = post_json(bea, f"{design}check/", {"xml": xml})
    assert status == 200 and [(error["element"], error["type"]) for error in result["errors"]] == [("finance", "scriptTask")]
    assert result["errors"][0]["line"] > 1
    status, refused = post_json(bea, f"{design}save/", {"xml": xml})
    assert status == 400 and refused["xml"][0]["element"] == "finance"
    for data in ({}, {"xml": ""}, {"xml": 3}, [1]):
        status, result = post_json(bea, f"{design}save/", data)
        assert status == 400 and result["xml"][0]["code"] == "invalid"
    status, result = post_json(bea, f"{design}save/", {"xml": "<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>"})
    assert status == 400 and result["xml"][0]["code"] == "unreadable"
    assert bea.post(f"{design}save/", "not json", content_type="application/json").status_code == 400
    assert bea.get(f"{BASE}/design/nothing/").status_code == 404


def test_the_condition_check_reads_the_entity_fields(bea):
    status, result = post_json(bea, f"{BASE}/expression/", {"entity": "expense", "expression": "amount > 1000"})
    assert status == 200 and result["errors"] == [] and result["type"]
    status, result = post_json(bea, f"{BASE}/expression/", {"entity": "expense", "expression": "amount > "})
    assert status == 200 and result["errors"]
    status, result = post_json(bea, f"{BASE}/expression/", {"entity": "expense", "expression": "nosuchfield > 1"})
    assert result["errors"]
    status, result = post_json(bea, f"{BASE}/expression/", {"expression": "outcome == 'approved'"})
    assert result["errors"] == []
    assert post_json(bea, f"{BASE}/expression/", {"entity": "expense"})[0] == 400


def test_export_downloads_bpmn_that_imports_as_the_same_body(bea):
    start(bea)
    designer.save("claim_approval", bpmn.export(approval()), author=None, publish=True)
    response = bea.get(f"{BASE}/design/claim_approval/export/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="claim_approval-v1.bpmn"'
    body, warnings, errors = bpmn.import_xml(response.content)
    assert body == approval() and warnings == [] and errors == []
    assert bea.get(f"{BASE}/design/claim_approval/export/?version=1").status_code == 200
    assert bea.get(f"{BASE}/design/claim_approval/export/?version=9").status_code == 404
    assert bea.get(f"{BASE}/design/claim_approval/export/?version=x").status_code == 404
    listing = bea.get(f"{BASE}/").content.decode()
    assert "/design/claim_approval/export/" in listing and "Expense approval" in listing


def test_versions_diff_and_roll_back(bea):
    start(bea)
    design = f"{BASE}/design/claim_approval/"
    post_json(bea, f"{design}save/", {"xml": bpmn.export(approval()), "publish": True})
    changed = approval()
    changed["nodes"][1]["assign"] = {"user": "frank"}
    post_json(bea, f"{design}save/", {"xml": bpmn.export(changed), "publish": True})
    page = bea.get(f"{design}versions/").content.decode()
    assert "Compare with v1" in page and "Roll back to v1" in page
    # The shared versions page, in the workflow designer's links, with each version's BPMN export.
    assert f'href="{design}diff/1/2/"' in page and f'action="{design}rollback/1/"' in page
    assert f'href="{design}export/?version=1"' in page and "workflows/designer.css" in page
    assert bea.get(f"{design}export/?version=1").status_code == 200
    diff = bea.get(f"{design}diff/1/2/").content.decode()
    assert "&quot;frank&quot;" in diff and "&quot;mia&quot;" in diff  # Values as JSON, as in the form designer.
    assert f'href="{design}versions/"' in diff
    assert bea.get(f"{design}diff/2/9/").status_code == 404
    response = bea.post(f"{design}rollback/1/")
    assert response.status_code == 302
    live = metadata.get_published("workflow", "claim_approval")
    assert live.version == 3 and live.body["nodes"][1]["assign"] == {"user": "mia"}


# ---- The scenario's process through BPMN behaves identically (issue 15's acceptance) ----

@pytest.fixture
def reimported(scenario):
    """The scenario's Expense approval exported as BPMN, imported back through the designer's save
    and published as its next version: the engine tests then run on the re-imported definition."""
    from tests.workflows.conftest import approval_body

    body = approval_body()
    assert through_bpmn(body, key="expense_approval") == body
    xml = bpmn.export(metadata.get_published("workflow", "expense_approval").body, key="expense_approval")
    saved, checked = designer.save("expense_approval", xml, author=scenario["bea"], publish=True)
    assert saved is not None, checked.as_json()
    assert saved.version == 2 and saved.body == body
    return saved


@pytest.mark.parametrize("engine_test", ["test_small_claim_is_approved_by_the_manager",
                                         "test_big_claim_goes_to_finance_after_the_manager",
                                         "test_rejection_tells_the_submitter_with_the_comment"])
def test_the_engine_tests_pass_on_the_reimported_definition(reimported, scenario, expense, engine_test):
    from tests.workflows import test_engine

    getattr(test_engine, engine_test)(scenario, expense)
    from viewflow.workflow.models import Process

    assert "_expense_approval_v2" in Process.objects.get().flow_class.__name__  # It ran on the re-imported version.
