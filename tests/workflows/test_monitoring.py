"""Workflow monitoring (WF-8): who may monitor (tenant admins yes, alice 403), the instance list's
filters and bounded queries, an instance's page (node states, timeline, variables, audit events),
the confirmed staff actions (cancel, move a token; audited) and the statistics on known instances."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from viewflow.workflow.models import Process, Task
from viewflow.workflow.status import PROCESS

from audit.models import AuditEvent
from tests.designers import client_of
from tests.workflows.test_engine import open_task
from workflows import monitoring, services

BASE = "/admin/viewflow/process"


@pytest.fixture
def tina(scenario):
    """A tenant admin who is no superuser: monitors through the role's operations."""
    from django.contrib.auth import get_user_model

    from rbac import services as rbac
    from rbac.models import Role

    user = get_user_model().objects.create_user("tina", "tina@acme.example", "x", is_staff=True)
    rbac.assign_role(user, Role.objects.get(key=Role.TENANT_ADMIN))
    return user


@pytest.fixture
def instances(scenario, expense):
    """Four Expense approvals: done (small, approved), at finance (big), rejected, and waiting for mia."""
    alice, mia = scenario["alice"], scenario["mia"]
    made = {}
    made["approved"] = services.start("expense_approval", expense("300.00"), user=alice)
    services.complete(open_task(made["approved"], "manager"), user=mia, outcome="approved")
    made["finance"] = services.start("expense_approval", expense("1500.00", title="Fair stand"), user=alice)
    services.complete(open_task(made["finance"], "manager"), user=mia, outcome="approved")
    made["rejected"] = services.start("expense_approval", expense("80.00", title="Taxi"), user=alice)
    services.complete(open_task(made["rejected"], "manager"), user=mia, outcome="rejected", comment="No receipt.")
    made["waiting"] = services.start("expense_approval", expense("120.00", title="Lunch"), user=alice)
    return made


def listed(client, query: str = "") -> list[int]:
    response = client.get(f"{BASE}/?{query}")
    assert response.status_code == 200, response.content[:500]
    return [process.pk for process in response.context["page"].object_list]


def test_only_staff_who_monitor_may(scenario, instances, tina):
    alice = client_of(scenario["alice"])
    process = instances["waiting"]
    for url in (f"{BASE}/", f"{BASE}/{process.pk}/change/", f"{BASE}/statistics/expense_approval/",
                f"{BASE}/{process.pk}/cancel/"):
        assert alice.get(url).status_code == 403, url
    assert alice.post(f"{BASE}/{process.pk}/cancel/").status_code == 403
    assert Process.objects.get(pk=process.pk).status == PROCESS.NEW
    assert monitoring.may_monitor(tina) and not monitoring.may_monitor(scenario["alice"])
    assert client_of(tina).get(f"{BASE}/").status_code == 200


def test_the_list_filters_by_workflow_status_task_record_and_dates(instances, tina):
    client = client_of(tina)
    ids = {name: process.pk for name, process in instances.items()}
    assert sorted(listed(client)) == sorted(ids.values())
    assert sorted(listed(client, "status=NEW")) == sorted([ids["finance"], ids["waiting"]])
    assert sorted(listed(client, "status=DONE")) == sorted([ids["approved"], ids["rejected"]])
    assert listed(client, "workflow=expense_approval&task=finance") == [ids["finance"]]
    assert listed(client, "task=manager") == [ids["waiting"]]
    assert listed(client, "workflow=expense_approval&version=1&status=NEW&task=manager") == [ids["waiting"]]
    assert listed(client, "workflow=expense_approval&version=9") == []
    assert listed(client, f"record={instances['rejected'].artifact_object_id}") == [ids["rejected"]]
    today = timezone.localdate()
    assert len(listed(client, f"started_from={today}&started_until={today}")) == 4
    assert listed(client, f"started_from={today + datetime.timedelta(days=1)}") == []

    refused = client.get(f"{BASE}/?started_from=yesterday&version=0")
    assert refused.status_code == 400
    assert set(refused.context["form"].errors) == {"started_from", "version"}


def test_the_list_costs_the_same_queries_for_more_instances(scenario, expense, instances, tina):
    client = client_of(tina)
    client.get(f"{BASE}/")  # Flow classes built, caches warm.
    with CaptureQueriesContext(connection) as few:
        client.get(f"{BASE}/")
    for amount in ("10.00", "20.00", "2000.00", "30.00", "40.00", "50.00"):
        services.start("expense_approval", expense(amount), user=scenario["alice"])
    with CaptureQueriesContext(connection) as more:
        response = client.get(f"{BASE}/")
    assert response.context["page"].paginator.count == 10
    assert len(more) == len(few), [query["sql"] for query in more.captured_queries]


def test_an_instance_shows_its_diagram_states_timeline_variables_and_events(instances, tina):
    process = instances["finance"]
    response = client_of(tina).get(f"{BASE}/{process.pk}/change/")
    assert response.status_code == 200
    diagram = response.context["diagram"]
    assert diagram["states"]["finance"] == "active"
    assert diagram["states"]["manager"] == diagram["states"]["mark_submitted"] == "done"
    assert "approved" not in diagram["states"] and 'id="finance"' in diagram["xml"]
    assert [step["node"] for step in response.context["history"]][-1] == "finance"
    variables = dict(response.context["variables"])
    assert variables["outcome"] == "approved" and variables["started_by"] == process_starter(process)
    actions = [row["event"].action for row in response.context["events"]]
    # Event data in words: the assigned task's queue by its role's name, no owner as "-".
    finance_assigned = [dict(row["details"]) for row in response.context["events"]
                        if row["event"].action == "workflows.task.assigned" and row["about"] == "Finance approval"]
    assert finance_assigned == [{"owner": "-", "queue": "Finance (role)", "reason": "assigned"}]
    assert {"workflows.process.started", "workflows.task.assigned", "workflows.task.completed"} <= set(actions)
    html = response.content.decode()
    assert "Finance approval" in html and 'data-config="wf-diagram-config"' in html and "Cancel instance" in html


def process_starter(process) -> str:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(pk=process.data["started_by"]).username


def test_cancel_is_confirmed_then_done_and_audited(instances, tina):
    client = client_of(tina)
    process = instances["waiting"]
    confirm = client.get(f"{BASE}/{process.pk}/cancel/")
    assert confirm.status_code == 200 and "Yes, I’m sure" in confirm.content.decode()
    assert Process.objects.get(pk=process.pk).status == PROCESS.NEW

    response = client.post(f"{BASE}/{process.pk}/cancel/")
    assert response.status_code == 302 and response["Location"].endswith(f"/{process.pk}/change/")
    assert Process.objects.get(pk=process.pk).status == PROCESS.CANCELED
    event = AuditEvent.objects.get(action="workflows.process.cancelled", target_id=str(process.pk))
    assert event.actor == tina

    again = client.post(f"{BASE}/{process.pk}/cancel/", follow=True)
    assert "The process is not running." in again.content.decode()


def test_a_token_moved_to_another_node(instances, tina, scenario):
    client = client_of(tina)
    process = instances["waiting"]
    refused = client.post(f"{BASE}/{process.pk}/move/", {"node": "nowhere"})
    assert refused.status_code == 400 and "node" in refused.context["form"].errors

    assert client.post(f"{BASE}/{process.pk}/move/", {"node": "finance"}).status_code == 302
    finance = open_task(process, "finance")
    assert finance.owner_permission == "role:finance"
    assert not Task.objects.filter(process=process, flow_task__endswith=".n_manager", status="ASSIGNED").exists()
    assert AuditEvent.objects.get(action="workflows.process.token_moved", target_id=str(process.pk)).actor == tina


def test_statistics_on_known_instances(instances, tina):
    """Manager tasks made to take 1..4 hours: average 2.5 h, p95 3.85 h (linear interpolation)."""
    now = timezone.now()
    manager_tasks = Task.objects.filter(flow_task__endswith=".n_manager", status="DONE").order_by("pk")
    assert manager_tasks.count() == 3
    for hours, task in zip((1, 2, 4), manager_tasks, strict=True):
        Task.objects.filter(pk=task.pk).update(created=now - datetime.timedelta(hours=hours + 1),
                                               finished=now - datetime.timedelta(hours=1))
    waiting = open_task(instances["waiting"], "manager")
    waiting.data["deadline"]["expire_at"] = (now - datetime.timedelta(minutes=5)).isoformat()
    waiting.save(update_fields=["data"])

    statistics = monitoring.statistics("expense_approval", now=now)

    assert (statistics["started"], statistics["completed"], statistics["running"]) == (4, 2, 2)
    assert statistics["started_per_day"][-1] == 4 and statistics["completed_per_day"][-1] == 2
    tasks = {task["node"]: task for task in statistics["tasks"]}
    assert tasks["manager"]["count"] == 3
    assert tasks["manager"]["average"] == pytest.approx(7 / 3 * 3600)
    assert tasks["manager"]["p95"] == pytest.approx((2 + 0.9 * 2) * 3600)
    assert tasks["manager"]["overdue"] == 1 and tasks["finance"]["overdue"] == 0
    assert tasks["finance"]["count"] == 0 and tasks["finance"]["average"] is None

    page = client_of(tina).get(f"{BASE}/statistics/expense_approval/")
    assert page.status_code == 200
    chart = page.context["chart"]
    assert chart["durations"]["labels"] == ["Manager approval", "Finance approval"]
    assert chart["durations"]["series"][0]["values"][0] == pytest.approx(2.33, abs=0.01)
    assert client_of(tina).get(f"{BASE}/statistics/nope/").status_code == 404


def test_a_failed_service_task_is_retried_and_audited(scenario, expense, publish, tina):
    """A service task writing a text into the expense's amount fails; staff retry it (it fails
    again: the revived task stays retryable) and the retry is audited."""
    publish("bad_status", {
        "label": "Bad status", "entity": "expense",
        "nodes": [{"id": "go", "type": "start"},
                  {"id": "mark", "type": "service_task", "label": "Mark odd", "action": "set_fields",
                   "fields": {"amount": "'plenty'"}},
                  {"id": "end", "type": "end"}],
        "flows": [{"id": "f1", "source": "go", "target": "mark"}, {"id": "f2", "source": "mark", "target": "end"}]})
    process = services.start("bad_status", expense(), user=scenario["alice"])
    failed = Task.objects.get(process=process, status="ERROR")
    client = client_of(tina)
    page = client.get(f"{BASE}/{process.pk}/change/")
    assert page.context["diagram"]["states"]["mark"] == "failed"
    assert f"/{process.pk}/retry/{failed.pk}/" in page.content.decode()
    assert list(client.get(f"{BASE}/?status=FAILED").context["page"].object_list) == [process]

    assert client.get(f"{BASE}/{process.pk}/retry/{failed.pk}/").status_code == 200
    assert Task.objects.get(pk=failed.pk).status == "ERROR"
    assert client.post(f"{BASE}/{process.pk}/retry/{failed.pk}/").status_code == 302
    assert Task.objects.get(pk=failed.pk).status == "REVIVED"
    assert Task.objects.filter(process=process, status="ERROR").exclude(pk=failed.pk).exists()
    event = AuditEvent.objects.get(action="workflows.task.retried", target_id=str(failed.pk))
    assert event.actor == tina
    assert client.post(f"{BASE}/{process.pk}/retry/999999/").status_code == 404
