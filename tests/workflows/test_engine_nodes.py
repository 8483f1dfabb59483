"""Parallel split and join, call activities, failing service tasks and staff repairs (WF-1, WF-8)."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from viewflow.workflow.models import Process, Task
from viewflow.workflow.status import PROCESS, STATUS

from audit.models import AuditEvent
from tests.workflows.conftest import approval_body
from workflows import services
from workflows.exceptions import WorkflowError
from workflows.registries import ScriptHook, script_hook_registry


def tasks_of(process, node: str):
    return Task.objects.filter(process=process, flow_task__endswith=f".n_{node}").order_by("pk")


def parallel_body() -> dict:
    """After the manager: finance approval and a one-hour wait in parallel, joined before approval."""
    body = approval_body()
    body["nodes"] += [{"id": "fork", "type": "parallel_gateway"}, {"id": "join", "type": "parallel_gateway"},
                      {"id": "wait", "type": "timer", "duration": "PT1H"}]
    flows = {flow["id"]: flow for flow in body["flows"]}
    flows["f_manager_ok"]["target"] = "fork"
    body["nodes"] = [n for n in body["nodes"] if n["id"] != "over_1000"]
    body["flows"] = [f for f in body["flows"] if f["source"] != "over_1000"]
    flows["f_finance_ok"]["target"] = "join"
    body["flows"] += [{"id": "f_fork_finance", "source": "fork", "target": "finance"},
                      {"id": "f_fork_wait", "source": "fork", "target": "wait"},
                      {"id": "f_waited", "source": "wait", "target": "join"},
                      {"id": "f_joined", "source": "join", "target": "mark_approved"}]
    body["diagram"] = {}
    return body


def test_parallel_branches_join_before_going_on(scenario, expense, publish):
    import datetime

    from django.utils import timezone

    publish("expense_approval", parallel_body())
    claim = expense()
    process = services.start("expense_approval", claim, user=scenario["alice"])
    services.complete(tasks_of(process, "manager").get(), user=scenario["mia"], outcome="approved")
    finance = tasks_of(process, "finance").get()
    assert tasks_of(process, "wait").get().status == STATUS.SCHEDULED
    services.complete(finance, user=scenario["frank"], outcome="approved")
    claim.refresh_from_db()
    assert claim.status == "submitted" and tasks_of(process, "join").get().status == STATUS.STARTED
    services.tick(timezone.now() + datetime.timedelta(hours=2))
    claim.refresh_from_db()
    assert claim.status == "approved" and Process.objects.get(pk=process.pk).status == PROCESS.DONE


def test_a_call_activity_runs_the_called_workflow_and_waits(scenario, expense, publish):
    review = {"label": "Finance review", "entity": "expense", "nodes": [
        {"id": "start", "type": "start"},
        {"id": "review", "type": "user_task", "task": {"kind": "approval"}, "assign": {"user": "frank"}},
        {"id": "end", "type": "end", "outcome": "completed"}],
        "flows": [{"id": "a", "source": "start", "target": "review"}, {"id": "b", "source": "review", "target": "end"}]}
    publish("finance_review", review)
    body = approval_body()
    body["nodes"].append({"id": "sub", "type": "call_activity", "label": "Finance review", "workflow": "finance_review"})
    flows = {flow["id"]: flow for flow in body["flows"]}
    flows["f_finance_ok"]["target"] = "sub"
    flows["f_big"]["target"] = "sub"
    body["nodes"] = [n for n in body["nodes"] if n["id"] != "finance"]
    body["flows"] = [f for f in body["flows"] if f["source"] != "finance"]
    body["flows"].append({"id": "f_reviewed", "source": "sub", "target": "mark_approved"})
    body["diagram"] = {}
    publish("expense_approval", body)

    claim = expense("1500.00")
    process = services.start("expense_approval", claim, user=scenario["alice"])
    services.complete(tasks_of(process, "manager").get(), user=scenario["mia"], outcome="approved")
    call = tasks_of(process, "sub").get()
    child = Process.objects.get(parent_task=call)
    assert child.flow_class.key == "finance_review" and child.artifact_object_id == claim.pk
    services.complete(Task.objects.get(process=child, owner=scenario["frank"]), user=scenario["frank"],
                      outcome="approved")
    claim.refresh_from_db()
    call.refresh_from_db()
    assert call.status == STATUS.DONE and claim.status == "approved"
    assert Process.objects.get(pk=child.pk).status == PROCESS.DONE


class FlakyERP(ScriptHook):
    """A script hook that fails until it is told the ERP is back."""

    type = "flaky_erp"
    up = False

    def run(self, context):
        if not FlakyERP.up:
            raise ConnectionError("The ERP does not answer.")
        context.variables["erp"] = "booked"


@pytest.fixture
def flaky_erp(publish):
    script_hook_registry.register(FlakyERP())
    body = approval_body()
    next(n for n in body["nodes"] if n["id"] == "tell_erp").update(action="script", hook="flaky_erp")
    del next(n for n in body["nodes"] if n["id"] == "tell_erp")["event"]
    publish("expense_approval", body)
    yield FlakyERP
    FlakyERP.up = False
    script_hook_registry.unregister("flaky_erp")


def test_a_failing_service_task_waits_for_a_retry(scenario, expense, flaky_erp):
    staff = _superuser()
    claim = expense()
    process = services.start("expense_approval", claim, user=scenario["alice"])
    services.complete(tasks_of(process, "manager").get(), user=scenario["mia"], outcome="approved")  # Not refused.
    failed = tasks_of(process, "tell_erp").get()
    assert failed.status == STATUS.ERROR and "does not answer" in failed.data["_exception"]["title"]
    assert AuditEvent.objects.filter(action="workflows.task.failed", target_id=str(failed.pk)).exists()
    claim.refresh_from_db()
    assert claim.status == "approved" and Process.objects.get(pk=process.pk).status == PROCESS.NEW

    with pytest.raises(PermissionDenied):
        services.retry(failed, user=scenario["mia"])
    flaky_erp.up = True
    services.retry(failed, user=staff)
    process.refresh_from_db()
    assert process.status == PROCESS.DONE and process.data["erp"] == "booked"
    assert AuditEvent.objects.filter(action="workflows.task.retried", actor=staff).exists()
    with pytest.raises(WorkflowError):
        services.retry(tasks_of(process, "tell_erp").last(), user=staff)


def _superuser():
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser("root", "root@acme.example", "x")


def test_staff_cancel_a_process(scenario, expense):
    staff = _superuser()
    process = services.start("expense_approval", expense(), user=scenario["alice"])
    with pytest.raises(PermissionDenied):
        services.cancel(process, user=scenario["mia"])
    services.cancel(process, user=staff)
    process.refresh_from_db()
    assert process.status == PROCESS.CANCELED and process.data["result"] == "cancelled"
    assert tasks_of(process, "manager").get().status == STATUS.CANCELED
    assert not services.inbox(scenario["mia"]).exists()
    with pytest.raises(WorkflowError):
        services.cancel(process, user=staff)


def test_staff_move_a_token(scenario, expense):
    staff = _superuser()
    claim = expense()
    process = services.start("expense_approval", claim, user=scenario["alice"])
    manager = tasks_of(process, "manager").get()
    with pytest.raises(WorkflowError):
        services.move_token(process, "nowhere", user=staff)
    moved = services.move_token(process, "finance", user=staff)
    manager.refresh_from_db()
    assert manager.status == STATUS.CANCELED
    assert moved.owner_permission == "role:finance" and moved.status == STATUS.NEW
    services.complete(moved, user=scenario["frank"], outcome="approved")
    claim.refresh_from_db()
    assert claim.status == "approved"
    assert AuditEvent.objects.filter(action="workflows.process.token_moved", target_id=str(process.pk)).exists()
