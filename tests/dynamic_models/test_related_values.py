"""Lookup, rollup and count fields (issue 17): values of related records computed by the database
when a record is read, through the API (read-only), admin and export, and behind rbac's column rules."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client

from dynamic_models import runtime, services
from lowcode.apikeys import services as apikeys
from metadata.exceptions import DefinitionValidationError
from rbac import services as rbac
from rbac.models import Role

from .test_design_errors import body

NAME = {"key": "name", "type": "text"}
PROJECT = [NAME, {"key": "budget", "type": "decimal"},
           {"key": "tags", "type": "relation", "options": {"target": "tag", "cardinality": "many_to_many"}}]
ROLLUPS = [
    {"key": "spent", "type": "rollup", "options": {"relation": "expense.project", "field": "amount", "function": "sum"}},
    {"key": "average", "type": "rollup",
     "options": {"relation": "expense.project", "field": "amount", "function": "avg"}},
    {"key": "largest", "type": "rollup",
     "options": {"relation": "expense.project", "field": "amount", "function": "max"}},
    {"key": "first_spent_on", "type": "rollup",
     "options": {"relation": "expense.project", "field": "spent_on", "function": "min"}},
    {"key": "expenses", "type": "count", "options": {"relation": "expense.project"}},
    {"key": "tag_count", "type": "count", "options": {"relation": "tags"}},
    {"key": "longest_tag", "type": "rollup", "options": {"relation": "tags", "field": "name", "function": "max"}},
    {"key": "tag_names", "type": "lookup", "options": {"relation": "tags", "field": "name"}},
    {"key": "expense_titles", "type": "lookup", "options": {"relation": "expense.project", "field": "title"}},
]
EXPENSE = [{"key": "title", "type": "text"}, {"key": "amount", "type": "decimal"}, {"key": "spent_on", "type": "date"},
           {"key": "project", "type": "relation", "options": {"target": "project"}},
           {"key": "project_budget", "type": "lookup", "options": {"relation": "project", "field": "budget"}},
           {"key": "project_name", "type": "lookup", "options": {"relation": "project", "field": "name"}}]


@pytest.fixture
def related(tenant):
    """tag, project (budget, tags, rollups and counts of its expenses) and expense (lookups of its project)."""
    services.publish_body(body("tag", NAME))
    services.publish_body(body("project", *PROJECT))
    services.publish_body(body("expense", *EXPENSE))
    services.publish_body(body("project", *PROJECT, *ROLLUPS))
    tag, project, expense = (runtime.get_model(key) for key in ("tag", "project", "expense"))
    apollo = project.objects.create(name="Apollo", budget="1000.00")
    apollo.tags.set([tag.objects.create(name="space"), tag.objects.create(name="moon")])
    project.objects.create(name="Gemini")
    for title, amount, day in (("Taxi", "12.50", "2026-01-05"), ("Hotel", "200.00", "2026-01-03"),
                               ("Gone", "999.00", "2026-01-01")):
        expense.objects.create(title=title, amount=amount, spent_on=day, project=apollo)
    expense.objects.get(title="Gone").soft_delete()
    return apollo


def test_values_are_computed_by_the_database(related):
    apollo = runtime.get_model("project").objects.get(name="Apollo")
    assert (apollo.spent, apollo.expenses, apollo.largest, str(apollo.first_spent_on)) == \
        (Decimal("212.50"), 2, Decimal("200.00"), "2026-01-03")
    assert round(apollo.average, 2) == Decimal("106.25")
    assert (apollo.tag_count, apollo.longest_tag) == (2, "space")
    assert (apollo.tag_names, apollo.expense_titles) == (["space", "moon"], ["Taxi", "Hotel"])
    gemini = runtime.get_model("project").objects.get(name="Gemini")
    assert (gemini.spent, gemini.expenses, gemini.average, gemini.tag_count) == (0, 0, None, 0)
    taxi = runtime.get_model("expense").objects.get(title="Taxi")
    assert (taxi.project_budget, taxi.project_name) == (Decimal("1000.00"), "Apollo")
    # Never stale: the budget changes, the lookup follows.
    runtime.get_model("project").objects.filter(pk=apollo.pk).update(budget="5.00")
    assert runtime.get_model("expense").objects.get(title="Taxi").project_budget == Decimal("5.00")
    # A record not read through the manager computes its values too.
    unannotated = runtime.get_model("expense").all_objects.get(title="Taxi")
    assert unannotated.formula_value("project_budget") == Decimal("5.00")
    assert runtime.get_model("project").all_objects.get(name="Apollo").formula_value("expenses") == 2


@pytest.fixture
def admin_api(related, acme, make_user):
    user = make_user(acme, "frank", is_superuser=True, is_staff=True)
    connection.set_tenant(acme)
    return client_of(user)


def client_of(user) -> Client:
    _key, secret = apikeys.create_key(user, name="test", scopes=["*:write"])
    return Client(HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Api-Key {secret}")


def test_the_api_shows_the_values_read_only(admin_api, related):
    record = admin_api.get(f"/api/v1/data/project/{related.pk}/").json()
    assert (record["spent"], record["expenses"], record["tag_count"]) == ("212.50", 2, 2)
    listed = admin_api.get("/api/v1/data/expense/?ordering=title").json()["results"]
    assert [(row["title"], row["project_budget"], row["project_name"]) for row in listed] == [
        ("Hotel", "1000.00", "Apollo"), ("Taxi", "1000.00", "Apollo")]
    refused = admin_api.post("/api/v1/data/expense/", {"title": "Bus", "project_budget": "1.00"},
                             content_type="application/json")
    assert refused.status_code == 400 and refused.json()["project_budget"][0]["code"] == "read_only"
    created = admin_api.post("/api/v1/data/expense/", {"title": "Bus", "amount": "3.00", "project": related.pk},
                             content_type="application/json")
    assert created.status_code == 201, created.content
    assert created.json()["project_budget"] == "1000.00"
    schema = admin_api.get("/api/schema/?format=json").json()
    expense = schema["components"]["schemas"]["Expense"]["properties"]
    assert expense["project_budget"].get("readOnly") is True
    assert "project_budget" not in schema["components"]["schemas"]["ExpenseRequest"]["properties"]


def test_a_lookup_hides_what_the_viewer_may_not_see_of_the_related_record(related, acme, make_user):
    member = Role.objects.get(key=Role.MEMBER)
    rbac.grant(member, "data.view_expense", "data.view_project")
    rbac.add_scope(member, "expense", "all")
    rbac.add_scope(member, "project", "all")
    bob = make_user(acme, "bob", is_staff=True)
    connection.set_tenant(acme)
    rbac.assign_role(bob, member)
    rbac.set_column_rule(member, "project", "budget", "hidden")
    rbac.set_column_rule(member, "expense", "amount", "masked")
    client = client_of(bob)
    taxi = client.get("/api/v1/data/expense/?title=Taxi").json()["results"][0]
    assert "project_budget" not in taxi and taxi["project_name"] == "Apollo"
    apollo = client.get(f"/api/v1/data/project/{related.pk}/").json()
    assert "budget" not in apollo
    assert apollo["expenses"] == 2 and apollo["spent"] not in ("212.50", None)  # Masked like the amounts.


def test_values_over_related_records_are_hidden_from_a_viewer_who_sees_only_some(related, acme, make_user):
    """A member who sees only her own expenses would learn the others' amounts from a project's sum,
    count or list of titles: those are hidden from her; the project's own fields are not."""
    member = Role.objects.get(key=Role.MEMBER)
    rbac.grant(member, "data.view_expense", "data.view_project")
    rbac.add_scope(member, "expense", "own", owner_field="created_by")
    rbac.add_scope(member, "project", "all")
    bob = make_user(acme, "bob", is_staff=True)
    connection.set_tenant(acme)
    rbac.assign_role(bob, member)

    apollo = client_of(bob).get(f"/api/v1/data/project/{related.pk}/").json()

    assert apollo["name"] == "Apollo" and apollo["tag_count"] == 2  # Tags: every one visible to him.
    assert not {"spent", "average", "largest", "first_spent_on", "expenses", "expense_titles"} & set(apollo)
    assert client_of(bob).get("/api/v1/data/project/?expenses__gt=0").status_code == 400  # Not a filter to probe with.


@pytest.mark.parametrize(("spec", "message"), [
    ({"key": "x", "type": "rollup", "options": {"relation": "project", "field": "name", "function": "max"}},
     "use a lookup"),
    ({"key": "x", "type": "rollup", "options": {"relation": "tags", "field": "name", "function": "sum"}},
     "adds numbers"),
    ({"key": "x", "type": "lookup", "options": {"relation": "name", "field": "name"}}, "is not a relation"),
    ({"key": "x", "type": "count", "options": {"relation": "nope.project"}}, "Unknown entity"),
    ({"key": "x", "type": "lookup", "options": {"relation": "project", "field": "nope"}}, "has no field"),
])
def test_where_a_computed_field_reads_is_checked(related, spec, message):
    with pytest.raises(DefinitionValidationError) as refused:
        services.publish_body(body("expense", *EXPENSE, {"key": "tags", "type": "relation",
                                                         "options": {"target": "tag", "cardinality": "many_to_many"}},
                                   {**spec, "label": "Computed"}))
    code = "unknown_entity" if message == "Unknown entity" else "relation"
    assert [(e["path"], e["code"]) for e in refused.value.errors] == [("fields/7/options/relation", code)]
    assert message in refused.value.errors[0]["message"] and "Computed" in refused.value.errors[0]["message"]


def test_admin_and_export_show_the_values(admin_api, related, acme):
    from django.contrib.auth import get_user_model

    client = Client(HTTP_HOST="acme.localhost")
    client.force_login(get_user_model().objects.get(username="frank"))
    change = client.get(f"/admin/data/project/{related.pk}/change/")
    assert change.status_code == 200 and "212.50" in change.content.decode()
    listed = client.get("/admin/data/expense/")
    assert listed.status_code == 200
    exported = admin_api.get("/api/v1/data/expense/export.csv?ordering=title")
    assert exported.status_code == 200, exported.content[:300]
    text = b"".join(exported.streaming_content).decode() if exported.streaming else exported.content.decode()
    header, first = text.splitlines()[:2]
    assert "project_budget" in header and "1000.00" in first


def test_formulas_reach_across_many_to_one_relations(related, acme, make_user):
    services.publish_body(body("expense", *EXPENSE, {"key": "share", "type": "formula",
                                                     "options": {"expression": "amount / project.budget * 100"}},
                               {"key": "label", "type": "formula",
                                "options": {"expression": "concat(title, ' @ ', project.name)"}}))
    expense = runtime.get_model("expense")
    taxi = expense.objects.get(title="Taxi")
    assert (round(taxi.share, 2), taxi.label) == (Decimal("1.25"), "Taxi @ Apollo")
    assert [row.title for row in expense.objects.filter(share__gt=10)] == ["Hotel"]
    # Computed in Python the same way (a record not read through the manager).
    assert round(expense.all_objects.get(title="Taxi").formula_value("share"), 2) == Decimal("1.25")
    # What the browser's evaluator gets: the tree names `project.budget`, the page gives its value.
    from lowcode.expressions import compile_expression

    assert compile_expression("project.budget").to_json()["name"] == "project.budget"
    # A viewer who may not see the budget does not see a formula over it.
    member = Role.objects.get(key=Role.MEMBER)
    rbac.grant(member, "data.view_expense")
    rbac.add_scope(member, "expense", "all")
    bob = make_user(acme, "bob", is_staff=True)
    connection.set_tenant(acme)
    rbac.assign_role(bob, member)
    shown = client_of(bob).get("/api/v1/data/expense/?title=Taxi").json()["results"][0]
    assert "share" not in shown and "label" not in shown  # bob may not view projects at all.
    rbac.grant(member, "data.view_project")
    rbac.add_scope(member, "project", "all")
    rbac.set_column_rule(member, "project", "budget", "hidden")
    shown = client_of(bob).get("/api/v1/data/expense/?title=Taxi").json()["results"][0]
    assert "share" not in shown and shown["label"] == "Taxi @ Apollo"


@pytest.mark.parametrize(("expression", "code"), [("project.nope", "unknown_field"), ("tags.name", "unknown_field"),
                                                   ("project.budget.x", "syntax")])
def test_a_formula_across_a_relation_is_checked(related, expression, code):
    with pytest.raises(DefinitionValidationError) as refused:
        services.publish_body(body("project", *PROJECT, {"key": "x", "type": "formula",
                                                         "options": {"expression": expression}}))
    assert [e["path"] for e in refused.value.errors] == ["fields/3/options/expression"]
