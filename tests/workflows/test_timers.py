"""Timers and SLA (WF-5): reminders, escalation, auto-completion and timer nodes with the test clock."""

from __future__ import annotations

import datetime

from django.core.management import call_command
from django.utils import timezone
from viewflow.workflow.models import Process, Task
from viewflow.workflow.status import STATUS

from tests.workflows.conftest import approval_body
from workflows import services, tasks
from workflows.models import Notification

DAY = datetime.timedelta(days=1)


def manager_task(process) -> Task:
    return Task.objects.get(process=process, flow_task_type="HUMAN", flow_task__endswith=".n_manager")


def test_reminder_after_two_days_and_escalation_to_finance_after_five(scenario, approval, expense):
    alice, mia, frank = scenario["alice"], scenario["mia"], scenario["frank"]
    process = services.start("expense_approval", expense(), user=alice)
    task = manager_task(process)
    started = task.created

    assert services.tick(started + DAY) == {"timers": 0, "reminders": 0, "expired": 0}
    assert services.tick(started + 2 * DAY + datetime.timedelta(minutes=1))["reminders"] == 1
    reminder = Notification.objects.get(user=mia, kind="reminder")
    assert "Manager approval" in reminder.text
    assert services.tick(started + 3 * DAY)["reminders"] == 0  # Once.

    assert services.tick(started + 5 * DAY + datetime.timedelta(minutes=1))["expired"] == 1
    task.refresh_from_db()
    assert task.owner is None and task.owner_permission == "role:finance" and task.status == STATUS.NEW
    assert Notification.objects.filter(user=frank, kind="escalation").exists()
    assert list(services.inbox(frank, kind="claimable")) == [task]
    assert not services.inbox(mia).exists()
    assert task.scheduled is None

    services.complete(task, user=frank, outcome="approved", comment="Escalated; fine.")
    assert Process.objects.get(pk=process.pk).data["result"] == "approved"


def test_an_expired_task_can_decide_itself(scenario, expense, publish):
    body = approval_body()
    manager = next(n for n in body["nodes"] if n["id"] == "manager")
    manager["deadline"] = {"escalate_after": "PT4H", "on_expiry": "reject"}
    publish("expense_approval", body)
    claim = expense()
    process = services.start("expense_approval", claim, user=scenario["alice"])

    assert services.tick(timezone.now() + datetime.timedelta(hours=5))["expired"] == 1
    claim.refresh_from_db()
    assert claim.status == "rejected" and Process.objects.get(pk=process.pk).data["result"] == "rejected"
    assert manager_task(process).status == STATUS.DONE


def test_a_timer_node_waits_until_the_clock_passes(scenario, expense, publish):
    body = approval_body()
    body["nodes"].append({"id": "cool_down", "type": "timer", "label": "Cool down", "duration": "PT1H"})
    flows = {flow["id"]: flow for flow in body["flows"]}
    flows["f_claim"]["target"] = "cool_down"
    body["flows"].append({"id": "f_cooled", "source": "cool_down", "target": "mark_submitted"})
    publish("expense_approval", body)
    claim = expense()
    process = services.start("expense_approval", claim, user=scenario["alice"])
    timer = Task.objects.get(process=process, flow_task_type="TIMER")
    assert timer.status == STATUS.SCHEDULED and not Task.objects.filter(process=process, flow_task_type="HUMAN")

    assert services.tick(timezone.now() + datetime.timedelta(minutes=30))["timers"] == 0
    assert services.tick(timezone.now() + datetime.timedelta(minutes=61))["timers"] == 1
    claim.refresh_from_db()
    assert claim.status == "submitted" and manager_task(process).owner == scenario["mia"]


def test_the_beat_task_and_the_command_tick_the_tenant(scenario, expense, capsys):
    process = services.start("expense_approval", expense(), user=scenario["alice"])
    later = manager_task(process).created + 2 * DAY + datetime.timedelta(minutes=1)
    call_command("lowcode", "workflow", "tick", "--tenant", "acme", "--now", later.isoformat())
    assert "reminders: 1" in capsys.readouterr().out
    result = tasks.tick()
    assert result["schema"] == "acme" and result["reminders"] == 0


def test_beat_ticks_every_minute_from_public_fanned_out_per_tenant(tenant, monkeypatch):
    from types import SimpleNamespace

    from django.conf import settings
    from django.db import connection
    from django_tenants.utils import get_public_schema_name, schema_context

    queued = []
    monkeypatch.setattr(tasks.tick, "delay",
                        lambda: queued.append(connection.schema_name) or SimpleNamespace(id=f"id-{len(queued)}"))
    with schema_context(get_public_schema_name()):
        summary = tasks.tick()
    assert {"acme", "globex"} <= set(queued) and get_public_schema_name() not in queued
    assert summary["queued"]["acme"].startswith("id-")
    assert settings.CELERY_BEAT_SCHEDULE["workflows-tick"] == {
        "task": "workflows.tick", "schedule": 60, "options": {"expires": 55}}
