"""A task completes exactly once, even when two people press the button at the same moment (WF-4)."""

from __future__ import annotations

import threading
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from tests.scenario import seed_acme_for_the_browser
from workflows import services
from workflows.exceptions import WorkflowError


def test_two_finance_people_approve_at_once_one_wins(committed_acme):
    from django_tenants.utils import tenant_context
    from viewflow.workflow.models import Task

    from dynamic_models import records, runtime
    from rbac import services as rbac
    from rbac.models import Role
    from workflows.models import TaskDecision

    seed_acme_for_the_browser(committed_acme)  # acme only: committing tests clean acme alone.
    with tenant_context(committed_acme):
        users = get_user_model().objects
        alice, mia = users.get(username="alice"), users.get(username="mia")
        fiona = users.create_user("fiona", "fiona@acme.example", "x")
        rbac.assign_role(fiona, Role.objects.get(key="finance"))
        claim = records.save(runtime.get_model("expense")(
            title="Fair booth", amount=Decimal("4800.00"), currency="CNY", category="other", notes="Booth rent.",
            spent_on=timezone.localdate(), submitted_by=alice), user=alice)
        process = services.start("expense_approval", claim, user=alice)
        manager = Task.objects.get(process=process, owner=mia)
        services.complete(manager, user=mia, outcome="approved")
        finance = Task.objects.get(process=process, owner_permission="role:finance")

    barrier, results = threading.Barrier(2), {}

    def approve(username):
        try:
            connection.set_tenant(committed_acme)
            user = get_user_model().objects.get(username=username)
            barrier.wait(timeout=10)
            services.complete(Task.objects.get(pk=finance.pk), user=user, outcome="approved")
            results[username] = "ok"
        except WorkflowError as error:
            results[username] = error.messages[0]
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(name,)) for name in ("frank", "fiona")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(results.values())[-1] == "ok", results
    winner = next(name for name, result in results.items() if result == "ok")
    loser = next(name for name in results if name != winner)
    assert results[loser] == f"This task was already completed by {winner}."
    with tenant_context(committed_acme):
        assert TaskDecision.objects.filter(task_id=finance.pk).count() == 1
        assert Task.objects.get(pk=finance.pk).owner.username == winner
        claim.refresh_from_db()
        assert claim.status == "approved"
