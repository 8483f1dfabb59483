"""The inbox in the end-user site (WF-4): tabs, the task page (record under rbac, decision, history,
diagram), claims, hand-overs, out of office; a task decided once only, and the inbox's queries
bounded whatever the number of tasks."""

from __future__ import annotations

import datetime
import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from viewflow.workflow.models import Task
from viewflow.workflow.status import STATUS

from rbac import services as rbac
from rbac.models import Role
from tests.scenario import client_for
from tests.workflows.test_engine import open_task
from workflows import services
from workflows.models import TaskDecision

IBAN = "DE89370400440532013000"


@pytest.fixture
def clients(scenario):
    return {name: client_for(scenario[name], key=False) for name in ("alice", "bob", "mia", "frank")}


@pytest.fixture
def started(scenario, expense):
    """start(amount): alice's expense (with an IBAN) in the Expense approval; returns its process."""
    def start(amount="500.00", title="Hotel in Hangzhou"):
        claim = expense(amount, title=title)
        type(claim).objects.filter(pk=claim.pk).update(iban=IBAN)
        return services.start("expense_approval", claim, user=scenario["alice"])

    return start


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_mia_sees_her_task_opens_it_and_approves_with_a_comment(scenario, clients, started):
    process = started("500.00", title="Taxi to the fair")
    task = open_task(process, "manager")
    mia = clients["mia"]

    listing = mia.get("/inbox/")
    assert listing.status_code == 200
    body = listing.content.decode()
    assert "Manager approval" in body and "Taxi to the fair" in body and f"/inbox/tasks/{task.pk}/" in body
    assert 'class="pg-badge">1<' in body  # The Inbox link counts her waiting task.

    page = mia.get(f"/inbox/tasks/{task.pk}/")
    content = page.content.decode()
    assert page.status_code == 200
    assert "Taxi to the fair" in content and 'value="approved"' in content and 'value="rejected"' in content
    assert IBAN not in content and "pg-masked" in content  # iban is masked for managers: it stays masked.
    diagram = page.context["diagram"]
    assert diagram["states"]["manager"] == "active" and diagram["states"]["claim"] == "done"
    assert "finance" not in diagram["states"]  # Pending.
    assert "<bpmn:userTask" in diagram["xml"] and 'id="wf-diagram-data"' in content
    assert [step["node"] for step in page.context["steps"]][:1] == ["claim"]

    response = mia.post(f"/inbox/tasks/{task.pk}/decide/", {"outcome": "approved", "comment": "Fine by me."},
                        follow=True)
    assert response.redirect_chain[-1][0] == "/inbox/"
    assert any("Approved" in message for message in messages_of(response))
    decision = TaskDecision.objects.get(task=task)
    assert (decision.user, decision.outcome, decision.comment) == (scenario["mia"], "approved", "Fine by me.")
    assert type(process.artifact).objects.get(pk=process.artifact_object_id).status == "approved"

    done = mia.get("/inbox/list/done/").content.decode()
    assert "Taxi to the fair" in done
    history = mia.get(f"/inbox/tasks/{task.pk}/").content.decode()
    assert "Fine by me." in history and 'value="approved"' not in history


def test_a_second_click_gets_a_message_not_an_error(scenario, clients, started):
    task = open_task(started(), "manager")
    mia = clients["mia"]
    mia.post(f"/inbox/tasks/{task.pk}/decide/", {"outcome": "approved"})

    again = mia.post(f"/inbox/tasks/{task.pk}/decide/", {"outcome": "rejected", "comment": "Oops"}, follow=True)

    assert again.status_code == 200 and again.redirect_chain[0][0] == f"/inbox/tasks/{task.pk}/"
    assert any("already completed by" in message and "mia" in message.lower() for message in messages_of(again))
    assert TaskDecision.objects.filter(task=task).count() == 1


def test_bad_outcome_is_refused_with_the_rule(clients, started):
    task = open_task(started(), "manager")
    response = clients["mia"].post(f"/inbox/tasks/{task.pk}/decide/", {"outcome": "maybe"}, follow=True)
    assert any("approved, rejected" in message for message in messages_of(response))
    assert Task.objects.get(pk=task.pk).status == STATUS.ASSIGNED


def test_bob_cannot_open_or_decide_mias_task(clients, started):
    task = open_task(started(), "manager")
    bob = clients["bob"]
    assert bob.get(f"/inbox/tasks/{task.pk}/").status_code == 404
    assert bob.post(f"/inbox/tasks/{task.pk}/decide/", {"outcome": "approved"}).status_code == 404
    assert bob.post(f"/inbox/tasks/{task.pk}/claim/").status_code == 404
    assert "Manager approval" not in bob.get("/inbox/").content.decode()
    assert Task.objects.get(pk=task.pk).status == STATUS.ASSIGNED


def test_finance_claims_from_its_queue_and_sees_the_iban(scenario, clients, started):
    process = started("1500.00", title="Fair booth")
    services.complete(open_task(process, "manager"), user=scenario["mia"], outcome="approved")
    task = open_task(process, "finance")
    frank = clients["frank"]

    claimable = frank.get("/inbox/list/claimable/").content.decode()
    assert "Finance approval" in claimable and f"/inbox/tasks/{task.pk}/claim/" in claimable
    assert "Finance (role)" in claimable and "role:finance" not in claimable
    assert "Fair booth" not in clients["mia"].get("/inbox/list/claimable/").content.decode()
    page = frank.get(f"/inbox/tasks/{task.pk}/").content.decode()
    assert IBAN in page  # finance sees iban in clear.

    frank.post(f"/inbox/tasks/{task.pk}/claim/")
    assert Task.objects.get(pk=task.pk).owner == scenario["frank"]
    assert "Fair booth" in frank.get("/inbox/").content.decode()
    frank.post(f"/inbox/tasks/{task.pk}/decide/", {"outcome": "approved", "comment": "Paid Friday."})
    claim = type(process.artifact).objects.get(pk=process.artifact_object_id)
    assert claim.status == "approved"


def test_the_owner_hands_a_task_over(scenario, clients, started):
    task = open_task(started(), "manager")
    mia = clients["mia"]
    unknown = mia.post(f"/inbox/tasks/{task.pk}/reassign/", {"to": "nobody"}, follow=True)
    assert any("nobody" in message for message in messages_of(unknown))
    mia.post(f"/inbox/tasks/{task.pk}/reassign/", {"to": "frank"})
    assert Task.objects.get(pk=task.pk).owner == scenario["frank"]
    assert clients["mia"].get(f"/inbox/tasks/{task.pk}/").status_code == 404  # Not hers any more.


def test_out_of_office_sends_open_tasks_to_the_delegate(scenario, clients, started):
    task = open_task(started(), "manager")
    mia = clients["mia"]
    now = timezone.localtime()
    refused = mia.post("/inbox/out-of-office/", {"to": "mia", "starts": "", "ends": ""})
    assert refused.status_code == 400
    assert "Enter a date and time." in refused.content.decode()
    period = {"to": "frank", "starts": (now - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
              "ends": (now + datetime.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")}
    backwards = mia.post("/inbox/out-of-office/", {**period, "ends": period["starts"], "starts": period["ends"]})
    assert backwards.status_code == 400 and "The end must come after the start." in backwards.content.decode()

    assert mia.post("/inbox/out-of-office/", period).status_code == 302
    moved = Task.objects.get(pk=task.pk)
    assert moved.owner == scenario["frank"] and moved.data["delegated_from"] == scenario["mia"].pk
    assert f"/inbox/tasks/{task.pk}/" in mia.get("/inbox/list/delegated/").content.decode()
    assert mia.get(f"/inbox/tasks/{task.pk}/").status_code == 200  # She can still follow it.


def test_unknown_inbox_list_is_404(clients):
    assert clients["mia"].get("/inbox/list/everything/").status_code == 404


def queries_of(client, path: str) -> int:
    client.get(path)  # Caches (permissions, site, flow classes) warmed.
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200
    return len(captured)


def test_inbox_queries_do_not_grow_with_tasks(scenario, clients, started):
    for index in range(2):
        started(title=f"Lunch {index}")
    mia = clients["mia"]
    few = queries_of(mia, "/inbox/")
    for index in range(12):
        started(title=f"Dinner {index}")
    assert queries_of(mia, "/inbox/") == few
    task = open_task(started(), "manager")
    assert queries_of(mia, f"/inbox/tasks/{task.pk}/") < 60


def test_a_role_queue_lists_many_tasks_in_bounded_queries(scenario, clients, started):
    for index in range(2):
        services.complete(open_task(started("1500.00", title=f"Booth {index}"), "manager"), user=scenario["mia"],
                          outcome="approved")
    frank = clients["frank"]
    few = queries_of(frank, "/inbox/list/claimable/")
    for index in range(8):
        services.complete(open_task(started("1500.00", title=f"Stand {index}"), "manager"), user=scenario["mia"],
                          outcome="approved")
    assert queries_of(frank, "/inbox/list/claimable/") == few


@pytest.mark.django_db(transaction=True)
def test_two_people_completing_the_same_task_at_once(committed_acme):
    """frank and ivy (both finance) press Approve on the same queued task at the same moment:
    one decision is taken, the other person is told who decided."""
    from django.contrib.auth import get_user_model
    from django_tenants.utils import tenant_context

    from dynamic_models import records, runtime
    from tests.scenario import seed_acme_for_the_browser

    people = seed_acme_for_the_browser(committed_acme, "alice", "mia", "frank")
    with tenant_context(committed_acme):
        ivy = get_user_model().objects.create_user("ivy", email="ivy@acme.example")
        rbac.assign_role(ivy, Role.objects.get(key="finance"))
        claim = records.save(runtime.get_model("expense")(
            title="Booth", amount="1500.00", currency="CNY", category="travel", notes="Fair",
            spent_on=timezone.localdate(), submitted_by=people["alice"]), user=people["alice"])
        process = services.start("expense_approval", claim, user=people["alice"])
        services.complete(open_task(process, "manager"), user=people["mia"], outcome="approved")
        task = open_task(process, "finance")
        clients = [client_for(people["frank"], key=False), client_for(ivy, key=False)]
    barrier, answers = threading.Barrier(2), {}

    def press(index: int) -> None:
        barrier.wait()
        response = clients[index].post(f"/inbox/tasks/{task.pk}/decide/",
                                       {"outcome": "approved", "comment": f"Yes from {index}"}, follow=True)
        answers[index] = (response.status_code, response.redirect_chain[-1][0], response.content.decode())
        connection.close()

    threads = [threading.Thread(target=press, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(answer[1] for answer in answers.values()) == ["/inbox/", f"/inbox/tasks/{task.pk}/"]
    loser = next(answer for answer in answers.values() if answer[1] != "/inbox/")
    assert loser[0] == 200 and "This task was already completed by" in loser[2]
    with tenant_context(committed_acme):
        assert TaskDecision.objects.filter(task_id=task.pk).count() == 1
        assert Task.objects.get(pk=task.pk).status == STATUS.DONE



#: A form bound to expense (form tasks edit the process's record): finance adds a note.
FINANCE_NOTE = {
    "label": "Finance note", "entity": "expense",
    "schema": {"type": "object", "properties": {"notes": {"type": "string", "maxLength": 30}}, "required": ["notes"]},
    "fields": {"notes": {"widget": "textarea", "label": "Notes"}},
    "layout": {"steps": [{"key": "main", "label": "Main", "items": [{"field": "notes"}]}]},
}


def test_a_form_task_shows_the_form_and_saves_the_record(scenario, clients, expense, publish):
    from metadata import services as metadata
    from tests.workflows.conftest import approval_body

    metadata.save_and_publish("form", "finance_note", FINANCE_NOTE)
    body = approval_body()
    manager = next(node for node in body["nodes"] if node["id"] == "manager")
    manager.update(task={"kind": "form", "form": "finance_note"}, assign={"user": "frank"})
    body["flows"] = [{**flow, "outcome": "completed"} if flow["id"] == "f_manager_ok" else flow
                     for flow in body["flows"] if flow["id"] != "f_manager_no"]
    body["nodes"][0]["trigger"] = {}
    publish("finance_note_flow", body)
    claim = expense("500.00")
    process = services.start("finance_note_flow", claim, user=scenario["alice"])
    task = open_task(process, "manager")
    frank = clients["frank"]

    page = frank.get(f"/inbox/tasks/{task.pk}/").content.decode()
    assert 'name="notes"' in page and 'value="approved"' not in page

    refused = frank.post(f"/inbox/tasks/{task.pk}/decide/", {"notes": "x" * 40})
    assert refused.status_code == 400 and 'name="notes"' in refused.content.decode()
    assert Task.objects.get(pk=task.pk).status == STATUS.ASSIGNED

    done = frank.post(f"/inbox/tasks/{task.pk}/decide/", {"notes": "Booked on cost centre 7.", "comment": "OK"})
    assert done.status_code == 302
    decision = TaskDecision.objects.get(task=task)
    assert (decision.outcome, decision.comment) == ("completed", "OK")
    claim.refresh_from_db()
    assert claim.notes == "Booked on cost centre 7." and claim.status == "approved"
