"""Formula fields cannot take an entity, let alone a tenant, down (issue 9, finding 1; EX-1).

Each case goes through the product's own paths: the metadata API refuses what can only
fail, a formula that fails on some rows is null there in the API (Python after a write,
SQL on reads), the CSV export and the admin list, and a formula already published before
the check (a row in the database) leaves every page of the tenant working.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection

from dynamic_models import runtime, services
from dynamic_models.models import Entity
from lowcode.tenancy.models import Tenant
from metadata.models import Definition

CLAIM = {
    "key": "claim", "label": "Claim", "display_field": "title",
    "fields": [
        {"key": "title", "type": "text", "required": True, "options": {"max_length": 120}},
        {"key": "amount", "type": "decimal", "options": {"max_digits": 12, "decimal_places": 2}},
        {"key": "qty", "type": "integer"},
        {"key": "spent_on", "type": "date"},
        {"key": "paid", "type": "boolean"},
        {"key": "iban", "type": "text", "encrypted": True},
        {"key": "calc", "type": "formula", "options": {"expression": "amount"}},
    ],
}
CLAIM["fields"] = [{"id": f"claim{index:03d}", **spec} for index, spec in enumerate(CLAIM["fields"])]
PRODUCT_OF_60 = " * ".join(["9" * 30] * 60)

# What the outside test published; each now refused with the rule it breaks.
REFUSED = [
    ("user.password", "user_not_available"),
    ("user.region == 'north'", "user_not_available"),
    ("date(2020, 13, 45)", "constant_value"),
    ("date(99999, 1, 1)", "constant_value"),
    ("today() - 1", "expression_type"),
    (PRODUCT_OF_60, "number_range"),
    ("amount / 0", "constant_value"),
    ("amount % 0", "constant_value"),
    ("add_days(spent_on, 999999999)", "constant_range"),
    ("round(amount, 99)", "constant_range"),
    ("max(amount, title)", "expression_type"),
    ("if(amount > 0, amount, title)", "expression_type"),
    ("qty * qty * qty", "number_range"),
    ("missing + 1", "unknown_field"),
    ("iban == 'DE1'", "field_not_readable"),
    ("calc + 1", "field_not_readable"),
]


def post(client, url, data):
    return client.post(url, json.dumps(data), content_type="application/json")


@pytest.fixture
def builder(tenant, make_user, acme_client):
    """acme's `claim` published, and a client logged in as a superuser (admin, data and metadata API)."""
    services.publish_body(CLAIM)
    acme_client.force_login(make_user(tenant, "bea", is_staff=True, is_superuser=True))
    return acme_client


def read_csv(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(body, newline="")))


def assert_tenant_works(client, record_id, calc):
    """Every kind of page answers, and the record's formula reads `calc` in the API and the export."""
    assert client.get("/accounts/login/").status_code == 200
    assert client.get("/admin/").status_code == 200
    listed = client.get("/api/v1/data/claim/")
    assert listed.status_code == 200, listed.content[:500]
    assert [row["calc"] for row in listed.json()["results"] if row["id"] == record_id] == [calc]
    assert client.get(f"/api/v1/data/claim/{record_id}/").json()["calc"] == calc
    exported = client.get("/api/v1/data/claim/export.csv")
    assert exported.status_code == 200
    assert [row["calc"] for row in read_csv(exported) if row["id"] == str(record_id)] == [calc or ""]
    changelist = client.get("/admin/data/claim/")
    assert changelist.status_code == 200
    assert client.get(f"/admin/data/claim/{record_id}/change/").status_code == 200


@pytest.mark.parametrize(("source", "code"), REFUSED)
def test_formulas_that_can_only_fail_are_refused_naming_the_rule(builder, source, code):
    response = post(builder, "/api/v1/meta/entities/claim/fields/",
                    {"key": "risky", "type": "formula", "options": {"expression": source}})
    assert response.status_code == 400, response.content[:500]
    assert [error["code"] for error in response.json()["options/expression"]] == [code]
    # A whole design with it is refused as well, with the path of the field.
    body = {**CLAIM, "fields": [*CLAIM["fields"], {"key": "risky", "type": "formula",
                                                   "options": {"expression": source}}]}
    refused = builder.put("/api/v1/meta/entities/claim/", json.dumps(body), content_type="application/json")
    assert refused.status_code == 400
    assert refused.json()[f"fields/{len(CLAIM['fields'])}/options/expression"][0]["code"] == code


def test_rules_are_checked_too(builder):
    body = {**CLAIM, "rules": [{"key": "positive", "expression": "amount / 0 > 1", "message": "No"},
                               {"key": "typed", "expression": "title", "message": "No"},
                               {"key": "ok", "expression": "is_null(qty) or qty > 0", "message": "No"}]}
    response = builder.put("/api/v1/meta/entities/claim/", json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert {path: [e["code"] for e in errors] for path, errors in response.json().items()} == {
        "rules/0/expression": ["constant_value"], "rules/1/expression": ["expression_type"]}


# Formulas that fail on some rows only: published, and null on those rows.
PER_ROW = [
    ("amount / qty", {"qty": 0}, None),
    ("amount % qty", {"qty": 0}, None),
    ("add_days(spent_on, qty)", {"qty": 999999999}, None),
    ("add_days(spent_on, qty)", {"qty": -800000}, None),  # Before year 1.
    ("round(amount, qty)", {"qty": 99}, None),
    ("date(qty, 1, 1)", {"qty": 99999}, None),
    ("date(2020, qty, 1)", {"qty": 13}, None),
    ("date(2021, 2, qty)", {"qty": 29}, None),
    ("date(2024, 2, qty)", {"qty": 29}, "2024-02-29"),
    ("if(paid, amount / qty, 0)", {"qty": 0, "paid": True}, None),
    ("coalesce(amount / qty, -1)", {"qty": 0}, "-1"),
    ("concat(title, ': ', amount / qty)", {"qty": 0}, "Taxi: "),
    ("amount / qty", {"qty": 3}, "4.1666666667"),
    ("qty * qty", {"qty": 9223372036854775807}, "85070591730234615847396907784232501249"),  # Past bigint.
    ("abs(qty)", {"qty": -9223372036854775808}, "9223372036854775808"),
    ("-qty", {"qty": -9223372036854775808}, "9223372036854775808"),
    ("concat(-1 * amount)", {"amount": "0.00"}, "0.00"),
]


@pytest.mark.parametrize(("source", "values", "calc"), PER_ROW)
def test_formulas_failing_on_a_row_are_null_on_that_row_only(builder, source, values, calc):
    assert builder.patch("/api/v1/meta/entities/claim/fields/calc/", json.dumps({"options": {"expression": source}}),
                         content_type="application/json").status_code == 200, source
    assert post(builder, "/api/v1/meta/entities/claim/publish/", {}).status_code == 201
    row = {"title": "Taxi", "amount": "12.50", "spent_on": "2026-01-05", **values}
    created = post(builder, "/api/v1/data/claim/", row)
    assert created.status_code == 201, created.content[:500]
    assert created.json()["calc"] == calc  # Computed in Python after the write.
    assert_tenant_works(builder, created.json()["id"], calc)  # Computed by the database on reads.


@pytest.mark.parametrize("source", [source for source, _code in REFUSED])
def test_a_formula_published_before_the_check_breaks_nothing(builder, source):
    record = post(builder, "/api/v1/data/claim/", {"title": "Taxi", "amount": "12.50", "qty": 2,
                                                   "spent_on": "2026-01-05"}).json()
    # As a design published by an earlier version that did not check formulas left it.
    published = Definition.objects.get(kind="entity", key="claim", status=Definition.Status.PUBLISHED)
    published.body["fields"][-1]["options"]["expression"] = source
    published.save(update_fields=["body"])
    runtime.forget("acme")  # As a process (re)starting on that data: the next request builds the snapshot.
    assert_tenant_works(builder, record["id"], None)


def test_the_preview_counts_rows_a_new_formula_gives_no_value(builder, capsys):
    for qty in (0, 2, 0, None):
        post(builder, "/api/v1/data/claim/", {"title": "Taxi", "amount": "12.50", "qty": qty})
    added = post(builder, "/api/v1/meta/entities/claim/fields/",
                 {"key": "unit_price", "type": "formula", "options": {"expression": "amount / qty"}})
    assert added.status_code == 201, added.json()
    preview = post(builder, "/api/v1/meta/entities/claim/preview/", {}).json()
    [item] = preview["impact"]
    assert (item["field"], item["code"], item["count"], item["blocking"]) == ("unit_price", "formula_null", 2, False)
    assert "Division by zero" in item["message"] and len(item["sample_ids"]) == 2
    # Not blocking: the command, the admin and the API publish it.
    connection.set_tenant(Tenant.objects.get(schema_name="acme"))
    call_command("lowcode", "entity", "preview", "claim", "--tenant", "acme")
    assert "2 rows would have no value for the formula unit_price" in capsys.readouterr().out
    page = builder.get(f"/admin/dynamic_models/entity/{Entity.objects.get(key='claim').pk}/preview/")
    assert "2 rows would have no value" in page.content.decode() and 'name="publish"' in page.content.decode()
    assert post(builder, "/api/v1/meta/entities/claim/publish/", {}).status_code == 201
    values = [row["unit_price"] for row in builder.get("/api/v1/data/claim/?ordering=id").json()["results"]]
    assert values == [None, "6.2500000000", None, None]


def test_formulas_compute_with_the_clock_of_the_query(builder):
    """today() is computed when a list runs, not when the tenant's URLs were built."""
    assert builder.patch("/api/v1/meta/entities/claim/fields/calc/",
                         json.dumps({"options": {"expression": "days_between(spent_on, today())"}}),
                         content_type="application/json").status_code == 200
    assert post(builder, "/api/v1/meta/entities/claim/publish/", {}).status_code == 201
    spent_on = datetime.date.today() - datetime.timedelta(days=3)
    post(builder, "/api/v1/data/claim/", {"title": "Taxi", "spent_on": spent_on.isoformat()})
    assert [row["calc"] for row in builder.get("/api/v1/data/claim/").json()["results"]] == ["3"]


def test_decimal_results_keep_their_digits(builder):
    assert builder.patch("/api/v1/meta/entities/claim/fields/calc/",
                         json.dumps({"options": {"expression": "amount * (1 + 0.13)"}}),
                         content_type="application/json").status_code == 200
    assert post(builder, "/api/v1/meta/entities/claim/publish/", {}).status_code == 201
    created = post(builder, "/api/v1/data/claim/", {"title": "Taxi", "amount": "100.00"}).json()
    assert created["calc"] == "113.0000" and Decimal(created["calc"]) == Decimal("113")
    assert builder.get("/api/v1/data/claim/").json()["results"][0]["calc"] == "113.0000"


def test_scope_expressions_read_only_what_the_user_context_offers(builder):
    from django.core.exceptions import ValidationError

    from rbac import services as rbac

    role = rbac.create_role("claims_desk", grants=["data.claim.view"])
    for source in ("user.password == 'x'", "amount / 0 > 1", "title == user.id", "upper(user.roles) == 'A'",
                   "iban == user.username", "qty"):
        with pytest.raises(ValidationError) as error:
            rbac.add_scope(role, "claim", "expression", expression=source)
        assert list(error.value.message_dict) == ["expression"], source
    # Formula fields can be read (scopes filter the queryset that computes them).
    rbac.add_scope(role, "claim", "expression", expression="qty == user.id and 'boss' in user.roles or calc > 1")
