"""Running instances keep the version they started with (WF-2): publishing v2 never breaks v1."""

from __future__ import annotations

from viewflow.workflow.fields import import_flow_by_ref, import_task_by_ref
from viewflow.workflow.models import Process, Task

from tests.workflows.conftest import approval_body
from workflows import flows, services


def test_v1_instances_finish_on_v1_after_v2_is_published(scenario, expense, publish):
    alice, mia, frank = scenario["alice"], scenario["mia"], scenario["frank"]
    old_claim = expense("1500.00", title="Old rules")
    old = services.start("expense_approval", old_claim, user=alice)

    # v2: finance approves every claim, whatever the amount, and the manager step is gone.
    body = approval_body()
    body["nodes"] = [n for n in body["nodes"] if n["id"] not in ("manager", "over_1000")]
    flows_by_id = {flow["id"]: flow for flow in body["flows"]}
    flows_by_id["f_submitted"]["target"] = "finance"
    body["flows"] = [f for f in body["flows"] if f["source"] not in ("manager", "over_1000")]
    body["diagram"] = {}
    assert publish("expense_approval", body).version == 2

    new = services.start("expense_approval", expense("80.00", title="New rules"), user=alice)
    assert new.flow_class.version == 2 and old.flow_class.version == 1
    assert Task.objects.get(process=new, flow_task_type="HUMAN").owner_permission == "role:finance"

    # The v1 process goes on through its manager and its gateway, on v1's class.
    manager = Task.objects.get(process=old, owner=mia)
    assert manager.flow_task.flow_class.version == 1
    services.complete(manager, user=mia, outcome="approved")
    finance = Task.objects.get(process=old, owner_permission="role:finance")
    services.complete(finance, user=frank, outcome="approved")
    old_claim.refresh_from_db()
    assert Process.objects.get(pk=old.pk).data["result"] == "approved" and old_claim.status == "approved"


def test_a_fresh_worker_rebuilds_an_old_flow_class_from_its_definition(scenario, expense):
    process = services.start("expense_approval", expense(), user=scenario["alice"])
    task = Task.objects.get(process=process, flow_task_type="HUMAN")
    name = process.flow_class.__name__
    assert name.startswith("F_acme_expense_approval_v1_")

    # What a worker that never saw this class has: no attribute, no cached imports.
    del flows.__dict__[name]
    import_flow_by_ref.cache_clear()
    import_task_by_ref.cache_clear()

    reloaded = Task.objects.get(pk=task.pk)
    assert reloaded.flow_task.flow_class.__name__ == name and reloaded.flow_task.flow_class is not process.flow_class
    services.complete(reloaded, user=scenario["mia"], outcome="approved")
    assert Process.objects.get(pk=process.pk).data["result"] == "approved"


def test_another_tenants_class_name_does_not_load(scenario):
    import pytest

    with pytest.raises(AttributeError):
        flows.F_globex_expense_approval_v1_0123abcd  # noqa: B018
