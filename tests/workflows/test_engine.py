"""The scenario's Expense approval on viewflow (WF-1, WF-2): start, decisions, gateway, ends."""

from __future__ import annotations

import pytest
from viewflow.workflow.models import Process, Task
from viewflow.workflow.status import PROCESS, STATUS

from workflows import services
from workflows.models import Notification, TaskDecision


def open_task(process, node: str) -> Task:
    return Task.objects.get(process=process, flow_task_type="HUMAN", status__in=["NEW", "ASSIGNED"],
                            flow_task__endswith=f".n_{node}")


def test_small_claim_is_approved_by_the_manager(scenario, expense):
    alice, mia = scenario["alice"], scenario["mia"]
    claim = expense("500.00")
    process = services.start("expense_approval", claim, user=alice)
    claim.refresh_from_db()
    assert claim.status == "submitted"
    task = open_task(process, "manager")
    assert task.owner == mia and task.status == STATUS.ASSIGNED
    assert list(services.inbox(mia)) == [task]

    services.complete(task, user=mia, outcome="approved", comment="Fine.")

    process.refresh_from_db()
    claim.refresh_from_db()
    assert claim.status == "approved"
    assert process.status == PROCESS.DONE and process.data["result"] == "approved"
    assert TaskDecision.objects.get(task=task).comment == "Fine."
    assert list(services.inbox(mia, kind="done")) == [Task.objects.get(pk=task.pk)]


def test_big_claim_goes_to_finance_after_the_manager(scenario, expense):
    alice, mia, frank = scenario["alice"], scenario["mia"], scenario["frank"]
    claim = expense("1500.00")
    process = services.start("expense_approval", claim, user=alice)
    services.complete(open_task(process, "manager"), user=mia, outcome="approved")

    finance = open_task(process, "finance")
    assert finance.owner is None and finance.owner_permission == "role:finance"
    assert list(services.inbox(frank, kind="claimable")) == [finance]
    assert not services.inbox(mia, kind="claimable").exists()
    services.claim(finance, user=frank)
    assert list(services.inbox(frank)) == [Task.objects.get(pk=finance.pk)]
    services.complete(finance, user=frank, outcome="approved")

    claim.refresh_from_db()
    process.refresh_from_db()
    assert claim.status == "approved" and process.data["result"] == "approved"


def test_rejection_tells_the_submitter_with_the_comment(scenario, expense):
    alice, mia = scenario["alice"], scenario["mia"]
    claim = expense("1500.00")
    process = services.start("expense_approval", claim, user=alice)
    services.complete(open_task(process, "manager"), user=mia, outcome="rejected", comment="No receipt attached.")

    claim.refresh_from_db()
    process.refresh_from_db()
    assert claim.status == "rejected" and process.data["result"] == "rejected"
    notification = Notification.objects.get(user=alice)
    assert "No receipt attached." in notification.text and claim.number in notification.text


def test_only_the_assignee_may_decide(scenario, expense):
    claim = expense()
    process = services.start("expense_approval", claim, user=scenario["alice"])
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.complete(open_task(process, "manager"), user=scenario["frank"], outcome="approved")
    assert Process.objects.get(pk=process.pk).status == PROCESS.NEW
