"""Assignment (WF-3): users, role and department queues, the submitter's manager up the department
tree, expressions; committees (all, any, N of M); reassign, delegate (out of office), escalate."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from viewflow.workflow.models import Process, Task
from viewflow.workflow.status import STATUS

from rbac import services as rbac
from rbac.models import Department, Role
from tests.workflows.conftest import approval_body
from workflows import services
from workflows.exceptions import WorkflowError
from workflows.models import Notification


def human(process, **filters):
    return Task.objects.filter(process=process, flow_task_type="HUMAN", **filters).order_by("pk")


def with_manager_step(publish, **changes):
    """Publish the scenario with the manager task changed (assign, approvers, deadline...)."""
    body = approval_body()
    next(n for n in body["nodes"] if n["id"] == "manager").update(changes)
    publish("expense_approval", body)


@pytest.fixture
def fiona(scenario):
    user = get_user_model().objects.create_user("fiona", "fiona@acme.example", "x")
    rbac.assign_role(user, Role.objects.get(key="finance"))
    return user


def test_the_managers_manager_takes_a_managers_claim(scenario, expense):
    mia = scenario["mia"]
    ceo = get_user_model().objects.create_user("carol", "carol@acme.example", "x")
    company = rbac.create_department("Company", managers=[ceo])
    rbac.update_department(Department.objects.get(name="Sales"), parent=company)
    process = services.start("expense_approval", expense(user=mia), user=mia)
    assert human(process).get().owner == ceo


def test_nobody_to_assign_refuses_the_start_with_a_clear_message(scenario, expense):
    dora = get_user_model().objects.create_user("dora", "dora@acme.example", "x")
    rbac.assign_role(dora, Role.objects.get(key=Role.MEMBER))  # In no department: nobody manages her.
    with pytest.raises(WorkflowError, match="Nobody manages"):
        services.start("expense_approval", expense(user=dora), user=dora)
    assert not Process.objects.exists()


def test_department_queue_is_claimed_by_a_member(scenario, expense, publish):
    with_manager_step(publish, assign={"department": "Sales"})
    process = services.start("expense_approval", expense(), user=scenario["alice"])
    task = human(process).get()
    assert task.owner_permission.startswith("department:") and task.status == STATUS.NEW
    assert list(services.inbox(scenario["bob"], kind="claimable")) == [task]
    assert not services.inbox(scenario["frank"], kind="claimable").exists()
    with pytest.raises(PermissionDenied):
        services.claim(task, user=scenario["frank"])
    services.claim(task, user=scenario["bob"])
    with pytest.raises(WorkflowError, match="bob already took this task"):
        services.claim(task, user=scenario["mia"])


def test_expression_names_the_user(scenario, expense, publish):
    with_manager_step(publish, assign={"expression": "if(amount > 1000, 'frank', 'mia')"})
    big = services.start("expense_approval", expense("1500.00"), user=scenario["alice"])
    small = services.start("expense_approval", expense("50.00"), user=scenario["alice"])
    assert human(big).get().owner == scenario["frank"] and human(small).get().owner == scenario["mia"]


def test_committee_of_all_needs_every_approval(scenario, expense, publish, fiona):
    with_manager_step(publish, assign={"role": "finance"}, approvers={"rule": "all"})
    process = services.start("expense_approval", expense(), user=scenario["alice"])
    rows = list(human(process))
    assert {row.owner.username for row in rows} == {"frank", "fiona"}
    services.complete(rows[0], user=rows[0].owner, outcome="approved")
    assert Process.objects.get(pk=process.pk).data.get("result") is None  # Waiting for the other.
    services.complete(rows[1], user=rows[1].owner, outcome="approved")
    assert Process.objects.get(pk=process.pk).data["result"] == "approved"


def test_committee_of_all_is_rejected_by_one_and_the_others_rows_close(scenario, expense, publish, fiona):
    with_manager_step(publish, assign={"role": "finance"}, approvers={"rule": "all"})
    process = services.start("expense_approval", expense(), user=scenario["alice"])
    first, second = human(process)
    services.complete(first, user=first.owner, outcome="rejected", comment="Too much.")
    assert Process.objects.get(pk=process.pk).data["result"] == "rejected"
    second.refresh_from_db()
    assert second.status == STATUS.CANCELED
    with pytest.raises(WorkflowError):
        services.complete(second, user=second.owner, outcome="approved")


def test_committee_two_of_three(scenario, expense, publish, fiona):
    rbac.assign_role(scenario["bea"], Role.objects.get(key="finance"))
    with_manager_step(publish, assign={"role": "finance"}, approvers={"rule": "n_of_m", "n": 2})
    process = services.start("expense_approval", expense(), user=scenario["alice"])
    rows = {row.owner.username: row for row in human(process)}
    assert set(rows) == {"bea", "fiona", "frank"}
    services.complete(rows["bea"], user=scenario["bea"], outcome="rejected")
    services.complete(rows["fiona"], user=fiona, outcome="approved")
    assert Process.objects.get(pk=process.pk).data.get("result") is None
    services.complete(rows["frank"], user=scenario["frank"], outcome="approved")
    assert Process.objects.get(pk=process.pk).data["result"] == "approved"


def test_out_of_office_delegation(scenario, expense):
    mia, bob = scenario["mia"], scenario["bob"]
    before = services.start("expense_approval", expense(title="Before"), user=scenario["alice"])
    now = timezone.now()
    services.delegate(mia, bob, starts=now - datetime.timedelta(hours=1), ends=now + datetime.timedelta(days=3))
    moved = human(before).get()
    assert moved.owner == bob and moved.data["delegated_from"] == mia.pk
    during = services.start("expense_approval", expense(title="During"), user=scenario["alice"])
    assert human(during).get().owner == bob
    assert set(services.inbox(mia, kind="delegated")) == {moved, human(during).get()}
    assert set(services.inbox(bob)) == {moved, human(during).get()}
    with pytest.raises(WorkflowError):
        services.delegate(mia, mia, starts=now, ends=now + datetime.timedelta(days=1))


def test_a_future_delegation_moves_nothing_yet(scenario, expense):
    mia, bob = scenario["mia"], scenario["bob"]
    now = timezone.now()
    services.delegate(mia, bob, starts=now + datetime.timedelta(days=1), ends=now + datetime.timedelta(days=2))
    process = services.start("expense_approval", expense(), user=scenario["alice"])
    assert human(process).get().owner == mia


def test_reassign_by_the_owner_not_by_others(scenario, expense):
    mia, frank, bob = scenario["mia"], scenario["frank"], scenario["bob"]
    process = services.start("expense_approval", expense(), user=scenario["alice"])
    task = human(process).get()
    with pytest.raises(PermissionDenied):
        services.reassign(task, user=bob, to=bob)
    services.reassign(task, user=mia, to=frank)
    task.refresh_from_db()
    assert task.owner == frank and task.status == STATUS.ASSIGNED
    services.complete(task, user=frank, outcome="approved")


def test_escalate_by_hand(scenario, expense):
    process = services.start("expense_approval", expense(), user=scenario["alice"])
    task = services.escalate(human(process).get(), user=scenario["mia"])
    assert task.owner is None and task.owner_permission == "role:finance"
    assert Notification.objects.filter(user=scenario["frank"], kind="escalation").exists()
