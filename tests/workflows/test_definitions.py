"""The `workflow` definition kind (WF-1, WF-7): schema, validation problems, publish, dependencies."""

from __future__ import annotations

import pytest

from metadata import services as metadata
from metadata.exceptions import DefinitionValidationError
from metadata.registries import definition_kind_registry
from tests.workflows.conftest import approval_body
from workflows import validation


def codes(body) -> set[tuple[str, str]]:
    return {(problem["node"], problem["code"]) for problem in validation.problems(body)}


def node(body, node_id) -> dict:
    return next(n for n in body["nodes"] if n["id"] == node_id)


def test_the_scenario_has_no_problems(scenario):
    assert validation.problems(approval_body()) == []
    published = metadata.get_published("workflow", "expense_approval")
    assert published.version == 1 and published.body == approval_body()


def drop_default(body):
    node(body, "over_1000").pop("default")


def unreachable(body):
    body["nodes"].append({"id": "lost", "type": "service_task", "action": "set_fields", "fields": {"status": "'draft'"}})
    body["flows"].append({"id": "f_lost", "source": "lost", "target": "approved"})


def dead_end(body):
    body["nodes"].append({"id": "stuck", "type": "timer", "duration": "PT1H"})
    body["flows"].append({"id": "f_stuck", "source": "mark_submitted", "target": "stuck"})


def no_assignee(body):
    node(body, "finance").pop("assign")


def unknown_role(body):
    node(body, "finance")["assign"] = {"role": "auditors"}


def bad_condition(body):
    next(f for f in body["flows"] if f["id"] == "f_big")["condition"] = "amount > 'a lot'"


def unknown_field(body):
    node(body, "mark_approved")["fields"] = {"state": "'approved'"}


def flow_without_outcome(body):
    next(f for f in body["flows"] if f["id"] == "f_manager_no").pop("outcome")


def bad_duration(body):
    node(body, "manager")["deadline"]["remind_after"] = "two days"


def unknown_action(body):
    node(body, "tell_erp")["action"] = "fax"


def unknown_manager_field(body):
    node(body, "manager")["assign"] = {"manager_of": "title"}


def notify_nobody_known(body):
    node(body, "tell_submitter")["to"] = {"team": "sales"}


def join_without_split(body):
    body["nodes"].append({"id": "join", "type": "parallel_gateway"})
    for flow in body["flows"]:
        if flow["id"] in ("f_told_erp", "f_told"):
            flow["target"] = "join"
    body["flows"].append({"id": "f_join", "source": "join", "target": "approved"})
    body["nodes"] = [n for n in body["nodes"] if n["id"] != "rejected"]


@pytest.mark.parametrize(("change", "expected"), [
    (drop_default, ("over_1000", "no_default")),
    (unreachable, ("lost", "unreachable")),
    (dead_end, ("stuck", "no_path_to_end")),
    (no_assignee, ("finance", "no_assignee")),
    (unknown_role, ("finance", "unknown_role")),
    (bad_condition, ("f_big", "expression_type")),
    (unknown_field, ("mark_approved", "unknown_field")),
    (flow_without_outcome, ("f_manager_no", "flow_without_outcome")),
    (bad_duration, ("manager", "bad_duration")),
    (unknown_action, ("tell_erp", "unknown_action")),
    (unknown_manager_field, ("manager", "unknown_user_field")),
    (join_without_split, ("join", "join_without_split")),
    (notify_nobody_known, ("tell_submitter", "unknown_assignment")),
])
def test_problems_name_the_element_and_the_rule(scenario, change, expected):
    body = approval_body()
    change(body)
    assert expected in codes(body)


def test_a_matching_split_and_join_is_fine(scenario):
    body = approval_body()
    body["nodes"] += [{"id": "fork", "type": "parallel_gateway"}, {"id": "join", "type": "parallel_gateway"},
                      {"id": "wait", "type": "timer", "duration": "PT1H"}]
    flows = {flow["id"]: flow for flow in body["flows"]}
    flows["f_approved"]["target"] = "fork"
    body["flows"] += [{"id": "f_fork_erp", "source": "fork", "target": "tell_erp"},
                      {"id": "f_fork_wait", "source": "fork", "target": "wait"},
                      {"id": "f_wait", "source": "wait", "target": "join"}]
    flows["f_told_erp"]["target"] = "join"
    body["flows"].append({"id": "f_joined", "source": "join", "target": "approved"})
    assert validation.problems(body) == []


def test_publish_refuses_a_body_with_problems_naming_the_path(scenario):
    body = approval_body()
    drop_default(body)
    with pytest.raises(DefinitionValidationError) as raised:
        metadata.save_and_publish("workflow", "broken", body)
    errors = raised.value.errors
    assert {"path": "nodes/3/default", "code": "no_default"}.items() <= errors[0].items()


def test_schema_refuses_unknown_node_types_and_bad_ids(scenario):
    body = approval_body()
    body["nodes"][0]["type"] = "lane"
    with pytest.raises(DefinitionValidationError):
        metadata.validate("workflow", body)
    body = approval_body()
    body["nodes"][0]["id"] = "has space"
    with pytest.raises(DefinitionValidationError):
        metadata.validate("workflow", body)


def test_dependencies_are_the_entity_forms_and_called_workflows(scenario):
    kind = definition_kind_registry.get("workflow")
    body = approval_body()
    body["nodes"].append({"id": "sub", "type": "call_activity", "workflow": "payout"})
    assert kind.dependencies(body) == [("entity", "expense"), ("form", "expense_claim"), ("workflow", "payout")]
    assert kind.dependencies("not a body") == []
