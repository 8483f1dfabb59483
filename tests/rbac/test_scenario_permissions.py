"""The scenario's permission rules (scenario.md, RB-1..RB-8) through admin, API, export and expand=
(the people are described in tests/scenario.py)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django_tenants.utils import tenant_context

from audit import services as audit
from dynamic_models import runtime
from dynamic_models.seed import seed_demo
from rbac import services as rbac
from rbac.models import Department, Role
from tests.scenario import client_for, expenses_of, listed


def test_api_scopes_and_columns_per_person(people):
    alice, bob, mia, frank = (people[name] for name in ("alice", "bob", "mia", "frank"))
    as_alice, as_mia, as_frank = client_for(alice), client_for(mia), client_for(frank)
    rows = listed(as_alice)
    assert {row["id"] for row in rows} == set(expenses_of(alice).values_list("pk", flat=True))
    ibans = [row["iban"] for row in rows if row["iban"]]
    assert ibans and all(iban.startswith("****") and len(iban) == 8 for iban in ibans)
    assert {row["id"] for row in listed(as_mia)} == set(
        runtime.get_model("expense").objects.filter(submitted_by__in=[alice, bob]).values_list("pk", flat=True))
    assert all(row["iban"] is None or row["iban"].startswith("****") for row in listed(as_mia))
    frank_rows = listed(as_frank)
    assert len(frank_rows) == runtime.get_model("expense").objects.count()
    assert "DE89370400440532013000" in {row["iban"] for row in frank_rows}
    # Counts and filters stay inside the scope too.
    assert as_alice.get("/api/v1/data/expense/?currency=EUR").json()["count"] == 0  # bob's flight


def test_a_guessed_id_answers_404_in_api_and_admin(people):
    alice, bob = people["alice"], people["bob"]
    bobs = expenses_of(bob).first()
    assert client_for(alice).get(f"/api/v1/data/expense/{bobs.pk}/").status_code == 404
    assert client_for(alice).patch(f"/api/v1/data/expense/{bobs.pk}/", json.dumps({"title": "x"}),
                                   content_type="application/json").status_code == 404
    browser = client_for(alice, key=False)
    assert browser.get(f"/admin/data/expense/{bobs.pk}/change/").status_code == 404
    assert browser.get(f"/admin/data/expense/{bobs.pk}/history/").status_code == 404
    changelist = browser.get("/admin/data/expense/").content.decode()
    assert bobs.title not in changelist and expenses_of(alice).first().title in changelist
    assert "DE89370400440532013000" not in changelist and "****3000" in changelist


def test_members_edit_drafts_only_and_never_the_status(people):
    alice = people["alice"]
    as_alice = client_for(alice)
    draft = expenses_of(alice).filter(status="draft").first()
    submitted = expenses_of(alice).filter(status="submitted").first()
    url = f"/api/v1/data/expense/{draft.pk}/"
    refused = as_alice.patch(url, json.dumps({"status": "approved"}), content_type="application/json")
    assert refused.status_code == 400
    assert refused.json() == {"status": [{"code": "read_only", "message": "This field is read-only."}]}
    assert as_alice.patch(url, json.dumps({"title": "Team lunch (4 people)"}),
                          content_type="application/json").status_code == 200
    # Visible, but outside the change scope (no longer a draft): refused, not hidden.
    assert as_alice.patch(f"/api/v1/data/expense/{submitted.pk}/", json.dumps({"title": "x"}),
                          content_type="application/json").status_code == 403
    draft.refresh_from_db()
    assert draft.status == "draft" and draft.title == "Team lunch (4 people)"
    # Admin: the IBAN is not in the form, the status is shown but not editable.
    form = client_for(alice, key=False).get(f"/admin/data/expense/{draft.pk}/change/").content.decode()
    assert 'name="iban"' not in form and 'name="status"' not in form and 'name="title"' in form


def test_export_follows_scope_columns_and_the_export_permission(people):
    alice, frank = people["alice"], people["frank"]
    assert client_for(alice).get("/api/v1/data/expense/export.csv").status_code == 403
    response = client_for(frank).get("/api/v1/data/expense/export.csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert len(rows) == runtime.get_model("expense").objects.count()
    assert "DE89370400440532013000" in {row["iban"] for row in rows}
    assert audit.filter_events(action="data.expense.export").filter(actor=frank).exists()
    # A role that may export but sees masked IBANs exports them masked.
    member = Role.objects.get(key=Role.MEMBER)
    rbac.grant(member, "data.export_expense")
    text = b"".join(client_for(alice).get("/api/v1/data/expense/export.csv").streaming_content).decode("utf-8-sig")
    exported = list(csv.DictReader(io.StringIO(text)))
    assert len(exported) == expenses_of(alice).count()
    assert all(row["iban"] in ("", "****3000", "****2606") for row in exported)


def test_expand_shows_related_records_only_within_scope(people):
    alice = people["alice"]
    contractor = rbac.create_role("contractor", grants=["data.view_expense", "data.view_project"])
    rbac.add_scope(contractor, "expense", "all")
    rbac.add_scope(contractor, "project", "own")  # Projects they created: none.
    rbac.unassign_role(alice, Role.objects.get(key=Role.MEMBER))
    rbac.assign_role(alice, contractor)
    rows = listed(client_for(alice), "&expand=project")
    with_project = [row for row in rows if row["project"] is not None]
    assert with_project and all(isinstance(row["project"], int) for row in with_project)  # ids, not records
    rbac.add_scope(contractor, "project", "all")
    rows = listed(client_for(alice), "&expand=project")
    assert all(isinstance(row["project"], dict) for row in rows if row["project"] is not None)


def test_openapi_for_a_key_leaves_out_its_hidden_fields(people):
    alice, frank = people["alice"], people["frank"]
    rbac.set_column_rule(Role.objects.get(key=Role.MEMBER), "expense", "notes", "hidden")
    as_alice = client_for(alice)
    schema = as_alice.get("/api/schema/?format=json").json()
    assert "notes" not in schema["components"]["schemas"]["Expense"]["properties"]
    assert "notes" not in schema["components"]["schemas"]["ExpenseRequest"]["properties"]
    assert schema["components"]["schemas"]["Expense"]["properties"]["iban"]["readOnly"] is True
    assert "notes" not in listed(as_alice)[0]
    frank_schema = client_for(frank).get("/api/schema/?format=json").json()
    assert "notes" in frank_schema["components"]["schemas"]["Expense"]["properties"]
    # A write to the hidden field is an unknown field for alice.
    draft = expenses_of(alice).filter(status="draft").first()
    response = as_alice.patch(f"/api/v1/data/expense/{draft.pk}/", json.dumps({"notes": "x"}),
                              content_type="application/json")
    assert response.status_code == 400 and response.json()["notes"][0]["code"] == "unknown_field"


def test_permission_checks_after_the_first_cost_no_query(people):
    from django.test.utils import CaptureQueriesContext

    alice = people["alice"]
    record = expenses_of(alice).first()
    rbac.check(alice, "data.expense.view")
    with CaptureQueriesContext(connection) as queries:
        for _ in range(100):
            assert rbac.check(alice, "data.expense.view")
            assert rbac.check(alice, "data.expense.change", record) == (record.status == "draft")
            assert rbac.field_rules(alice, "expense")["iban"] == "masked"
            rbac.scope_queryset(alice, runtime.get_model("expense").objects.all())
    assert len(queries) == 0


def test_record_history_tells_the_story_and_restores_a_version(people):
    alice, frank = people["alice"], people["frank"]
    draft = expenses_of(alice).filter(status="draft").first()
    as_alice = client_for(alice)
    url = f"/api/v1/data/expense/{draft.pk}/"
    original_title = draft.title
    as_alice.patch(url, json.dumps({"title": "Lunch with Globex"}), content_type="application/json")
    as_alice.patch(url, json.dumps({"amount": "460.00"}), content_type="application/json")
    events = list(audit.history("data.expense", str(draft.pk)))
    assert [event.action for event in events] == ["data.expense.create", "data.expense.update", "data.expense.update"]
    assert events[1].before == {"title": original_title} and events[1].after == {"title": "Lunch with Globex"}
    assert all(event.actor_repr == "alice" for event in events)
    assert events[1].api_key_prefix

    admin = client_for(frank, key=False)
    frank.is_superuser = True  # Restoring is a change: frank (finance) may change expenses anyway.
    frank.save()
    page = admin.get(f"/admin/data/expense/{draft.pk}/history/").content.decode()
    assert "Lunch with Globex" in page and "Restore this version" in page
    response = admin.post(f"/admin/data/expense/{draft.pk}/history/{events[0].seq}/restore/")
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.title == original_title and str(draft.amount) == "420.00"
    restored = audit.history("data.expense", str(draft.pk)).last()
    assert restored.action == "data.expense.restore_version" and restored.actor_repr == "frank"
    assert audit.verify().ok


# A second process answering "requests" for alice: it keeps its permission cache between them.
SECOND_PROCESS = """
import sys
import django
django.setup()
from django.contrib.auth import get_user_model
from django.db import connection
from django_tenants.utils import get_tenant_model
from rbac import services as rbac
from dynamic_models import runtime
for line in sys.stdin:
    username, question = line.split()
    connection.set_tenant(get_tenant_model().objects.get(schema_name="acme"))
    user = get_user_model().objects.get(username=username)
    if question == "expenses":
        print(rbac.scope_queryset(user, runtime.get_model("expense").objects.all()).count(), flush=True)
    else:
        print(rbac.check(user, question), flush=True)
"""


def test_a_role_change_takes_effect_in_another_process_on_its_next_request(committed_acme, test_database_url):
    seed_demo()
    process = subprocess.Popen([sys.executable, "-c", SECOND_PROCESS], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True, cwd=settings.BASE_DIR,
                               env={**os.environ, "DATABASE_URL": test_database_url, "LOG_LEVEL": "WARNING"})

    def ask(username, question):
        process.stdin.write(f"{username} {question}\n")
        process.stdin.flush()
        return process.stdout.readline().strip()

    try:
        assert ask("alice", "data.expense.export") == "False"
        assert ask("mia", "expenses") == "8"
        with tenant_context(committed_acme):
            rbac.grant(Role.objects.get(key=Role.MEMBER), "data.export_expense")
        assert ask("alice", "data.expense.export") == "True"  # A role change.
        with tenant_context(committed_acme):
            users = get_user_model().objects
            rbac.remove_member(Department.objects.get(name="Sales"), users.get(username="bob"))
        assert ask("mia", "expenses") == "4"  # A membership change: bob's expenses left mia's scope.
        with tenant_context(committed_acme):
            rbac.unassign_role(users.get(username="alice"), Role.objects.get(key=Role.MEMBER))
        assert ask("alice", "data.expense.view") == "False"
    finally:
        process.stdin.close()
        process.wait(timeout=30)
