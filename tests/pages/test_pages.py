"""The end-user site (issue 14): home, menu, theme, and each entity's table, detail, export,
bulk actions, inline edits and saved views, as the scenario's people see them."""

from __future__ import annotations

import pytest

from dynamic_models import runtime
from tests.scenario import client_for, expenses_of

IBAN = "DE89370400440532013000"


@pytest.fixture
def clients(people):
    expenses_of(people["alice"]).update(iban=IBAN)
    return {name: client_for(people[name], key=False) for name in ("alice", "bob", "mia", "frank")}


def page(client, path: str, status: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == status, (path, response.status_code, response.content[:2000])
    return response.content.decode()


def test_home_lists_the_entities_with_counts_the_viewer_may_see(clients, people):
    html = page(clients["alice"], "/")
    own = expenses_of(people["alice"]).count()
    assert "Expenses" in html
    assert f"{own} record" in html
    assert 'href="/data/expense/"' in html


def test_anonymous_visitors_are_sent_to_log_in(acme_client, people):
    response = acme_client.get("/data/expense/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_alice_sees_only_her_expenses_with_the_iban_masked(clients, people):
    alice = people["alice"]
    expense = runtime.get_model("expense")
    html = page(clients["alice"], "/data/expense/")
    for record in expense.objects.all():
        shown = f'href="/data/expense/{record.pk}/"' in html
        assert shown == (record.submitted_by_id == alice.pk), record
    assert IBAN not in html
    assert "****" + IBAN[-4:] in html


def test_frank_reads_the_iban_in_clear(clients, people):
    record = expenses_of(people["alice"]).first()
    assert IBAN in page(clients["frank"], f"/data/expense/{record.pk}/")
    assert IBAN not in page(clients["alice"], f"/data/expense/{record.pk}/")


def test_records_outside_the_scope_answer_404(clients, people):
    bobs = expenses_of(people["bob"]).first()
    for path in (f"/data/expense/{bobs.pk}/", f"/data/expense/{bobs.pk}/edit/"):
        page(clients["alice"], path, 404)
    response = clients["alice"].post(f"/data/expense/{bobs.pk}/cell/", {"field": "title", "value": "Mine"})
    assert response.status_code == 404
    page(clients["mia"], f"/data/expense/{bobs.pk}/")
    page(clients["alice"], "/data/expense/999999/", 404)
    page(clients["alice"], "/data/nothing/", 404)
