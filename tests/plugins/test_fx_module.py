"""fx-tools' data-factory module "Generate demo expenses" at /dmm/demo/expenses (issue 18, PL-4):
it creates expenses submitted by the chosen department's people, audited, through the one write
path (a member may not create them for others: nothing is kept); it exists only where fx-tools is
enabled, and vanishes on disable."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from audit.models import AuditEvent
from datafactory.models import ModuleRun
from dynamic_models import runtime
from plugins import services
from rbac import services as rbac
from rbac.models import Department, Role
from tests.designers import client_of

INPUT = {"count": 6, "spent_from": "2026-10-01", "spent_until": "2026-10-31"}


@pytest.fixture
def fx_enabled(people, publisher, fx_package, acme):
    services.install(fx_package, actor="test")
    services.enable(acme, "fx-tools")
    connection.set_tenant(acme)
    return people


@pytest.fixture
def tina(fx_enabled):
    user = get_user_model().objects.create_user("tina", "tina@acme.example", "pw", is_staff=True)
    rbac.assign_role(user, Role.objects.get(key=Role.TENANT_ADMIN))
    return user


def test_the_module_creates_the_departments_expenses_audited(fx_enabled, tina):
    sales = Department.objects.get(name="Sales")
    Expense = runtime.get_model("expense")
    before = set(Expense.objects.values_list("pk", flat=True))
    last_event = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    admin = client_of(tina)
    form = admin.get("/dmm/demo/expenses/").content.decode()
    assert "Generate demo expenses" in form and ">Sales<" in form

    response = admin.post("/dmm/demo/expenses/", {**INPUT, "department": sales.pk})

    assert response.status_code == 200
    run = ModuleRun.objects.get()
    assert (run.status, run.plugin, run.output["created"]) == ("ok", "fx-tools", 6), run.message
    created = Expense.objects.exclude(pk__in=before)
    people = {*sales.members.values_list("pk", flat=True), *sales.managers.values_list("pk", flat=True)}
    assert created.count() == 6
    assert {expense.submitted_by_id for expense in created} <= people
    assert all(datetime.date(2026, 10, 1) <= expense.spent_on <= datetime.date(2026, 10, 31) for expense in created)
    assert AuditEvent.objects.filter(action="data.expense.create", actor_id=tina.pk, seq__gt=last_event).count() == 6
    assert "Created 6 expenses." in response.content.decode()


def test_bad_input_names_the_field(fx_enabled, tina):
    response = client_of(tina).post("/api/v1/dmm/demo/expenses/", {**INPUT, "count": 0, "spent_until": "2026-09-01"},
                                    content_type="application/json")

    assert response.status_code == 400
    assert "count" in response.json()
    assert not ModuleRun.objects.exists()


def test_a_member_may_not_create_expenses_for_others_and_nothing_is_kept(fx_enabled):
    rbac.grant(Role.objects.get(key=Role.MEMBER), "datafactory.run")
    Expense = runtime.get_model("expense")
    count = Expense.objects.count()

    body = client_of(fx_enabled["alice"]).post("/api/v1/dmm/demo/expenses/", {
        **INPUT, "department": Department.objects.get(name="Sales").pk}, content_type="application/json").json()

    assert body["status"] == "error" and "submitted_by" in body["message"]
    assert Expense.objects.count() == count


def test_the_module_lives_only_where_fx_tools_is_enabled(fx_enabled, tina, acme, globex):
    admin = client_of(tina)
    assert admin.get("/dmm/demo/expenses/").status_code == 200

    services.disable(acme, "fx-tools")

    assert admin.get("/dmm/demo/expenses/").status_code == 404
    assert "Generate demo expenses" not in admin.get("/dmm/").content.decode()

