"""BPMN 2.0 XML (WF-6): export then import gives the same body (layout included); files written
by bpmn-js, Camunda Modeler (7 and 8) and Signavio import with their layout, other modelers'
extensions ignored with warnings; unsupported elements refused by id, type and line; XXE and
billion laughs refused."""

from pathlib import Path

import pytest

from tests.workflows.bpmn_round_trip import through_bpmn
from workflows import bpmn

SAMPLES = Path(__file__).parent / "bpmn_samples"

EXPENSE_APPROVAL = {
    "label": "Expense approval", "entity": "expense", "description": "Claims: manager, then finance above 1000.",
    "nodes": [
        {"id": "claim", "type": "start", "label": "Claim submitted", "trigger": {"form": "expense_claim"}},
        {"id": "set_submitted", "type": "service_task", "label": "Mark submitted", "action": "set_fields",
         "fields": {"status": "'submitted'"}},
        {"id": "manager", "type": "user_task", "label": "Manager approval", "task": {"kind": "approval"},
         "assign": {"manager_of": "submitted_by"}, "approvers": {"rule": "n_of_m", "n": 2},
         "documentation": "Line managers approve first.",
         "deadline": {"remind_after": "P2D", "escalate_after": "P5D", "escalate_to": {"role": "finance"},
                      "on_expiry": "escalate"}},
        {"id": "big", "type": "exclusive_gateway", "label": "Over 1000?", "default": "f_small"},
        {"id": "finance", "type": "user_task", "label": "Finance approval", "task": {"kind": "form", "form": "check"},
         "assign": {"role": "finance"}},
        {"id": "fork", "type": "parallel_gateway"},
        {"id": "approved_fields", "type": "service_task", "action": "set_fields", "fields": {"status": "'approved'"}},
        {"id": "hook", "type": "service_task", "action": "webhook", "event": "expense.approved"},
        {"id": "join", "type": "parallel_gateway"},
        {"id": "tell", "type": "service_task", "action": "notify", "to": {"field": "submitted_by"},
         "message": "Your expense {{ title }} was rejected: {{ comment }}"},
        {"id": "wait", "type": "timer", "label": "An hour", "duration": "PT1H"},
        {"id": "sub", "type": "call_activity", "workflow": "payout"},
        {"id": "done", "type": "end", "label": "Approved", "outcome": "approved"},
        {"id": "refused", "type": "end", "outcome": "rejected"},
    ],
    "flows": [
        {"id": "f1", "source": "claim", "target": "set_submitted"},
        {"id": "f2", "source": "set_submitted", "target": "manager"},
        {"id": "f_rej", "source": "manager", "target": "tell", "outcome": "rejected"},
        {"id": "f_ok", "source": "manager", "target": "big", "outcome": "approved"},
        {"id": "f_big", "source": "big", "target": "finance", "label": "yes", "condition": "amount > 1000 && title != \"<x>\""},
        {"id": "f_small", "source": "big", "target": "fork", "label": "no"},
        {"id": "f3", "source": "finance", "target": "fork", "outcome": "completed"},
        {"id": "f4", "source": "fork", "target": "approved_fields"},
        {"id": "f5", "source": "fork", "target": "hook"},
        {"id": "f6", "source": "approved_fields", "target": "join"},
        {"id": "f7", "source": "hook", "target": "join"},
        {"id": "f8", "source": "join", "target": "wait"},
        {"id": "f9", "source": "wait", "target": "sub"},
        {"id": "f10", "source": "sub", "target": "done"},
        {"id": "f11", "source": "tell", "target": "refused"},
    ],
}


def laid_out(body: dict) -> dict:
    """`body` with a diagram of odd coordinates (fractions, bends) and label bounds."""
    nodes = {node["id"]: {"x": 100 + 150 * index, "y": 80.5 + (index % 3) * 40, "width": 100, "height": 80}
             for index, node in enumerate(body["nodes"])}
    flows = {flow["id"]: [[10 * index, 5], [10 * index + 7.25, 40], [10 * index + 30, 40]]
             for index, flow in enumerate(body["flows"])}
    labels = {"big": {"x": 400, "y": 60, "width": 56, "height": 14}, "f_big": {"x": 494, "y": 99.5, "width": 18, "height": 14}}
    return {**body, "diagram": {"nodes": nodes, "flows": flows, "labels": labels}}


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def test_export_then_import_gives_the_same_body_with_its_layout():
    body = laid_out(EXPENSE_APPROVAL)
    assert through_bpmn(body) == body


def test_values_that_read_as_json_keep_their_type():
    body = {"label": "Odd values", "nodes": [
        {"id": "s", "type": "start", "trigger": {}},
        {"id": "t", "type": "service_task", "action": "set_fields", "text_number": "2", "number": 2, "flag": True,
         "text_true": "true", "text_list": "[1]", "none": None, "quote": "\"quoted\"", "empty": "", "unicode": "报销 ✓"},
        {"id": "e", "type": "end", "outcome": "completed"}],
        "flows": [{"id": "a", "source": "s", "target": "t"}, {"id": "b", "source": "t", "target": "e"}]}
    assert through_bpmn(body) == body


def test_texts_keep_their_spaces_and_lose_only_a_pretty_printers_line_breaks():
    body = {"label": "Texts\nand lines", "nodes": [
        {"id": "s", "type": "start", "documentation": "two\nlines  "},
        {"id": "t", "type": "service_task", "action": "notify", "message": "a\nb\t c & <d>"},
        {"id": "w", "type": "timer", "duration": "PT1H"}, {"id": "e", "type": "end"}],
        "flows": [{"id": "a", "source": "s", "target": "t", "condition": " amount > 1 "},
                  {"id": "b", "source": "t", "target": "w"}, {"id": "c", "source": "w", "target": "e"}]}
    assert through_bpmn(body) == body
    pretty = ('<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><process id="p">'
              '<startEvent id="s"><documentation>\n    Hello\n  </documentation></startEvent>'
              '<sequenceFlow id="f" sourceRef="s" targetRef="s"><conditionExpression>\n  a &gt; 1\n'
              '</conditionExpression></sequenceFlow></process></definitions>')
    imported = bpmn.import_xml(pretty)[0]
    assert imported["nodes"][0]["documentation"] == "Hello" and imported["flows"][0]["condition"] == "a > 1"


def test_a_body_without_diagram_gets_a_layout_on_export():
    imported, warnings, errors = bpmn.import_xml(bpmn.export(EXPENSE_APPROVAL, key="expense_approval"))
    assert not warnings and not errors
    diagram = imported.pop("diagram")
    assert imported == EXPENSE_APPROVAL
    assert set(diagram["nodes"]) == {node["id"] for node in EXPENSE_APPROVAL["nodes"]}
    assert set(diagram["flows"]) == {flow["id"] for flow in EXPENSE_APPROVAL["flows"]}
    positions = {(box["x"], box["y"]) for box in diagram["nodes"].values()}
    assert len(positions) == len(diagram["nodes"])  # No two nodes on top of each other.
    assert diagram["nodes"]["claim"]["x"] < diagram["nodes"]["manager"]["x"] < diagram["nodes"]["done"]["x"]


def test_the_export_is_bpmn_with_our_namespace():
    xml = bpmn.export(laid_out(EXPENSE_APPROVAL), key="expense_approval")
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions ')
    assert 'xmlns:lc="https://lowcode.example/bpmn"' in xml
    assert '<bpmn:process id="expense_approval" isExecutable="true" name="Expense approval" lc:entity="expense">' in xml
    assert '<bpmn:exclusiveGateway id="big" name="Over 1000?" default="f_small">' in xml
    assert 'lc:assign="{&quot;role&quot;:&quot;finance&quot;}"' in xml
    assert '<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">PT1H</bpmn:timeDuration>' in xml
    assert '<bpmn:callActivity id="sub" calledElement="payout">' in xml
    assert '<bpmndi:BPMNShape id="big_di" bpmnElement="big" isMarkerVisible="true">' in xml


def test_a_bpmn_js_file_imports_with_its_layout():
    body, warnings, errors = bpmn.import_xml(sample("bpmn_js_expense.bpmn"))
    assert errors == []
    assert [(node["id"], node["type"]) for node in body["nodes"]] == [
        ("StartEvent_1", "start"), ("Activity_1h7y0ek", "user_task"), ("Gateway_0r3lz0q", "exclusive_gateway"),
        ("Activity_0d6m2bq", "user_task"), ("Event_1q3s4ab", "end")]
    assert body["nodes"][2]["default"] == "Flow_06ibc5m"
    assert {"id": "Flow_1y8zqpu", "source": "Gateway_0r3lz0q", "target": "Activity_0d6m2bq", "label": "yes",
            "condition": "amount > 1000"} in body["flows"]
    assert body["diagram"]["nodes"]["Activity_1h7y0ek"] == {"x": 270, "y": 77, "width": 100, "height": 80}
    assert body["diagram"]["flows"]["Flow_06ibc5m"] == [[450, 142], [450, 260], [710, 260], [710, 135]]
    assert body["diagram"]["labels"]["Gateway_0r3lz0q"] == {"x": 422, "y": 62, "width": 56, "height": 14}
    assert "TextAnnotation_1x2ab3c" not in body["diagram"]["nodes"]
    assert [(item["element"], item["type"], item["line"]) for item in warnings] == [
        ("TextAnnotation_1x2ab3c", "textAnnotation", 31), ("Association_0zq9k1m", "association", 34),
        ("Activity_1h7y0ek_di", "BPMNShape", 44)]
    assert "bpmn-js" in warnings[2]["message"]
    # And our export of it imports as the same body.
    assert through_bpmn(body) == body


def test_a_camunda_modeler_file_imports_and_its_extensions_are_warned_about():
    body, warnings, errors = bpmn.import_xml(sample("camunda_modeler_expense.bpmn"))
    assert errors == []
    types = {node["id"]: node["type"] for node in body["nodes"]}
    assert types == {"StartEvent_1": "start", "manager": "user_task", "big": "exclusive_gateway", "finance": "user_task",
                     "fork": "parallel_gateway", "mark_approved": "service_task", "wait": "timer",
                     "payout": "call_activity", "join": "parallel_gateway", "done": "end"}
    assert body["label"] == "Expense approval"
    assert body["description"] == "Expense claims: the manager approves, finance too above 1000."
    assert next(node for node in body["nodes"] if node["id"] == "wait")["duration"] == "PT1H"
    assert next(node for node in body["nodes"] if node["id"] == "payout")["workflow"] == "payout"
    assert next(flow for flow in body["flows"] if flow["id"] == "Flow_big")["condition"] == "amount > 1000"
    assert "assign" not in next(node for node in body["nodes"] if node["id"] == "manager")  # camunda:assignee ignored
    assert body["diagram"]["nodes"]["wait"]["x"] == 762.5
    assert len(body["diagram"]["nodes"]) == 10 and len(body["diagram"]["flows"]) == 11
    by_line = {(item["line"], item["type"], item["code"]) for item in warnings}
    assert (3, "process", "extension_ignored") in by_line
    assert (8, "userTask", "extension_ignored") in by_line
    assert (9, "extensionElements", "extension_ignored") in by_line
    assert (58, "conditionExpression", "condition_unwrapped") in by_line
    manager = next(item for item in warnings if item["element"] == "manager")
    assert "Camunda" in manager["message"] and "line 8" in manager["message"]


def test_unsupported_elements_are_refused_by_id_type_and_line():
    body, warnings, errors = bpmn.import_xml(sample("camunda8_zeebe_unsupported.bpmn"))
    assert body is None
    assert [(item["element"], item["type"], item["line"], item["code"]) for item in errors] == [
        ("MessageEventDefinition_1", "messageEventDefinition", 6, "unsupported"),
        ("compute_total", "scriptTask", 8, "unsupported"),
        ("Gateway_1y2z3a4", "inclusiveGateway", 15, "unsupported"),
        ("ship_late", "boundaryEvent", 26, "unsupported")]
    assert "scriptTask “compute_total” (line 8)" in errors[1]["message"]
    assert any(item["type"] == "extensionElements" and "Zeebe" in item["message"] for item in warnings)


def test_a_signavio_file_imports_with_ids_renamed():
    body, warnings, errors = bpmn.import_xml(sample("signavio_review.bpmn"))
    assert errors == []
    assert [node["id"] for node in body["nodes"]] == ["sid_START", "sid_REVIEW", "sid_END"]
    assert body["flows"][0] == {"id": "sid_F1", "source": "sid_START", "target": "sid_REVIEW"}
    assert body["diagram"]["nodes"]["sid_END"] == {"x": 340, "y": 116, "width": 28, "height": 28}
    assert body["diagram"]["flows"]["sid_F2"] == [[295, 130], [340, 130]]
    renamed = [item for item in warnings if item["code"] == "renamed"]
    assert [(item["element"], item["line"]) for item in renamed] == [
        ("sid-START", 7), ("sid-REVIEW", 13), ("sid-END", 20), ("sid-F1", 23), ("sid-F2", 24)]
    assert sum("Signavio" in item["message"] for item in warnings) == 3


@pytest.mark.parametrize("name", ["xxe.bpmn", "billion_laughs.bpmn"])
def test_entities_and_dtds_are_refused(name):
    body, warnings, errors = bpmn.import_xml(sample(name))
    assert body is None and warnings == []
    assert [item["code"] for item in errors] == ["unreadable"]
    assert "DTD" in errors[0]["message"]


@pytest.mark.parametrize(("data", "message"), [
    (b"<definitions", "not well-formed XML (line 1"),
    (b"<?xml version='1.0'?>\n<root/>", "not a BPMN 2.0 file"),
    (b'<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"/>', "exactly one process"),
    (b"x" * (bpmn.MAX_BYTES + 1), "larger than 5 MB"),
])
def test_files_that_are_not_bpmn_are_refused_with_a_reason(data, message):
    body, _warnings, errors = bpmn.import_xml(data)
    assert body is None and message in errors[0]["message"]


def test_a_timer_without_duration_is_refused():
    xml = bpmn.export(laid_out(EXPENSE_APPROVAL)).replace(
        '<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">PT1H</bpmn:timeDuration>',
        '<bpmn:timeCycle xsi:type="bpmn:tFormalExpression">R3/PT1H</bpmn:timeCycle>')
    body, _warnings, errors = bpmn.import_xml(xml)
    assert body is None
    assert [(item["element"], item["type"]) for item in errors] == [("wait", "intermediateCatchEvent")]


@pytest.mark.parametrize(("written", "condition", "code"), [
    ("${amount &gt; 1000}", "amount > 1000", "condition_unwrapped"),  # Camunda 7 (JUEL)
    ("#{ amount &gt; 1000 }", "amount > 1000", "condition_unwrapped"),
    ("= amount &gt; 1000", "amount > 1000", "condition_unwrapped"),  # Camunda 8 (FEEL)
    ('=reviewOutcome = "approved"', 'reviewOutcome = "approved"', "condition_unreadable"),
    ("${!approved}", "!approved", "condition_unreadable"),
    ("amount &gt; 1000 &amp;&amp; x", "amount > 1000 && x", None),  # Ours: the designer checks it.
])
def test_other_modelers_conditions_lose_their_wrapper_and_unreadable_ones_are_named(written, condition, code):
    xml = bpmn.export(laid_out(EXPENSE_APPROVAL)).replace(
        "amount &gt; 1000 &amp;&amp; title != \"&lt;x&gt;\"", written)
    body, warnings, errors = bpmn.import_xml(xml)
    assert errors == []
    assert next(flow for flow in body["flows"] if flow["id"] == "f_big")["condition"] == condition
    assert [item["code"] for item in warnings] == ([code] if code else [])
    if code:
        assert "“f_big”" in warnings[0]["message"] and f"“{condition}”" in warnings[0]["message"]
