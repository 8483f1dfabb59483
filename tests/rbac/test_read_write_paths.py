"""One read path and one write path for record values (issue 9, findings 2, 3, 4 and 6).

alice (member) reads her expenses with the IBAN masked; these tests also hide `notes` from
members. Whatever alice asks (history, restore, filters, ordering, search, in the API and in
admin), she must neither see nor infer a value a rule hides or masks, nor write one the rules
keep from her, nor hand her records to someone else.
"""

from __future__ import annotations

import json
import re

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from audit.models import AuditEvent
from dynamic_models import records, runtime
from dynamic_models.api.records import filter_lookups
from rbac import services as rbac
from rbac.models import Role
from tests.scenario import client_for, expenses_of

OLD_IBAN, NEW_IBAN = "DE89370400440532013000", "GB29NWBK60161331926819"


@pytest.fixture
def member(people):
    member = Role.objects.get(key=Role.MEMBER)
    rbac.set_column_rule(member, "expense", "notes", "hidden")
    return member


def _draft_of(user):
    return expenses_of(user).filter(status="draft").first()


def _patch(client, record, body: dict):
    return client.patch(f"/api/v1/data/expense/{record.pk}/", json.dumps(body), content_type="application/json")


# --- finding 2: history shows values through the column rules ------------------------------


def test_history_masks_and_hides_values_for_whom_the_rules_apply(people, member):
    alice, frank = people["alice"], people["frank"]
    draft = _draft_of(alice)
    as_frank = client_for(frank)
    assert _patch(as_frank, draft, {"iban": OLD_IBAN, "notes": "Secret remark"}).status_code == 200
    assert _patch(as_frank, draft, {"notes": "Another secret"}).status_code == 200  # hidden fields only

    page = client_for(alice, key=False).get(f"/admin/data/expense/{draft.pk}/history/").content.decode()
    assert OLD_IBAN not in page and "****3000" in page
    assert "Secret remark" not in page and "Another secret" not in page and "notes" not in page
    assert page.count("<tr class=\"event-update\">") == 1  # The notes-only change is left out.
    assert "Record changed (expense)" in page  # The declared action's description (audit/actions.py).
    versions = records.history(draft, user=alice)
    assert [v.verb for v in versions] == ["create", "update"]
    assert versions[1].after == {"iban": "****3000"}

    full = client_for(frank, key=False).get(f"/admin/data/expense/{draft.pk}/history/").content.decode()
    assert OLD_IBAN in full and "Another secret" in full


# --- finding 3: restoring a version is a write like any other -----------------------------


def test_restoring_a_version_cannot_write_read_only_or_masked_values(people, member):
    alice, frank = people["alice"], people["frank"]
    draft = _draft_of(alice)
    as_frank = client_for(frank)
    assert _patch(as_frank, draft, {"status": "approved", "iban": OLD_IBAN}).status_code == 200
    assert _patch(as_frank, draft, {"status": "draft", "iban": NEW_IBAN}).status_code == 200
    approved = records.history(draft, user=frank)[1].event

    browser = client_for(alice, key=False)
    response = browser.post(f"/admin/data/expense/{draft.pk}/history/{approved.seq}/restore/", follow=True)
    assert "Not restored" in response.content.decode()
    draft.refresh_from_db()
    assert (draft.status, draft.iban) == ("draft", NEW_IBAN)

    with pytest.raises(ValidationError) as refused:
        records.restore_version(draft, approved.seq, user=alice)
    assert {name: [e.code for e in errors] for name, errors in refused.value.error_dict.items()} == {
        "status": ["read_only"], "iban": ["read_only"]}
    # frank may: the same service, another user.
    records.restore_version(runtime.get_model("expense").objects.get(pk=draft.pk), approved.seq, user=frank)
    draft.refresh_from_db()
    assert (draft.status, draft.iban) == ("approved", OLD_IBAN)


def test_restoring_a_version_keeps_inside_the_scope_conditions(people):
    alice = people["alice"]
    small = rbac.create_role("small_spender", grants=["data.view_expense", "data.change_expense"])
    rbac.add_scope(small, "expense", "own", owner_field="submitted_by")
    rbac.add_scope(small, "expense", "own", action="change", owner_field="submitted_by",
                   expression="amount < 1000")
    rbac.unassign_role(alice, Role.objects.get(key=Role.MEMBER))
    rbac.assign_role(alice, small)
    draft = _draft_of(alice)
    records.save(_set(draft, amount=5000), user=None)  # The system raised it: outside her change scope.
    big = records.history(draft, user=alice)[-1].event
    records.save(_set(draft, amount=500), user=None)
    with pytest.raises(PermissionDenied):
        records.restore_version(draft, big.seq, user=alice)
    draft.refresh_from_db()
    assert draft.amount == 500
    # An edit that would take the record out of the scope is refused the same way.
    assert _patch(client_for(alice), draft, {"amount": "2000.00"}).status_code == 403


def _set(record, **values):
    for name, value in values.items():
        setattr(record, name, value)
    return record


# --- finding 4: nothing answers a question about a hidden or masked value ------------------


@pytest.mark.parametrize("query", ["iban__istartswith=DE", "iban=x", "iban__isnull=true", "notes__icontains=a",
                                   "ordering=iban", "ordering=-notes", "ordering=title,iban"])
def test_filters_and_ordering_by_unreadable_fields_are_refused(people, member, query):
    response = client_for(people["alice"]).get(f"/api/v1/data/expense/?{query}")
    assert response.status_code == 400
    [(_name, [error])] = response.json().items()
    assert error["code"] == "field_not_allowed"


def test_the_callers_schema_lists_no_filter_of_an_unreadable_field(people, member):
    def filters_of(user):
        schema = client_for(user).get("/api/schema/?format=json").json()
        return {p["name"] for p in schema["paths"]["/api/v1/data/expense/"]["get"]["parameters"]}

    alice_filters, frank_filters = filters_of(people["alice"]), filters_of(people["frank"])
    assert "iban" in frank_filters and "notes__icontains" in frank_filters
    assert not {name for name in alice_filters if name.startswith(("iban", "notes"))}
    assert "title__icontains" in alice_filters


def test_admin_refuses_lookups_on_unreadable_fields(people, member):
    browser = client_for(people["alice"], key=False)
    assert browser.get("/admin/data/expense/?iban__istartswith=DE").status_code == 400
    assert browser.get("/admin/data/expense/?notes__icontains=a").status_code == 400
    assert browser.get("/admin/data/expense/?title__icontains=a").status_code == 200


def _answers(client, browser, queries: list[str], admin_queries: list[str]) -> list:
    answers = []
    for query in queries:
        response = client.get(f"/api/v1/data/expense/?page_size=100&{query}")
        # Signed file URLs (receipts) are fresh each time too.
        answers.append((query, response.status_code, SIGNED_URL.sub("/files/d/-/", response.content.decode())))
    for query in admin_queries:
        response = browser.get(f"/admin/data/expense/?{query}")
        body = response.content.decode() if response.status_code == 200 else ""
        # The page embeds a fresh CSRF token each time; compare what it lists.
        answers.append((query, response.status_code, SIGNED_URL.sub("/files/d/-/", body.split(
            'name="csrfmiddlewaretoken"')[0])))
    return answers


SIGNED_URL = re.compile(r"/files/d/[^/\"]+/")


def test_oracle_two_records_differing_in_a_hidden_or_masked_value_answer_alike(people, member):
    """Every filter, ordering and search form, through the API and admin, answers alike in two
    worlds that differ only in alice's masked IBAN (same last four digits) and hidden notes."""
    alice = people["alice"]
    Expense = runtime.get_model("expense")
    target = _draft_of(alice)
    names = [field if lookup == "exact" else f"{field}__{lookup}"
             for field, lookups in filter_lookups(Expense.lowcode_entity).items() for lookup in lookups]
    probes = ["DE", "GB", "D", "Secret", "true", "2020-01-01", "1"]
    queries = [f"{name}={probe}" for name in names for probe in probes]
    fields = [spec["key"] for spec in Expense.lowcode_entity["fields"]] + ["id", "created_at"]
    queries += [f"ordering={sign}{name}" for name in fields for sign in ("", "-")]
    queries += [f"search={probe}" for probe in ("DE89", "GB82", "Secret", "3000", "Lunch")]
    admin_queries = [f"q={probe}" for probe in ("DE89", "GB82", "Secret", "3000")]
    admin_queries += [f"o={index}" for index in range(1, 10)] + [f"o=-{index}" for index in range(1, 10)]
    admin_queries += ["iban__startswith=DE", "notes__startswith=S", "iban__gt=E"]
    as_alice, browser = client_for(alice), client_for(alice, key=False)

    def world(iban: str, notes: str) -> list:
        Expense.all_objects.filter(pk=target.pk).update(iban=iban, notes=notes)
        return _answers(as_alice, browser, queries, admin_queries)

    first, second = world(OLD_IBAN, "Secret alpha"), world("GB82WEST12345698763000", "zzz other")
    differing = [a[0] for a, b in zip(first, second, strict=True) if a != b]
    assert differing == []
    assert any(status == 400 for _query, status, _body in first)  # The probes did reach the fields.


# --- finding 6: owner fields are the server's ---------------------------------------------


def test_members_cannot_hand_records_to_someone_else(people):
    alice, bob = people["alice"], people["bob"]
    as_alice = client_for(alice)
    body = {"title": "Taxi", "amount": "12.00", "currency": "CNY", "spent_on": "2026-01-02", "category": "travel"}
    refused = as_alice.post("/api/v1/data/expense/", json.dumps({**body, "submitted_by": bob.pk}),
                            content_type="application/json")
    assert refused.status_code == 400 and refused.json()["submitted_by"][0]["code"] == "read_only"
    created = as_alice.post("/api/v1/data/expense/", json.dumps(body), content_type="application/json")
    assert created.status_code == 201, created.json()
    assert created.json()["submitted_by"] == alice.pk
    assert as_alice.get(f"/api/v1/data/expense/{created.json()['id']}/").status_code == 200
    draft = _draft_of(alice)
    assert _patch(as_alice, draft, {"submitted_by": bob.pk}).status_code == 400
    bulk = as_alice.patch("/api/v1/data/expense/bulk/", json.dumps([{"id": draft.pk, "submitted_by": bob.pk}]),
                          content_type="application/json")
    assert bulk.status_code == 400
    draft.refresh_from_db()
    assert draft.submitted_by_id == alice.pk
    # The service refuses it too, whoever calls it.
    with pytest.raises(ValidationError):
        records.save(_set(draft, submitted_by=bob), user=alice)


def test_whoever_may_change_every_record_may_reassign_it(people):
    """Through the service: the demo's submitted_by is set on create and read-only to clients and
    forms after (its field option), but the scope check itself lets frank reassign."""
    alice, bob, frank = people["alice"], people["bob"], people["frank"]
    draft = _draft_of(alice)
    records.save(_set(draft, submitted_by=bob), user=frank)
    draft.refresh_from_db()
    assert draft.submitted_by_id == bob.pk


def test_a_record_has_no_history_of_an_earlier_record_with_its_id(people):
    """An entity designed again starts its ids anew: the events of the record that had the id
    before (here recorded by hand) are not this record's history, nor a version to restore."""
    from audit import services as audit
    from dynamic_models.audit_actions import RECORD_CREATE, RECORD_UPDATE

    alice = people["alice"]
    Expense = runtime.get_model("expense")
    next_id = str(Expense.all_objects.order_by("-pk").values_list("pk", flat=True).first() + 1)
    audit.record(RECORD_CREATE.of("expense"), target_type="data.expense", target_id=next_id, after={"title": "Old"})
    old = audit.record(RECORD_UPDATE.of("expense"), target_type="data.expense", target_id=next_id,
                       before={"title": "Old"}, after={"title": "Someone else's secret"})
    created = client_for(alice).post("/api/v1/data/expense/", json.dumps({
        "title": "Taxi", "amount": "12.00", "currency": "CNY", "spent_on": "2026-01-02", "category": "travel"}),
        content_type="application/json")
    assert created.json()["id"] == int(next_id)
    record = Expense.objects.get(pk=next_id)
    assert [version.verb for version in records.history(record, user=alice)] == ["create"]
    with pytest.raises(AuditEvent.DoesNotExist):
        records.restore_version(record, old.seq, user=alice)
