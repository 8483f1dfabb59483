"""BPMN files made by bpmn-js and Camunda Modeler (issue 15, WF-6), vendored unchanged in
bpmn_samples/real/ (see its README): each imports through workflows.bpmn.import_xml with its
layout (every shape's bounds and edge's waypoints of a supported element come back on export,
compared with the numbers in the file), unsupported elements refused by id, type and line, other
modelers' extensions warned and never errors, and a fully supported file gives the same body
after export and import."""

import re
from pathlib import Path

import pytest
from defusedxml import ElementTree

from tests.workflows.bpmn_round_trip import through_bpmn
from workflows import bpmn

REAL = Path(__file__).parent / "bpmn_samples" / "real"
OMG = {bpmn.BPMN, bpmn.BPMNDI, bpmn.DC, bpmn.DI}

# What each file gives: the errors (element, type, line), or None when it imports.
EXPECTED_ERRORS = {
    "bpmn_js_conditions.bpmn": [("Task_2", "task", 12), ("Task_1", "task", 28)],
    "bpmn_js_xor.bpmn": None,
    "bpmn_js_collaboration_participant.bpmn": [("SubProcess_1", "subProcess", 7)],
    "camunda7_job_announcement.bpmn": None,
    "camunda7_invoice_approval.bpmn": None,
    # A timer start event (a cron cycle) and a conditional boundary event: outside the subset.
    "camunda7_order_handling.bpmn": [("Task_1nbdup3", "subProcess", 5), ("StartEvent_1", "timerEventDefinition", 32),
                                     ("BoundaryEvent_1y1bvad", "boundaryEvent", 36)],
    "camunda_modeler_two_pools.bpmn": None,
    "camunda8_cloud_8_0.bpmn": [
        # A marker without an id of its own is named by the element it belongs to.
        ("Activity_0tmvr8k", "multiInstanceLoopCharacteristics", 17),
        ("Activity_19dosz4", "multiInstanceLoopCharacteristics", 32),
        ("Gateway_0v1y6l3", "eventBasedGateway", 47), ("MessageEventDefinition_1gucz9d", "messageEventDefinition", 55),
        ("Event_0cyp3nd", "intermediateCatchEvent", 57), ("Activity_0v05780", "receiveTask", 62),
        ("ErrorEventDefinition_075l6v5", "errorEventDefinition", 72), ("Activity_09495yf", "subProcess", 74),
        ("Event_1j12ud3", "boundaryEvent", 87), ("ErrorEventDefinition_16vp8au", "errorEventDefinition", 108),
        ("Event_0ghtmm6", "intermediateThrowEvent", 111), ("MessageEventDefinition_01kef5q", "messageEventDefinition", 117),
        ("Activity_1knqz62", "manualTask", 120), ("Activity_1mxteew", "scriptTask", 125),
        ("Activity_1d00s75", "sendTask", 133), ("Event_0s4ygc1", "intermediateThrowEvent", 140),
        ("MessageEventDefinition_04t0675", "messageEventDefinition", 150)],
}
IMPORTED = [name for name, errors in EXPECTED_ERRORS.items() if errors is None]


def real(name: str) -> bytes:
    return (REAL / name).read_bytes()


def our_id(file_id: str) -> str:
    """The id import gives an element whose id cannot name a node here (these files' sid-… ids)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", file_id)


def drawn(xml: bytes | str) -> dict:
    """{bpmnElement: numbers} of every shape (bounds) and edge (waypoints), with label bounds, read
    by an XML parser of its own (not the importer's)."""
    root = ElementTree.fromstring(xml.encode() if isinstance(xml, str) else xml)

    def bounds(element):
        found = element.find(f"{{{bpmn.DC}}}Bounds")
        return None if found is None else tuple(float(found.get(name)) for name in ("x", "y", "width", "height"))

    result = {}
    for item in root.iter():
        if item.tag in (f"{{{bpmn.BPMNDI}}}BPMNShape", f"{{{bpmn.BPMNDI}}}BPMNEdge"):
            label = item.find(f"{{{bpmn.BPMNDI}}}BPMNLabel")
            points = [(float(point.get("x")), float(point.get("y"))) for point in item.findall(f"{{{bpmn.DI}}}waypoint")]
            result[our_id(item.get("bpmnElement"))] = (bounds(item), points, None if label is None else bounds(label))
    return result


def assert_layout_kept(source: bytes | str, body: dict) -> None:
    """Every shape and edge the file draws for a node or flow of `body` comes back on export, number for number."""
    supported = {node["id"] for node in body["nodes"]} | {flow["id"] for flow in body["flows"]}
    before = {element: numbers for element, numbers in drawn(source).items() if element in supported}
    after = drawn(bpmn.export(body, key="imported"))
    assert before, "the file draws none of its supported elements"
    assert {element: after[element] for element in before} == before


def foreign_items(tree: bpmn.Element, ancestors: tuple = ()):
    """(element, its ancestors) for each element carrying another modeler's attributes or elements."""
    if (any(namespace not in ("", bpmn.XSI, bpmn.LC) for namespace, _name in tree.attributes)
            or tree.namespace not in OMG | {bpmn.LC} or tree.name == "extensionElements"):
        yield tree, ancestors
        if tree.namespace not in OMG or tree.name == "extensionElements":
            return  # One warning covers the extension's own children.
    for child in tree.children:
        yield from foreign_items(child, (*ancestors, tree))


@pytest.mark.parametrize("name", EXPECTED_ERRORS)
def test_a_real_file_imports_or_is_refused_by_element_type_and_line(name):
    body, warnings, errors = bpmn.import_xml(real(name))
    if EXPECTED_ERRORS[name] is None:
        assert errors == [] and body is not None
    else:
        assert body is None
        assert [(item["element"], item["type"], item["line"]) for item in errors] == EXPECTED_ERRORS[name]
        assert {item["code"] for item in errors} == {"unsupported"}
        for item in errors:  # The message names what is refused and where it sits.
            assert item["type"] in item["message"] and re.search(r"\(line \d+\)", item["message"])


@pytest.mark.parametrize("name", EXPECTED_ERRORS)
def test_other_modelers_extensions_are_warned_never_errors(name):
    _body, warnings, errors = bpmn.import_xml(real(name))
    warned = {item["line"] for item in warnings if item["code"] == "extension_ignored"}
    # Inside an element refused or ignored as a whole (a message, a pool), that covers it.
    covering = {item["line"] for item in errors} | {item["line"] for item in warnings if item["code"] == "ignored"}
    items = list(foreign_items(bpmn.parse(real(name))))
    assert items or name.startswith(("bpmn_js_", "camunda_modeler_"))
    for element, ancestors in items:
        assert element.line in warned or any(ancestor.line in covering for ancestor in ancestors), \
            (element.name, element.line)
    lines = {element.line: element for element in _all(bpmn.parse(real(name)))}
    assert all(lines[item["line"]].namespace == bpmn.BPMN for item in errors)  # No extension is an error.


def _all(tree: bpmn.Element):
    yield tree
    for child in tree.children:
        yield from _all(child)


@pytest.mark.parametrize("name", IMPORTED)
def test_a_real_file_keeps_its_layout_on_export(name):
    body, _warnings, _errors = bpmn.import_xml(real(name))
    assert_layout_kept(real(name), body)
    # Nothing it draws for a supported element was lost on the way in.
    assert set(body["diagram"]["nodes"]) == {node["id"] for node in body["nodes"]}
    assert set(body["diagram"]["flows"]) == {flow["id"] for flow in body["flows"]}


@pytest.mark.parametrize("name", IMPORTED)
def test_a_fully_supported_real_file_gives_the_same_body_after_export_and_import(name):
    body, _warnings, _errors = bpmn.import_xml(real(name))
    assert through_bpmn(body) == body


def test_the_readme_names_every_vendored_file_and_its_licence():
    readme = (REAL / "README.md").read_text()
    for path in REAL.glob("*.bpmn"):
        row = next(line for line in readme.splitlines() if line.startswith(f"| {path.name} |"))
        commit, licence = row.split("|")[4].strip(), row.split("|")[5].strip()
        assert re.fullmatch(r"[0-9a-f]{40}", commit)
        assert (REAL / licence.split()[0]).is_file()
    assert set(EXPECTED_ERRORS) == {path.name for path in REAL.glob("*.bpmn")}


def test_camunda_7_file_with_lanes_conditions_and_a_call_activity():
    body, warnings, _errors = bpmn.import_xml(real("camunda7_job_announcement.bpmn"))
    types = {node["id"]: node["type"] for node in body["nodes"]}
    assert types == {"Event_0nt3pjb": "start", "mail": "service_task", "Event_194gsd3": "end",
                     "publication": "call_activity", "review": "user_task", "Gateway_0o79ay3": "exclusive_gateway",
                     "edit": "user_task", "correct": "user_task", "publish": "user_task"}
    assert next(node for node in body["nodes"] if node["id"] == "publication")["workflow"] == \
        "camunda-testing-job-announcement-publication"
    flows = {flow["id"]: flow for flow in body["flows"]}
    assert flows["Flow_1gfi885"]["condition"] == "approved"  # #{approved}: JUEL's wrapper removed.
    assert flows["Flow_0yjunvn"]["condition"] == "!approved"  # Kept for the designer to mark.
    codes = {(item["line"], item["type"], item["code"]) for item in warnings}
    assert {(2, "definitions", "extension_ignored"),  # modeler:executionPlatform
            (4, "laneSet", "ignored"), (50, "userTask", "extension_ignored"),
            (70, "conditionExpression", "condition_unwrapped"),
            (73, "conditionExpression", "condition_unreadable")} <= codes
    unreadable = next(item for item in warnings if item["code"] == "condition_unreadable")
    assert "Flow_0yjunvn" in unreadable["message"] and "“!approved”" in unreadable["message"]
    assert "not" in unreadable["message"]  # Our language's own reason: "Use “not” to negate a condition."


def test_bpmn2_prefix_and_cdata_conditions_are_read():
    _body, warnings, _errors = bpmn.import_xml(real("bpmn_js_conditions.bpmn"))
    conditions = [(item["line"], item["code"]) for item in warnings if item["type"] == "conditionExpression"]
    assert conditions == [(10, "condition_unwrapped"), (22, "condition_unwrapped")]
    assert "“foo > bar”" in warnings[0]["message"] and "SequenceFlow_3" in warnings[0]["message"]


def test_signavio_style_ids_and_label_styles():
    body, warnings, _errors = bpmn.import_xml(real("bpmn_js_xor.bpmn"))
    assert [node["id"] for node in body["nodes"]] == ["sid_81AA9CF4_08E7_4B17_B1FF_8479FD9E24EA",
                                                     "sid_84DF847F_0735_450E_99C5_A62D974448C7"]
    assert body["diagram"]["nodes"]["sid_84DF847F_0735_450E_99C5_A62D974448C7"] == \
        {"x": 90, "y": 105, "width": 40, "height": 40}
    ignored = [(item["type"], item["line"]) for item in warnings if item["code"] == "ignored"]
    assert ignored == [("association", 16), ("textAnnotation", 18)]


def test_a_pool_drawn_on_the_collaborations_plane_keeps_its_layout():
    """bpmn-js and Camunda Modeler draw a pool's process on the collaboration's plane: it is read."""
    source = real("bpmn_js_collaboration_participant.bpmn").decode()
    as_task = (source.replace('<bpmn2:subProcess id="SubProcess_1">', '<bpmn2:userTask id="SubProcess_1">')
               .replace('<bpmn2:task id="Task_1"/>', "").replace("</bpmn2:subProcess>", "</bpmn2:userTask>"))
    body, warnings, errors = bpmn.import_xml(as_task)
    assert errors == []
    assert [item["type"] for item in warnings] == ["collaboration"]  # No "diagram of another process".
    assert body["diagram"]["nodes"]["SubProcess_1"] == {"x": 294, "y": 98, "width": 200, "height": 150}
    assert body["diagram"]["flows"]["SequenceFlow_1"] == [[210, 173], [294, 173]]
    assert body["diagram"]["labels"]["StartEvent_1"] == {"x": 175, "y": 196, "width": 34, "height": 21}
    assert_layout_kept(as_task, body)
    assert through_bpmn(body) == body


def test_elements_the_diagram_leaves_out_are_placed_and_named():
    source = real("camunda7_invoice_approval.bpmn").decode()
    without_task = re.sub(r'\s*<bpmndi:BPMNShape id="_BPMNShape_UserTask_3".*?</bpmndi:BPMNShape>', "", source,
                          flags=re.DOTALL)
    body, warnings, errors = bpmn.import_xml(without_task)
    assert errors == []
    assert [(item["element"], item["line"]) for item in warnings if item["code"] == "laid_out"] == [("UserTask_1", 11)]
    assert set(body["diagram"]["nodes"]) == {"StartEvent_1", "EndEvent_1", "UserTask_1"}
    assert through_bpmn(body) == body  # The placed task keeps its place from now on.

    without_diagram = re.sub(r"\s*<bpmndi:BPMNDiagram.*</bpmndi:BPMNDiagram>", "", source, flags=re.DOTALL)
    body, warnings, _errors = bpmn.import_xml(without_diagram)
    assert [(item["type"], item["code"]) for item in warnings if item["code"] == "laid_out"] == [("process", "laid_out")]
    assert through_bpmn(body) == body


def test_camunda_assignees_and_candidate_groups_become_assignments_when_the_names_exist(people, acme, make_user):
    from rbac import services as rbac
    from workflows import designer

    def assignments(name, text=None):
        body, warnings, errors = bpmn.import_xml(text or real(name), assignable=bpmn.existing_assignment)
        assert errors == []
        return ({node["id"]: node.get("assign") for node in body["nodes"] if node["type"] == "user_task"},
                {item["element"]: item["code"] for item in warnings if item["code"].startswith("assignment_")})

    # No role "engineering", and Camunda expressions name nobody: each task says so.
    assigned, codes = assignments("camunda7_job_announcement.bpmn")
    assert assigned == {"review": None, "edit": None, "correct": None, "publish": None}
    assert codes == {"review": "assignment_unknown", "edit": "assignment_unknown", "correct": "assignment_unknown",
                     "publish": "assignment_unknown"}
    rbac.create_role("engineering", "Engineering")
    assigned, codes = assignments("camunda7_job_announcement.bpmn")
    assert assigned == {"review": None, "edit": {"role": "engineering"}, "correct": None,
                        "publish": {"role": "engineering"}}
    assert codes["edit"] == codes["publish"] == "assignment_read"

    make_user(acme, "demo")
    assert assignments("camunda7_invoice_approval.bpmn")[0] == {"UserTask_1": {"user": "demo"}}
    # Camunda 8 writes it as an extension element.
    zeebe = real("camunda7_invoice_approval.bpmn").decode().replace(
        ' camunda:assignee="demo">', '><bpmn2:extensionElements><zeebe:assignmentDefinition '
        'xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" candidateGroups="finance" /></bpmn2:extensionElements>')
    assert assignments("", zeebe)[0] == {"UserTask_1": {"role": "finance"}}
    # The hand-written Camunda sample names mia and the finance role, who exist in acme.
    assigned, _codes = assignments("", (REAL.parent / "camunda_modeler_expense.bpmn").read_bytes())
    assert assigned == {"manager": {"user": "mia"}, "finance": {"role": "finance"}}

    # The designer reads a Camunda file so, and marks the condition it cannot read on its flow.
    checked = designer.check(real("camunda7_job_announcement.bpmn").decode())
    assert next(node for node in checked.body["nodes"] if node["id"] == "edit")["assign"] == {"role": "engineering"}
    assert any(problem["node"] == "Flow_0yjunvn" and "not" in problem["message"] for problem in checked.problems)


def test_of_two_pools_the_executable_process_is_read_and_the_other_named():
    body, warnings, errors = bpmn.import_xml(real("camunda_modeler_two_pools.bpmn"))
    assert errors == []
    assert [node["id"] for node in body["nodes"]] == ["StartEvent_10fksg9"]
    assert body["diagram"]["nodes"] == {"StartEvent_10fksg9": {"x": 252, "y": 422, "width": 36, "height": 36}}
    assert [(item["element"], item["type"], item["line"], item["code"]) for item in warnings] == [
        ("Collaboration_1hcwsxy", "collaboration", 3, "ignored"), ("Process_1tp2lk4", "process", 7, "ignored")]
