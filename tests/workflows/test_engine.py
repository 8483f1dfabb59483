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


class ERP:
    """A fake of the outside world: an HTTP endpoint that records the webhook posts it receives."""

    def __init__(self):
        import http.server
        import threading

        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append({"headers": dict(self.headers), "body": body})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/erp/expenses"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def erp(monkeypatch):
    from lowcode.celery import app

    monkeypatch.setattr(app.conf, "task_always_eager", True)  # Deliveries run here, as a worker would.
    server = ERP()
    yield server
    server.close()


@pytest.mark.parametrize(("amount", "approvers"), [("500.00", ["mia"]), ("1500.00", ["mia", "frank"])])
def test_alices_claim_from_the_form_to_approved_and_the_erp(scenario, erp, django_capture_on_commit_callbacks,
                                                            amount, approvers):
    import hashlib
    import hmac
    import json

    from tests.forms_engine.test_forms_core import _claim, _png
    from tests.scenario import client_for, expenses_of
    from workflows.models import WebhookDelivery, WebhookEndpoint

    WebhookEndpoint.objects.create(event="expense.approved", url=erp.url, secret="erp-secret")
    alice = scenario["alice"]
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(alice, key=False).post("/forms/expense_claim/", _claim(
            title="Fair in Hangzhou", amount=amount, receipt=_png(), notes="Booth and hotel."))
    assert response.status_code == 302
    claim = expenses_of(alice).get(title="Fair in Hangzhou")
    assert claim.status == "submitted"
    process = Process.objects.get(artifact_object_id=claim.pk)

    for username in approvers:
        user = scenario[username]
        task = open_task(process, "manager" if username == "mia" else "finance")
        with django_capture_on_commit_callbacks(execute=True):
            services.complete(task, user=user, outcome="approved", comment=f"OK by {username}.")
        claim.refresh_from_db()
        assert claim.status == ("approved" if username == approvers[-1] else "submitted")

    assert Process.objects.get(pk=process.pk).data["result"] == "approved"
    (post,) = erp.received
    payload = json.loads(post["body"])
    assert payload["event"] == "expense.approved" and payload["record"]["number"] == claim.number
    assert payload["record"]["status"] == "approved" and payload["workflow"] == "expense_approval"
    expected = hmac.new(b"erp-secret", post["headers"]["X-Lowcode-Timestamp"].encode() + b"." + post["body"],
                        hashlib.sha256).hexdigest()
    assert post["headers"]["X-Lowcode-Signature"] == f"sha256={expected}"
    delivery = WebhookDelivery.objects.get()
    assert delivery.status_code == 204 and delivery.delivered_at and delivery.attempts == 1


def test_a_failed_delivery_is_kept_for_a_retry(scenario, expense):
    from workflows import webhooks
    from workflows.models import WebhookEndpoint

    WebhookEndpoint.objects.create(event="expense.approved", url="http://127.0.0.1:9/closed", secret="s")
    (delivery,) = webhooks.queue("expense.approved", {"record": None})
    assert webhooks.deliver(delivery.pk, timeout=2) is False
    delivery.refresh_from_db()
    assert delivery.delivered_at is None and delivery.attempts == 1 and delivery.status_code is None


def test_a_record_event_starts_a_workflow_when_its_condition_holds(scenario, expense, publish,
                                                                  django_capture_on_commit_callbacks):
    publish("audit_big_spend", {
        "label": "Audit big spending", "entity": "expense",
        "nodes": [{"id": "created", "type": "start", "trigger": {"record": "updated", "when": "amount > 3000"}},
                  {"id": "flag", "type": "service_task", "action": "set_fields", "fields": {"notes": "'Audited.'"}},
                  {"id": "audit", "type": "user_task", "assign": {"user": "frank"}},
                  {"id": "done", "type": "end", "outcome": "completed"}],
        "flows": [{"id": "a", "source": "created", "target": "flag"}, {"id": "b", "source": "flag", "target": "audit"},
                  {"id": "c", "source": "audit", "target": "done"}]})
    from dynamic_models import records

    small, big = expense("120.00", title="Small"), expense("5000.00", title="Big")
    with django_capture_on_commit_callbacks(execute=True):
        for claim in (small, big):
            claim.title += " (edited)"
            records.save(claim, user=scenario["alice"])
    (process,) = Process.objects.filter(artifact_object_id__in=[small.pk, big.pk])
    assert process.artifact_object_id == big.pk and process.flow_class.key == "audit_big_spend"
    big.refresh_from_db()
    # The workflow's own write (notes) started no second process.
    assert big.notes == "Audited." and Process.objects.count() == 1
    assert Task.objects.get(process=process, flow_task_type="HUMAN").owner == scenario["frank"]


def test_seed_demo_starts_processes_in_different_states(acme):
    from django.core.management import call_command
    from django_tenants.utils import tenant_context

    call_command("lowcode", "seed_demo")
    with tenant_context(acme):
        from dynamic_models import runtime

        titles = dict(runtime.get_model("expense").objects.values_list("pk", "title"))
        by_title = {titles[process.artifact_object_id]: process for process in Process.objects.all()}
        assert set(by_title) == {"Train to Shanghai, client visit", "Flight Berlin - Beijing", "27-inch monitor",
                                 "Client dinner in New York"}
        assert open_task(by_title["Train to Shanghai, client visit"], "manager").owner.username == "mia"
        assert open_task(by_title["Flight Berlin - Beijing"], "finance").owner_permission == "role:finance"
        assert by_title["27-inch monitor"].data["result"] == "approved"
        assert by_title["Client dinner in New York"].data["result"] == "rejected"
    call_command("lowcode", "seed_demo")  # Again: nothing new.
    with tenant_context(acme):
        assert Process.objects.count() == 4


def test_the_workflow_command_starts_and_lists(scenario, expense, capsys):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    claim = expense()
    call_command("lowcode", "workflow", "start", "expense_approval", "--tenant", "acme", "--record", str(claim.pk),
                 "--user", "alice")
    assert "Started process" in capsys.readouterr().out
    process = Process.objects.get(artifact_object_id=claim.pk)
    assert process.data["started_by"] == scenario["alice"].pk
    call_command("lowcode", "workflow", "list", "--tenant", "acme", "--status", "NEW")
    assert "expense_approval v1" in capsys.readouterr().out
    with pytest.raises(CommandError, match="No published workflow 'nope'"):
        call_command("lowcode", "workflow", "start", "nope", "--tenant", "acme")


def test_a_start_that_fails_on_an_event_leaves_the_submission_and_is_audited(scenario, expense):
    from django.contrib.auth import get_user_model

    from audit.models import AuditEvent
    from rbac import services as rbac
    from rbac.models import Role

    dora = get_user_model().objects.create_user("dora", "dora@acme.example", "x")
    rbac.assign_role(dora, Role.objects.get(key=Role.MEMBER))  # Nobody manages her.
    claim = expense(user=dora)
    assert services.start_for_form("expense_claim", claim, user=dora) == []
    assert not Process.objects.exists()
    event = AuditEvent.objects.get(action="workflows.process.started", result="error")
    assert event.data["workflow"] == "expense_approval" and "Nobody manages" in event.data["error"]
    claim.refresh_from_db()
    assert claim.status == "draft"
