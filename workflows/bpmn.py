"""BPMN 2.0 XML import and export of workflow bodies (WF-6).

The subset: start, user, service and end events/tasks, exclusive and parallel gateways, timer
catch events, call activities and sequence flows, with their diagram interchange (BPMNDI:
shapes, edge waypoints, label bounds) kept as the body's `diagram`. What BPMN has no word for
(assignment, task kind and form, service actions, outcomes, deadlines, the entity) travels in
attributes of our own namespace, `lc:<key>` on the element: a text as it is, any other value
(or a text that would read as JSON) as JSON, so export then import gives the same body.

Files are parsed by defusedxml's expat reader with DTDs, entities and external references
forbidden (no XXE, no billion laughs). Other modelers' extensions (Camunda, Zeebe, Signavio,
bpmn-js colours) are ignored with a warning; elements outside the subset are errors naming the
element's id, type and line: nothing is dropped silently. Real files of bpmn-js and Camunda
Modeler (tests/workflows/bpmn_samples/real) are read as those tools write them: any namespace
prefix, a pool drawn on its collaboration's plane, JUEL ${…} and FEEL =… conditions (unwrapped,
and named when our language cannot read them), Camunda's assignee and candidate group (an
assignment when they name an existing user or role), elements the diagram leaves out placed.
"""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
import xml.sax
from collections.abc import Callable
from dataclasses import dataclass, field

from defusedxml import DefusedXmlException
from defusedxml.expatreader import create_parser
from django.utils.translation import gettext as _

from lowcode.expressions import compile_expression
from lowcode.expressions.exceptions import ExpressionError
from workflows.definitions import ELEMENT_ID

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
LC = "https://lowcode.example/bpmn"
CAMUNDA = "http://camunda.org/schema/1.0/bpmn"
ZEEBE = "http://camunda.org/schema/zeebe/1.0"
PREFIXES = {"bpmn": BPMN, "bpmndi": BPMNDI, "dc": DC, "di": DI, "xsi": XSI, "lc": LC}
for _prefix, _uri in PREFIXES.items():
    ET.register_namespace(_prefix, _uri)

MAX_BYTES = 5 * 1024 * 1024
# Whether an assignment ({"user": name} or {"role": key}) names someone who exists (existing_assignment).
Assignable = Callable[[dict], bool]

# Body node type <-> BPMN element (the timer is an intermediate catch event with a timer).
ELEMENT_OF_TYPE = {
    "start": "startEvent", "end": "endEvent", "user_task": "userTask", "service_task": "serviceTask",
    "exclusive_gateway": "exclusiveGateway", "parallel_gateway": "parallelGateway",
    "timer": "intermediateCatchEvent", "call_activity": "callActivity",
}
TYPE_OF_ELEMENT = {element: node_type for node_type, element in ELEMENT_OF_TYPE.items()}
# Node and flow keys BPMN itself carries (never written as lc: attributes).
STANDARD_NODE_KEYS = {"id", "type", "label", "documentation", "default", "duration", "workflow"}
STANDARD_FLOW_KEYS = {"id", "source", "target", "label", "condition"}
STANDARD_PROCESS_KEYS = {"label", "description", "nodes", "flows", "diagram"}
# Elements that carry no behaviour: ignored with a warning.
IGNORED_ELEMENTS = {"textAnnotation", "association", "group", "category", "laneSet",
                    "dataObject", "dataObjectReference", "dataStoreReference", "ioSpecification",
                    "dataInputAssociation", "dataOutputAssociation", "property"}
# Derived from the flows: read from sourceRef/targetRef instead.
DERIVED_ELEMENTS = {"incoming", "outgoing"}
KNOWN_MODELERS = {
    CAMUNDA: "Camunda", ZEEBE: "Zeebe",
    "http://camunda.org/schema/modeler/1.0": "Camunda Modeler", "http://www.signavio.com": "Signavio",
    "http://bpmn.io/schema/bpmn/biocolor/1.0": "bpmn-js", "http://www.omg.org/spec/BPMN/non-normative/color/1.0": "bpmn-js",
}


# ---- Reading: a small tree with line numbers ----

@dataclass
class Element:
    namespace: str
    name: str
    attributes: dict  # {(namespace or "", name): value}
    line: int
    children: list = field(default_factory=list)
    text: str = ""
    parent: Element | None = field(default=None, repr=False, compare=False)

    def get(self, name: str, default=None):
        return self.attributes.get(("", name), default)

    def find(self, namespace: str, name: str) -> list[Element]:
        return [child for child in self.children if child.namespace == namespace and child.name == name]


class _TreeBuilder(xml.sax.handler.ContentHandler):
    def __init__(self):
        super().__init__()
        self.root: Element | None = None
        self.stack: list[Element] = []
        self.locator = None

    def setDocumentLocator(self, locator):  # noqa: N802 (SAX's name)
        self.locator = locator

    def startElementNS(self, name, qname, attributes):  # noqa: N802
        element = Element(name[0] or "", name[1], {(ns or "", local): value for (ns, local), value in attributes.items()},
                          self.locator.getLineNumber() if self.locator else 0)
        if self.stack:
            self.stack[-1].children.append(element)
            element.parent = self.stack[-1]
        else:
            self.root = element
        self.stack.append(element)

    def endElementNS(self, name, qname):  # noqa: N802
        self.stack.pop()

    def characters(self, content):
        if self.stack:
            self.stack[-1].text += content


class BPMNError(Exception):
    """The file cannot be read at all (not XML, forbidden XML features, too big)."""


def parse(data: bytes | str) -> Element:
    """The XML tree of `data`, read with DTDs, entities and external references forbidden.

    :raises BPMNError: saying why the file cannot be read (with its line when XML is broken).
    """
    if isinstance(data, str):
        data = data.encode()
    if len(data) > MAX_BYTES:
        raise BPMNError(_("The file is larger than %(size)s MB.") % {"size": MAX_BYTES // (1024 * 1024)})
    builder = _TreeBuilder()
    parser = create_parser(forbid_dtd=True, forbid_entities=True, forbid_external=True)
    parser.setFeature(xml.sax.handler.feature_namespaces, True)
    parser.setContentHandler(builder)
    try:
        parser.parse(io.BytesIO(data))
    except DefusedXmlException:
        raise BPMNError(_("The file declares a DTD, entities or external references, which are refused.")) from None
    except xml.sax.SAXParseException as error:
        raise BPMNError(_("This is not well-formed XML (line %(line)s: %(error)s).")
                        % {"line": error.getLineNumber(), "error": error.getMessage()}) from None
    return builder.root


# ---- lc: attribute values ----

def encode_value(value) -> str:
    """A body value as an lc: attribute: a text as it is unless it would read as JSON; else JSON."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def decode_value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


# ---- Import ----

@dataclass
class _Report:
    warnings: list = field(default_factory=list)
    errors: list = field(default_factory=list)

    @staticmethod
    def _item(element: Element, code: str, message: str) -> dict:
        """The item names the element, or for one without an id (a condition, a loop marker,
        an extension) the element it belongs to, so the designer can mark it."""
        owner = element
        while owner.parent is not None and not owner.get("id"):
            owner = owner.parent
        return {"element": owner.get("id", ""), "type": element.name, "line": element.line,
                "code": code, "message": message}

    def warn(self, element: Element, code: str, message: str) -> None:
        self.warnings.append(self._item(element, code, message))

    def error(self, element: Element, code: str, message: str) -> None:
        self.errors.append(self._item(element, code, message))


def _describe(element: Element) -> str:
    return (_("%(type)s “%(id)s” (line %(line)s)") % {"type": element.name, "id": element.get("id"), "line": element.line}
            if element.get("id") else _("%(type)s (line %(line)s)") % {"type": element.name, "line": element.line})


def _lc_values(element: Element, reserved: set[str], report: _Report) -> dict:
    """The element's lc: attributes as body keys; foreign attributes warned about, once per element."""
    values = {}
    for (namespace, name), text in element.attributes.items():
        if namespace != LC:
            continue
        if name in reserved:
            report.warn(element, "reserved_attribute", _("%(element)s: lc:%(name)s is ignored; BPMN says that.")
                        % {"element": _describe(element), "name": name})
        else:
            values[name] = decode_value(text)
    _foreign_attributes(element, report)
    return values


def _foreign_attributes(element: Element, report: _Report) -> None:
    """Warn, once per element, about other modelers' attributes (Camunda's, colours...)."""
    foreign = {KNOWN_MODELERS.get(namespace, namespace) for namespace, _name in element.attributes
               if namespace not in ("", LC, XSI)}
    if foreign:
        report.warn(element, "extension_ignored", _("%(element)s: attributes of %(modelers)s are ignored.")
                    % {"element": _describe(element), "modelers": ", ".join(sorted(foreign))})


def _modelers(element: Element) -> str:
    return ", ".join(sorted({KNOWN_MODELERS.get(child.namespace, child.namespace or "BPMN") for child in element.children}))


def _check_children(element: Element, allowed: set[str], report: _Report) -> None:
    """Warn about ignorable children, refuse unknown ones (names other than `allowed`)."""
    for child in element.children:
        if child.namespace != BPMN:
            report.warn(child, "extension_ignored", _("%(element)s: the element %(name)s of %(modeler)s is ignored.")
                        % {"element": _describe(element), "name": child.name,
                           "modeler": KNOWN_MODELERS.get(child.namespace, child.namespace)})
        elif child.name in allowed or child.name in DERIVED_ELEMENTS:
            continue
        elif child.name == "extensionElements":
            report.warn(child, "extension_ignored", _("%(element)s: the extension elements of %(modelers)s are ignored.")
                        % {"element": _describe(element), "modelers": _modelers(child)})
        elif child.name in IGNORED_ELEMENTS:
            report.warn(child, "ignored", _("%(element)s: %(name)s is ignored.")
                        % {"element": _describe(element), "name": child.name})
        else:
            report.error(child, "unsupported", _("%(element)s: %(name)s is not supported.")
                         % {"element": _describe(element), "name": child.name})


def _text(element: Element) -> str:
    """An element's text without the line breaks and indentation a pretty-printer puts around it
    (spaces alone are kept: they may be the value's own)."""
    return re.sub(r"^[ \t]*\r?\n\s*|\s*\r?\n[ \t]*$", "", element.text)


def _documentation(element: Element) -> str:
    return "\n".join(_text(child) for child in element.find(BPMN, "documentation"))


def _node(element: Element, ids: dict, report: _Report, assignable: Assignable | None) -> dict | None:
    node_type = TYPE_OF_ELEMENT.get(element.name)
    node = {"id": ids.get(element.get("id"), element.get("id", "")), "type": node_type}
    if element.get("name"):
        node["label"] = element.get("name")
    if _documentation(element):
        node["documentation"] = _documentation(element)
    allowed = {"documentation"}
    if node_type == "exclusive_gateway" and element.get("default"):
        node["default"] = ids.get(element.get("default"), element.get("default"))
    elif node_type == "call_activity":
        node["workflow"] = element.get("calledElement", "")
    elif node_type == "timer":
        allowed.add("timerEventDefinition")
        timers = element.find(BPMN, "timerEventDefinition")
        durations = [child for timer in timers for child in timer.find(BPMN, "timeDuration")]
        if len(timers) != 1 or not durations:
            report.error(element, "unsupported", _("%(element)s: only a timer with a duration (timeDuration) is supported.")
                         % {"element": _describe(element)})
            return None
        node["duration"] = _text(durations[0])
    node.update(_lc_values(element, STANDARD_NODE_KEYS, report))
    if node_type == "user_task" and "assign" not in node and assignable:
        assign = _camunda_assignment(element, assignable, report)
        if assign:
            node["assign"] = assign
    _check_children(element, allowed, report)
    return node


def _camunda_assignment(element: Element, assignable: Assignable, report: _Report) -> dict | None:
    """Camunda's assignee (a user) or candidate group (a role), from Camunda 7's camunda: attributes
    or Camunda 8's zeebe:assignmentDefinition, as the task's assignment when it names an existing
    user or role (`assignable` says); otherwise a warning saying to assign the task here."""
    definitions = [child for extension in element.find(BPMN, "extensionElements")
                   for child in extension.find(ZEEBE, "assignmentDefinition")]
    written = [(kind, name) for kind, attribute in (("user", "assignee"), ("role", "candidateGroups"))
               for name in [element.attributes.get((CAMUNDA, attribute)),
                            *(definition.get(attribute) for definition in definitions)] if name]
    read = {"user": _("%(element)s: Camunda's assignee “%(name)s” is the user who does the task."),
            "role": _("%(element)s: Camunda's candidate group “%(name)s” is the role whose members may claim the task.")}
    for kind, name in written:
        if re.fullmatch(r"[\w.@+-]+", name) and assignable({kind: name}):
            report.warn(element, "assignment_read", read[kind] % {"element": _describe(element), "name": name})
            return {kind: name}
    if written:
        report.warn(element, "assignment_unknown", _(
            "%(element)s: Camunda's assignment (%(names)s) names no user or role here; assign the task in the designer.")
            % {"element": _describe(element), "names": ", ".join(f"“{name}”" for _kind, name in written)})
    return None


def existing_assignment(assign: dict) -> bool:
    """Whether `assign` ({"user": name} or {"role": key}) names an active user or a role of the
    current tenant: what the designer passes import_xml as `assignable`."""
    from workflows.registries import assignment_kind_registry

    (kind, value), = assign.items()
    return not assignment_kind_registry.get(kind).problems(value, {}, None)


def _flow(element: Element, ids: dict, report: _Report) -> dict:
    flow = {key: ids.get(element.get(name), element.get(name, ""))
            for key, name in (("id", "id"), ("source", "sourceRef"), ("target", "targetRef"))}
    if element.get("name"):
        flow["label"] = element.get("name")
    conditions = element.find(BPMN, "conditionExpression")
    if conditions:
        flow["condition"] = _condition(element, conditions[0], report)
    flow.update(_lc_values(element, STANDARD_FLOW_KEYS, report))
    _check_children(element, {"conditionExpression"}, report)
    return flow


def _condition(flow: Element, expression: Element, report: _Report) -> str:
    """A flow's condition, without Camunda 7's ${…} or #{…} (JUEL) or Camunda 8's "=…" (FEEL)
    wrapper, with a warning: one our language reads, "check it means the same"; one it cannot read is
    kept (the designer marks it on the flow) and named with the reason. Conditions without a wrapper
    are the designer's to check, like any other."""
    condition = _text(expression)
    wrapped = re.fullmatch(r"\s*(?:[$#]\{(.*)\}|=(.*))\s*", condition, re.DOTALL)
    if not wrapped:
        return condition
    condition = next(group for group in wrapped.groups() if group is not None).strip()
    values = {"element": _describe(flow), "condition": condition,
              "wrapper": "${…}" if wrapped.group(1) is not None else "=…"}
    try:
        compile_expression(condition)
    except ExpressionError as error:
        report.warn(expression, "condition_unreadable", _(
            "%(element)s: the condition %(wrapper)s “%(condition)s” is not an expression of ours (%(error)s); "
            "write it again in the designer.") % {**values, "error": error})
    else:
        report.warn(expression, "condition_unwrapped", _(
            "%(element)s: the condition's %(wrapper)s wrapper is removed; check that “%(condition)s” means "
            "the same here.") % values)
    return condition


def _number(text: str | None):
    value = float(text or 0)
    return int(value) if value.is_integer() else value


def _bounds(shape: Element) -> dict | None:
    bounds = shape.find(DC, "Bounds")
    if not bounds:
        return None
    return {name: _number(bounds[0].get(name)) for name in ("x", "y", "width", "height")}


def _diagram(root: Element, process_ids: set[str], ids: dict, node_ids: set[str], flow_ids: set[str],
             report: _Report) -> dict:
    diagram = {"nodes": {}, "flows": {}, "labels": {}}
    planes = [plane for item in root.find(BPMNDI, "BPMNDiagram") for plane in item.find(BPMNDI, "BPMNPlane")]
    for plane in planes:
        if plane.get("bpmnElement") not in process_ids:
            report.warn(plane, "ignored", _("%(element)s: a diagram of another process is ignored.")
                        % {"element": _describe(plane)})
            continue
        for item in plane.children:
            reference = ids.get(item.get("bpmnElement"), item.get("bpmnElement"))
            labels = item.find(BPMNDI, "BPMNLabel")
            label = _bounds(labels[0]) if labels else None
            _foreign_attributes(item, report)
            if item.name == "BPMNShape" and reference in node_ids:
                diagram["nodes"][reference] = _bounds(item)
            elif item.name == "BPMNEdge" and reference in flow_ids:
                diagram["flows"][reference] = [[_number(point.get("x")), _number(point.get("y"))]
                                               for point in item.find(DI, "waypoint")]
            else:
                continue
            if label:
                diagram["labels"][reference] = label
        break
    if not diagram["labels"]:
        del diagram["labels"]
    return diagram


def import_xml(data: bytes | str, *, assignable: Assignable | None = None) -> tuple[dict | None, list[dict], list[dict]]:
    """The workflow body a BPMN 2.0 file describes, with what was ignored and what is refused.

    Returns (body, warnings, errors); each warning and error is {"element": id, "type": the XML
    element, "line", "code", "message"}. With errors the body is None: the file is refused.
    `assignable` ({"user"|"role": name} -> bool, e.g. existing_assignment) lets Camunda's assignees
    and candidate groups that name an existing user or role become user tasks' assignments; without
    it they are ignored like Camunda's other attributes (no database needed).
    """
    report = _Report()
    try:
        root = parse(data)
    except BPMNError as error:
        return None, [], [{"element": "", "type": "", "line": 0, "code": "unreadable", "message": str(error)}]
    if root.namespace != BPMN or root.name != "definitions":
        report.error(root, "not_bpmn", _("This is not a BPMN 2.0 file (its root is %(name)s).") % {"name": root.name})
        return None, report.warnings, report.errors
    _foreign_attributes(root, report)
    processes = []
    for child in root.children:
        if child.namespace == BPMN and child.name == "process":
            processes.append(child)
        elif child.namespace == BPMN and child.name == "collaboration":
            report.warn(child, "ignored", _("%(element)s: pools and message flows are ignored; the process is read.")
                        % {"element": _describe(child)})
        elif not (child.namespace == BPMNDI and child.name == "BPMNDiagram"):
            report.warn(child, "ignored", _("%(element)s is ignored.") % {"element": _describe(child)})
    processes = _the_process(processes, report)
    if len(processes) != 1:
        report.error(root, "process_count", _("The file must hold exactly one process (it holds %(count)s).")
                     % {"count": len(processes)})
        return None, report.warnings, report.errors
    process = processes[0]
    body = {"label": process.get("name") or process.get("id", "")}
    if _documentation(process):
        body["description"] = _documentation(process)
    body.update(_lc_values(process, STANDARD_PROCESS_KEYS, report))
    ids = _renamed_ids(process, report)
    nodes, flows = [], []
    elements = {}  # Node and flow id -> its XML element, for warnings about its layout.
    for element in process.children:
        if element.namespace == BPMN and element.name in TYPE_OF_ELEMENT:
            timer = {"timerEventDefinition"} if element.name == "intermediateCatchEvent" else set()
            if not _has_event_definition(element, report, allowed=timer):
                node = _node(element, ids, report, assignable)
                if node:
                    nodes.append(node)
                    elements[node["id"]] = element
        elif element.namespace == BPMN and element.name == "sequenceFlow":
            flows.append(_flow(element, ids, report))
            elements[flows[-1]["id"]] = element
        elif element.namespace == BPMN and element.name == "documentation":
            continue
        elif element.namespace == BPMN and element.name == "extensionElements":
            report.warn(element, "extension_ignored", _("%(element)s: the extension elements of %(modelers)s are ignored.")
                        % {"element": _describe(process), "modelers": _modelers(element)})
        elif element.namespace != BPMN:
            report.warn(element, "extension_ignored", _("%(element)s of %(modeler)s is ignored.")
                        % {"element": _describe(element), "modeler": KNOWN_MODELERS.get(element.namespace, element.namespace)})
        elif element.name in IGNORED_ELEMENTS:
            report.warn(element, "ignored", _("%(element)s is ignored.") % {"element": _describe(element)})
        else:
            report.error(element, "unsupported", _("%(element)s is not supported.") % {"element": _describe(element)})
    body["nodes"], body["flows"] = nodes, flows
    body["diagram"] = _diagram(root, _diagram_owners(root, process), ids, {node["id"] for node in nodes},
                               {flow["id"] for flow in flows}, report)
    _complete_layout(body, process, elements, report)
    if report.errors:
        return None, report.warnings, report.errors
    return body, report.warnings, report.errors


def _the_process(processes: list[Element], report: _Report) -> list[Element]:
    """The processes a file holds that could be the workflow: those with content, and of several
    pools the one Camunda Modeler marks executable (the others are warned about, not read)."""
    processes = [process for process in processes if process.children] or processes[:1]
    executable = [process for process in processes if process.get("isExecutable") == "true"]
    if len(processes) > 1 and len(executable) == 1:
        for process in processes:
            if process is not executable[0]:
                report.warn(process, "ignored", _("%(element)s is not executable; only “%(read)s” is read.")
                            % {"element": _describe(process), "read": executable[0].get("id")})
        return executable
    return processes


def _diagram_owners(root: Element, process: Element) -> set[str]:
    """The ids a diagram plane of `process` names: the process, or, when the process is drawn as a
    pool (bpmn-js and Camunda Modeler put pools on the collaboration's plane), its participant and
    the collaboration holding it."""
    owners = {process.get("id")}
    for collaboration in root.find(BPMN, "collaboration"):
        pools = {participant.get("id") for participant in collaboration.find(BPMN, "participant")
                 if participant.get("processRef") == process.get("id")}
        if pools:
            owners |= {collaboration.get("id"), *pools}
    return owners


def _complete_layout(body: dict, process: Element, elements: dict, report: _Report) -> None:
    """Nodes and flows the file's diagram leaves out get the places export would give them, so that
    export then import gives the same body; each is a warning (one for a file without a diagram)."""
    diagram, missing = body["diagram"], []
    placed = auto_layout(body)
    for node in body["nodes"]:
        if node["id"] not in diagram["nodes"]:
            diagram["nodes"][node["id"]] = placed[node["id"]]
            missing.append(node["id"])
    for flow in body["flows"]:
        ends = diagram["nodes"].get(flow["source"]), diagram["nodes"].get(flow["target"])
        if flow["id"] not in diagram["flows"] and all(ends):
            diagram["flows"][flow["id"]] = _waypoints(*ends)
            missing.append(flow["id"])
    if missing and len(missing) == len(body["nodes"]) + len(body["flows"]):
        report.warn(process, "laid_out", _("%(element)s has no diagram; it is laid out automatically.")
                    % {"element": _describe(process)})
    else:
        for item_id in missing:
            report.warn(elements[item_id], "laid_out", _("%(element)s is not drawn in the diagram; it is placed automatically.")
                        % {"element": _describe(elements[item_id])})


def _renamed_ids(process: Element, report: _Report) -> dict:
    """New ids for elements whose id cannot name a node or flow here (Signavio's "sid-…"): letters,
    digits and "_", starting with a letter; each renaming is a warning."""
    taken = {child.get("id") for child in process.children if child.get("id")}
    renamed = {}
    for child in process.children:
        old = child.get("id")
        if not old or re.fullmatch(ELEMENT_ID, old):
            continue
        base = re.sub(r"[^A-Za-z0-9_]", "_", old)
        base = (base if base[:1].isalpha() and base.isascii() else f"id_{base}")[:60]
        new, number = base, 1
        while new in taken:
            number += 1
            new = f"{base}_{number}"
        taken.add(new)
        renamed[old] = new
        report.warn(child, "renamed", _("%(element)s: the id is now “%(new)s” (letters, digits and _ only).")
                    % {"element": _describe(child), "new": new})
    return renamed


def _has_event_definition(element: Element, report: _Report, *, allowed: set[str]) -> bool:
    """Events with a trigger or result other than `allowed` (message, signal, terminate...): refused."""
    definitions = [child for child in element.children if child.namespace == BPMN
                   and child.name.endswith("EventDefinition") and child.name not in allowed]
    for definition in definitions:
        report.error(definition, "unsupported", _("%(element)s: %(name)s is not supported.")
                     % {"element": _describe(element), "name": definition.name})
    return bool(definitions)


# ---- Export ----

def _q(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


def _text_number(value) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _set_extras(element: ET.Element, item: dict, standard: set[str]) -> None:
    for key, value in item.items():
        if key not in standard:
            element.set(_q(LC, key), encode_value(value))


def auto_layout(body: dict) -> dict:
    """Positions for nodes the diagram lacks: columns by distance from the starts, left to right."""
    size = {"start": (36, 36), "end": (36, 36), "timer": (36, 36), "exclusive_gateway": (50, 50),
            "parallel_gateway": (50, 50)}
    diagram = body.get("diagram") or {}
    placed = dict(diagram.get("nodes") or {})
    targets: dict[str, list[str]] = {}
    for flow in body.get("flows", []):
        targets.setdefault(flow["source"], []).append(flow["target"])
    column = {node["id"]: 0 for node in body.get("nodes", []) if node["type"] == "start"}
    queue = list(column)
    while queue:
        current = queue.pop(0)
        for target in targets.get(current, []):
            if target not in column:
                column[target] = column[current] + 1
                queue.append(target)
    rows: dict[int, int] = {}
    for node in body.get("nodes", []):
        if node["id"] in placed:
            continue
        x_column = column.get(node["id"], max(column.values(), default=0) + 1)
        row = rows[x_column] = rows.get(x_column, -1) + 1
        width, height = size.get(node["type"], (100, 80))
        placed[node["id"]] = {"x": 160 + 160 * x_column + (100 - width) // 2, "y": 80 + 140 * row + (80 - height) // 2,
                              "width": width, "height": height}
    return placed


def _waypoints(source: dict, target: dict) -> list[list]:
    start = [source["x"] + source["width"], source["y"] + source["height"] // 2]
    end = [target["x"], target["y"] + target["height"] // 2]
    if start[1] == end[1]:
        return [start, end]
    middle = (start[0] + end[0]) // 2
    return [start, [middle, start[1]], [middle, end[1]], end]


def export(body: dict, *, key: str = "Process_1") -> str:
    """`body` as a BPMN 2.0 XML document (with its diagram; nodes without a position get one)."""
    definitions = ET.Element(_q(BPMN, "definitions"), {
        "id": f"Definitions_{key}", "targetNamespace": "http://bpmn.io/schema/bpmn",
        "exporter": "Lowcode", "exporterVersion": "1.0"})
    process = ET.SubElement(definitions, _q(BPMN, "process"), {"id": key, "isExecutable": "true"})
    if body.get("label"):
        process.set("name", body["label"])
    _set_extras(process, body, STANDARD_PROCESS_KEYS)
    if body.get("description"):
        ET.SubElement(process, _q(BPMN, "documentation")).text = body["description"]
    flows = body.get("flows", [])
    for node in body.get("nodes", []):
        element = ET.SubElement(process, _q(BPMN, ELEMENT_OF_TYPE[node["type"]]), {"id": node["id"]})
        if node.get("label"):
            element.set("name", node["label"])
        if node.get("documentation"):
            ET.SubElement(element, _q(BPMN, "documentation")).text = node["documentation"]
        if node["type"] == "exclusive_gateway" and node.get("default"):
            element.set("default", node["default"])
        if node["type"] == "call_activity":
            element.set("calledElement", node.get("workflow", ""))
        _set_extras(element, node, STANDARD_NODE_KEYS)
        for direction, end in (("incoming", "target"), ("outgoing", "source")):
            for flow in flows:
                if flow[end] == node["id"]:
                    ET.SubElement(element, _q(BPMN, direction)).text = flow["id"]
        if node["type"] == "timer":
            timer = ET.SubElement(element, _q(BPMN, "timerEventDefinition"), {"id": f"TimerEventDefinition_{node['id']}"})
            ET.SubElement(timer, _q(BPMN, "timeDuration"), {_q(XSI, "type"): "bpmn:tFormalExpression"}).text = \
                node.get("duration", "")
    for flow in flows:
        element = ET.SubElement(process, _q(BPMN, "sequenceFlow"),
                                {"id": flow["id"], "sourceRef": flow["source"], "targetRef": flow["target"]})
        if flow.get("label"):
            element.set("name", flow["label"])
        _set_extras(element, flow, STANDARD_FLOW_KEYS)
        if flow.get("condition"):
            ET.SubElement(element, _q(BPMN, "conditionExpression"), {_q(XSI, "type"): "bpmn:tFormalExpression"}).text = \
                flow["condition"]
    _export_diagram(definitions, body, key)
    ET.indent(definitions, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(definitions, encoding="unicode") + "\n"


def _export_diagram(definitions: ET.Element, body: dict, key: str) -> None:
    diagram = body.get("diagram") or {}
    shapes = auto_layout(body)
    edges, labels = diagram.get("flows") or {}, diagram.get("labels") or {}
    root = ET.SubElement(definitions, _q(BPMNDI, "BPMNDiagram"), {"id": f"BPMNDiagram_{key}"})
    plane = ET.SubElement(root, _q(BPMNDI, "BPMNPlane"), {"id": f"BPMNPlane_{key}", "bpmnElement": key})

    def add_label(element: ET.Element, item_id: str) -> None:
        if item_id in labels:
            label = ET.SubElement(element, _q(BPMNDI, "BPMNLabel"))
            ET.SubElement(label, _q(DC, "Bounds"), {name: _text_number(labels[item_id][name])
                                                     for name in ("x", "y", "width", "height")})

    for node in body.get("nodes", []):
        shape = ET.SubElement(plane, _q(BPMNDI, "BPMNShape"), {"id": f"{node['id']}_di", "bpmnElement": node["id"]})
        if node["type"] == "exclusive_gateway":
            shape.set("isMarkerVisible", "true")
        ET.SubElement(shape, _q(DC, "Bounds"), {name: _text_number(shapes[node["id"]][name])
                                                 for name in ("x", "y", "width", "height")})
        add_label(shape, node["id"])
    for flow in body.get("flows", []):
        points = edges.get(flow["id"])
        if points is None and flow["source"] in shapes and flow["target"] in shapes:
            points = _waypoints(shapes[flow["source"]], shapes[flow["target"]])
        edge = ET.SubElement(plane, _q(BPMNDI, "BPMNEdge"), {"id": f"{flow['id']}_di", "bpmnElement": flow["id"]})
        for x, y in points or []:
            ET.SubElement(edge, _q(DI, "waypoint"), {"x": _text_number(x), "y": _text_number(y)})
        add_label(edge, flow["id"])
