"""The REST resource of each entity (DM-5) through HTTP, authenticated with an API key."""

from __future__ import annotations

import datetime
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dynamic_models import runtime
from lowcode.apikeys import services as apikeys

from .conftest import expense, project


def test_create_list_retrieve(api):
    apollo = project()
    response = api.post("/api/v1/data/expense/", {"title": "Hotel", "amount": "120.00", "spent_on": "2026-02-01",
                                                  "project": apollo.pk}, content_type="application/json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["number"].startswith("EXP-")
    assert body["project"] == apollo.pk
    assert body["currency"] == "CNY"
    listed = api.get("/api/v1/data/expense/").json()
    assert listed["count"] == 1
    one = api.get(f"/api/v1/data/expense/{body['id']}/?expand=project").json()
    assert one["project"]["name"] == "Apollo"



def post(client, url, data):
    return client.post(url, json.dumps(data), content_type="application/json")


def patch(client, url, data):
    return client.patch(url, json.dumps(data), content_type="application/json")


def test_update_partial_update_and_read_only_fields(api):
    record = expense()
    url = f"/api/v1/data/expense/{record.pk}/"
    assert patch(api, url, {"amount": "99.90"}).json()["amount"] == "99.90"
    current = api.get(url).json()
    # A GET can be PUT back: system columns are ignored, the auto number is unchanged.
    put = api.put(url, json.dumps({**current, "number": current["number"], "title": "Train"}),
                  content_type="application/json")
    assert put.status_code == 400
    assert put.json() == {"number": [{"code": "read_only", "message": "This field is read-only."}]}
    current.pop("number")
    assert api.put(url, json.dumps({**current, "title": "Train"}), content_type="application/json").json()[
        "title"] == "Train"
    record.refresh_from_db()
    assert record.updated_by == api.user


@pytest.mark.parametrize(("payload", "field", "code"), [
    ({"amount": "-1"}, "amount", "min_value"),
    ({"amount": "0"}, "amount", "min_value"),
    ({"amount": "abc"}, "amount", "invalid"),
    ({"amount": "1e400"}, "amount", "max_digits"),
    ({"currency": "GBP"}, "currency", "invalid_choice"),
    ({"spent_on": "2999-01-01"}, "spent_on", "future"),
    ({"spent_on": "yesterday"}, "spent_on", "invalid"),
    ({"title": "x" * 121}, "title", "max_length"),
    ({"title": None}, "title", "null"),
    ({"project": 999999}, "project", "does_not_exist"),
    ({"project": "one"}, "project", "incorrect_type"),
    ({"submitted_by": 999999}, "submitted_by", "does_not_exist"),
    ({"colour": "red"}, "colour", "unknown_field"),
])
def test_bad_values_name_the_field_and_rule(api, payload, field, code):
    model = runtime.get_model("expense")
    response = post(api, "/api/v1/data/expense/", {"title": "Taxi", "amount": "5", "spent_on": "2026-01-01", **payload})
    assert response.status_code == 400
    errors = response.json()[field]
    assert errors[0]["code"] == code and errors[0]["message"]
    assert not model.objects.exists()


def test_missing_required_fields_are_listed(api):
    response = post(api, "/api/v1/data/expense/", {})
    assert response.status_code == 400
    assert {name for name, errors in response.json().items() if errors[0]["code"] == "required"} == {
        "title", "amount", "spent_on"}


@pytest.mark.parametrize(("body", "content_type"), [
    ("{not json", "application/json"),
    ("[1, 2]", "application/json"),
    ('"text"', "application/json"),
    ("title=Taxi", "text/plain"),
])
def test_malformed_requests_are_4xx(api, body, content_type):
    response = api.post("/api/v1/data/expense/", body, content_type=content_type)
    assert 400 <= response.status_code < 500
    assert response.json()


def test_huge_payload_is_refused(api):
    response = post(api, "/api/v1/data/expense/", {"title": "x", "notes": "n" * 3_000_000})
    assert response.status_code in (400, 413)
    assert not runtime.get_model("expense").objects.exists()


def test_errors_are_translated(api):
    response = post(api, "/api/v1/data/expense/?", {"title": "Taxi", "amount": "-1", "spent_on": "2026-01-01"})
    assert response.json()["amount"][0]["code"] == "min_value"
    chinese = api.post("/api/v1/data/expense/", json.dumps({"amount": "-1"}), content_type="application/json",
                       HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert chinese.json()["title"][0]["message"] != "This field is required."


def test_unique_is_checked_and_race_safe(api):
    from django.core.exceptions import ValidationError
    from django.db import transaction

    from dynamic_models import validation

    project("Apollo")
    response = post(api, "/api/v1/data/project/", {"name": "Apollo"})
    assert response.status_code == 400
    assert response.json()["name"][0]["code"] == "unique"
    # Two requests that both passed the check: the database refuses the second, as a field error.
    twin = runtime.get_model("project")(name="Apollo")
    with pytest.raises(ValidationError) as error, transaction.atomic():
        validation.save_record(twin)
    assert error.value.message_dict == {"name": ["Project with this name already exists."]}


def test_cross_field_rules(tenant, make_user, acme, acme_client):
    from dynamic_models import services
    from tests.dynamic_models.conftest import design

    trip = design("trip", [
        {"key": "starts_on", "type": "date", "required": True},
        {"key": "ends_on", "type": "date"},
    ], rules=[{"key": "dates_in_order", "expression": "is_null(ends_on) or ends_on >= starts_on", "field": "ends_on",
               "message": "The trip cannot end before it starts.",
               "translations": {"zh-hans": "结束日期不能早于开始日期。"}}])
    services.publish(trip)
    user = make_user(acme, "frank", is_superuser=True, is_staff=True)
    acme_client.force_login(user)
    bad = post(acme_client, "/api/v1/data/trip/", {"starts_on": "2026-03-02", "ends_on": "2026-03-01"})
    assert bad.status_code == 400
    assert bad.json() == {"ends_on": [{"code": "dates_in_order", "message": "The trip cannot end before it starts."}]}
    assert post(acme_client, "/api/v1/data/trip/", {"starts_on": "2026-03-02"}).status_code == 201  # null passes
    chinese = acme_client.post("/api/v1/data/trip/", json.dumps({"starts_on": "2026-03-02", "ends_on": "2026-03-01"}),
                               content_type="application/json", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert chinese.json()["ends_on"][0]["message"] == "结束日期不能早于开始日期。"
    # Admin takes the same path.
    admin = acme_client.post("/admin/data/trip/add/", {"starts_on": "2026-03-02", "ends_on": "2026-03-01"})
    assert "The trip cannot end before it starts." in admin.content.decode()


def test_filters_search_and_ordering(api):
    apollo, zeus = project("Apollo"), project("Zeus")
    expense(title="Taxi", amount="10", currency="USD", project=apollo)
    expense(title="Hotel Shanghai", amount="200", currency="EUR", project=zeus)
    expense(title="Lunch", amount="30", category="meals")

    def titles(query):
        response = api.get(f"/api/v1/data/expense/?{query}")
        assert response.status_code == 200, response.json()
        return [row["title"] for row in response.json()["results"]]

    assert titles("currency=USD") == ["Taxi"]
    assert titles("currency__in=USD,EUR&ordering=amount") == ["Taxi", "Hotel Shanghai"]
    assert titles("amount__gte=30&ordering=-amount") == ["Hotel Shanghai", "Lunch"]
    assert titles("amount__range=5,50&ordering=title") == ["Lunch", "Taxi"]
    assert titles(f"project={zeus.pk}") == ["Hotel Shanghai"]
    assert titles(f"project__in={zeus.pk},{apollo.pk}&ordering=title") == ["Hotel Shanghai", "Taxi"]
    assert titles("project__isnull=true") == ["Lunch"]
    assert titles("title__icontains=shang") == ["Hotel Shanghai"]
    assert titles("search=lunch") == ["Lunch"]
    assert titles("fields=title&ordering=title") == ["Hotel Shanghai", "Lunch", "Taxi"]
    assert set(api.get("/api/v1/data/expense/?fields=title,amount").json()["results"][0]) == {"title", "amount"}


def test_a_relation_filter_takes_an_id_without_looking_it_up(api):
    """An id filters like a number: no query for the related row, and an id that does not exist
    answers as one the caller may not see (no 400 to tell them apart)."""
    zeus = project("Zeus")
    expense(title="Hotel Shanghai", project=zeus)
    with CaptureQueriesContext(connection) as queries:
        missing = api.get(f"/api/v1/data/expense/?project={zeus.pk + 1000}&project__in={zeus.pk + 1000}")
    assert missing.status_code == 200 and missing.json()["results"] == []
    assert not [query for query in queries.captured_queries if '"dm_project"' in query["sql"]]
    for bad in ("project=abc", "project=99999999999999999999", "project__in=1,x"):
        response = api.get(f"/api/v1/data/expense/?{bad}")
        assert response.status_code == 400 and list(response.json()) == [bad.split("=")[0]], bad


@pytest.mark.parametrize(("query", "name"), [
    ("amount__gte=abc", "amount__gte"),
    ("currency=GBP", "currency"),
    ("colour=red", "colour"),
    ("amount__foo=1", "amount__foo"),
    ("ordering=colour", "ordering"),
    ("fields=colour", "fields"),
    ("expand=title", "expand"),
    ("spent_on__range=2026-01-01", "spent_on__range"),
])
def test_invalid_queries_are_400(api, query, name):
    response = api.get(f"/api/v1/data/expense/?{query}")
    assert response.status_code == 400
    assert name in response.json()


def test_expand_costs_no_extra_query_per_row(api):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.first()

    def queries(count):
        model = runtime.get_model("expense")
        model.all_objects.all().delete()
        for index in range(count):
            expense(title=f"E{index}", project=project(f"P{count}-{index}"), submitted_by=user)
        api.get("/api/v1/data/expense/")  # Key bookkeeping (last used) happens once a minute.
        with CaptureQueriesContext(connection) as captured:
            response = api.get("/api/v1/data/expense/?expand=project,submitted_by")
        assert response.status_code == 200
        rows = response.json()["results"]
        assert len(rows) == count and rows[0]["project"]["name"].startswith("P")
        assert rows[0]["submitted_by"]["username"] == user.username
        return len(captured)

    assert queries(2) == queries(20)


def test_cursor_pagination_over_10k_rows(api):
    model = runtime.get_model("expense")
    model.objects.bulk_create([model(title=f"E{index}", amount=1, spent_on=datetime.date(2026, 1, 1))
                               for index in range(10_000)], batch_size=2000)
    seen, url, pages = [], "/api/v1/data/expense/?pagination=cursor&page_size=1000&fields=id", 0
    while url:
        response = api.get(url)
        assert response.status_code == 200
        page = response.json()
        assert "count" not in page
        seen += [row["id"] for row in page["results"]]
        url, pages = page["next"], pages + 1
    assert len(seen) == len(set(seen)) == 10_000
    assert seen == sorted(seen, reverse=True)
    assert pages == 10
    assert api.get("/api/v1/data/expense/?cursor=garbage").status_code == 404


def test_bulk_create_is_all_or_nothing_with_row_errors(api):
    model = runtime.get_model("expense")
    rows = [{"title": "A", "amount": "1", "spent_on": "2026-01-01"},
            {"title": "B", "amount": "-1", "spent_on": "2026-01-01"},
            {"title": "C", "amount": "1"}]
    response = post(api, "/api/v1/data/expense/bulk/", rows)
    assert response.status_code == 400
    errors = response.json()  # Per row, by index: the rows that are wrong.
    assert set(errors) == {"1", "2"} and errors["1"]["amount"][0]["code"] == "min_value"
    assert errors["2"]["spent_on"][0]["code"] == "required"
    assert not model.objects.exists()
    rows[1]["amount"], rows[2]["spent_on"] = "2", "2026-01-02"
    created = post(api, "/api/v1/data/expense/bulk/", rows)
    assert created.status_code == 201
    assert [row["title"] for row in created.json()] == ["A", "B", "C"]
    ids = [row["id"] for row in created.json()]
    bad_update = patch(api, "/api/v1/data/expense/bulk/", [{"id": ids[0], "amount": "5"}, {"id": 0, "amount": "5"}])
    assert bad_update.status_code == 400 and bad_update.json()["1"]["id"][0]["code"] == "not_found"
    assert model.objects.get(pk=ids[0]).amount == 1
    assert patch(api, "/api/v1/data/expense/bulk/", [{"id": i, "status": "submitted"} for i in ids]).status_code == 200
    assert model.objects.filter(status="submitted").count() == 3
    assert post(api, "/api/v1/data/expense/bulk-delete/", {"ids": [ids[0], 999999]}).status_code == 400
    assert model.objects.count() == 3
    assert post(api, "/api/v1/data/expense/bulk-delete/", {"ids": ids[:2]}).status_code == 204
    assert model.objects.count() == 1
    assert post(api, "/api/v1/data/expense/bulk/", [{}] * 1001).status_code == 400
    assert post(api, "/api/v1/data/expense/bulk/", {"title": "not a list"}).status_code == 400


def test_soft_delete_restore_and_protection(api):
    apollo = project()
    record = expense(project=apollo)
    assert api.delete(f"/api/v1/data/project/{apollo.pk}/").status_code == 409  # Protected by the expense.
    assert api.delete(f"/api/v1/data/expense/{record.pk}/").status_code == 204
    assert api.get(f"/api/v1/data/expense/{record.pk}/").status_code == 404
    assert runtime.get_model("expense").all_objects.filter(pk=record.pk).exists()
    trash = api.get("/api/v1/data/expense/?deleted=only").json()
    assert [row["id"] for row in trash["results"]] == [record.pk]
    restored = api.post(f"/api/v1/data/expense/{record.pk}/restore/")
    assert restored.status_code == 200 and restored.json()["id"] == record.pk
    assert api.get(f"/api/v1/data/expense/{record.pk}/").status_code == 200
    assert api.post(f"/api/v1/data/expense/{record.pk}/restore/").status_code == 404
    assert api.get("/api/v1/data/expense/99999999999999999999/").status_code == 404


def test_publish_shows_in_api_and_schema_on_next_request(api):
    from dynamic_models.models import Entity, Field

    assert "vat_rate" not in api.get("/api/schema/?format=json").json()["components"]["schemas"]["Expense"][
        "properties"]
    entity = Entity.objects.get(key="expense")
    Field.objects.create(entity=entity, key="vat_rate", type="decimal", position=50, default="0.06",
                         options={"max_digits": 5, "decimal_places": 3})
    from dynamic_models import services

    services.publish(entity)
    created = post(api, "/api/v1/data/expense/", {"title": "Taxi", "amount": "5", "spent_on": "2026-01-01",
                                                  "vat_rate": "0.130"})
    assert created.status_code == 201 and created.json()["vat_rate"] == "0.130"
    schema = api.get("/api/schema/?format=json").json()
    assert schema["components"]["schemas"]["Expense"]["properties"]["vat_rate"]["format"] == "decimal"
    assert "vat_rate" in {p["name"].split("__")[0] for p in schema["paths"]["/api/v1/data/expense/"]["get"][
        "parameters"]}


def test_schema_describes_real_fields_and_stays_in_its_tenant(api, globex, make_user, globex_client):
    from django_tenants.utils import tenant_context

    from dynamic_models import services
    from tests.dynamic_models.conftest import design

    schema = api.get("/api/schema/?format=json").json()
    expense_schema = schema["components"]["schemas"]["ExpenseRequest"]
    assert set(expense_schema["required"]) == {"title", "amount", "spent_on"}
    assert expense_schema["properties"]["title"]["maxLength"] == 120
    assert schema["components"]["schemas"]["CurrencyEnum"]["enum"] == ["CNY", "USD", "EUR"]
    parameters = {p["name"] for p in schema["paths"]["/api/v1/data/expense/"]["get"]["parameters"]}
    assert {"currency", "currency__in", "amount__gte", "project", "search", "ordering", "cursor", "page",
            "expand", "fields"} <= parameters
    post_operation = schema["paths"]["/api/v1/data/expense/"]["post"]
    assert post_operation["requestBody"]["content"]["application/json"]["examples"]
    assert post_operation["tags"] == ["expense"]
    with tenant_context(globex):
        services.publish(design("vendor", [{"key": "name", "type": "text", "required": True}]))
        boss = make_user(globex, "boss", is_superuser=True)
    connection.set_tenant(globex)
    globex_client.force_login(boss)
    globex_schema = globex_client.get("/api/schema/?format=json").json()
    assert "/api/v1/data/vendor/" in globex_schema["paths"]
    assert not any("expense" in path for path in globex_schema["paths"])
    connection.set_schema_to_public()
    assert not any("vendor" in path for path in api.get("/api/schema/?format=json").json()["paths"])
    assert api.get("/api/docs/").status_code == 200


def test_keys_scopes_and_permissions(api, acme, make_user):
    from django.contrib.auth.models import Permission

    from rbac import services as rbac

    record = expense()
    clerk = make_user(acme, "clerk")
    connection.set_tenant(acme)
    _key, reader = apikeys.create_key(clerk, name="reader", scopes=["expense:read"])
    headers = {"HTTP_AUTHORIZATION": f"Api-Key {reader}"}
    # The key's user has no role with the entity's permission: 403 until a role grants it.
    assert api.get("/api/v1/data/expense/", **headers).status_code == 403
    clerks = rbac.create_role("clerk", grants=[Permission.objects.get(codename="view_expense"),
                                               Permission.objects.get(codename="add_expense")])
    rbac.add_scope(clerks, "expense", "all")
    rbac.assign_role(clerk, clerks)
    assert api.get(f"/api/v1/data/expense/{record.pk}/", **headers).status_code == 200
    refused = api.post("/api/v1/data/expense/", {}, content_type="application/json", **headers)
    assert refused.status_code == 403 and "expense:write" in refused.json()["detail"]
    assert api.get("/api/v1/data/project/", **headers).status_code == 403  # No scope for projects.
    _key, writer = apikeys.create_key(clerk, name="writer", scopes=["expense:write"])
    as_writer = {"HTTP_AUTHORIZATION": f"Api-Key {writer}"}
    row = {"title": "Taxi", "amount": "5", "spent_on": "2026-01-01"}
    assert api.post("/api/v1/data/expense/bulk/", json.dumps([row]), content_type="application/json",
                    **as_writer).status_code == 201  # add_expense
    assert api.patch("/api/v1/data/expense/bulk/", json.dumps([{"id": record.pk, "title": "x"}]),
                     content_type="application/json", **as_writer).status_code == 403  # no change_expense
    assert api.delete(f"/api/v1/data/expense/{record.pk}/", **as_writer).status_code == 403  # no delete_expense
    key, _secret = apikeys.create_key(clerk, name="gone", scopes=["*:read"])
    apikeys.revoke(key)
    assert api.get("/api/v1/data/expense/", HTTP_AUTHORIZATION=f"Api-Key {_secret}").status_code == 401


def test_session_auth_for_the_browser(scenario, acme, make_user):
    from django.test import Client

    user = make_user(acme, "bea", is_superuser=True, is_staff=True)
    browser = Client(HTTP_HOST="acme.localhost", enforce_csrf_checks=True)
    browser.force_login(user)
    connection.set_schema_to_public()
    assert browser.get("/api/v1/data/expense/").status_code == 200
    assert "text/html" in browser.get("/api/v1/data/expense/", HTTP_ACCEPT="text/html")["Content-Type"]
    refused = browser.post("/api/v1/data/expense/", json.dumps({}), content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]


def test_other_tenant_cannot_see_records(api, globex, make_user, globex_client):
    record = expense()
    boss = make_user(globex, "boss", is_superuser=True)
    connection.set_tenant(globex)
    globex_client.force_login(boss)
    assert globex_client.get(f"/api/v1/data/expense/{record.pk}/").status_code == 404
    acme_key = api.defaults["HTTP_AUTHORIZATION"]
    assert globex_client.get("/api/v1/me/", HTTP_AUTHORIZATION=acme_key).status_code == 401


def test_many_to_many_formula_and_list_fields(api):
    from dynamic_models import services
    from tests.dynamic_models.conftest import design

    services.publish(design("tag", [{"key": "name", "type": "text", "required": True}], display_field="name"))
    services.publish(design("trip", [
        {"key": "nights", "type": "integer", "required": True},
        {"key": "rate", "type": "decimal", "required": True},
        {"key": "total", "type": "formula", "options": {"expression": "nights * rate"}},
        {"key": "tags", "type": "relation", "options": {"target": "tag", "cardinality": "many_to_many"}},
        {"key": "modes", "type": "multiple_choice", "options": {"choices": [{"value": "air"}, {"value": "rail"}]}},
        {"key": "extra", "type": "json"},
    ]))
    tags = [post(api, "/api/v1/data/tag/", {"name": name}).json()["id"] for name in ("work", "team")]
    created = post(api, "/api/v1/data/trip/", {"nights": 2, "rate": "80.50", "tags": tags, "modes": ["rail"],
                                               "extra": {"seat": "12A"}})
    assert created.status_code == 201, created.json()
    assert created.json()["total"] == "161.00" and sorted(created.json()["tags"]) == sorted(tags)
    for index in range(5):
        post(api, "/api/v1/data/trip/", {"nights": index, "rate": "1", "tags": tags[:1]})
    api.get("/api/v1/data/trip/")
    with CaptureQueriesContext(connection) as few:
        api.get("/api/v1/data/trip/?page_size=2")
    with CaptureQueriesContext(connection) as many:
        rows = api.get("/api/v1/data/trip/?expand=tags").json()["results"]
    assert len(few) == len(many)
    assert {tag["name"] for tag in rows[-1]["tags"]} == {"work", "team"}
    assert rows[-1]["total"] == "161.00"
    for bad, code in [({"nights": "2"}, "incorrect_type"), ({"nights": True}, "incorrect_type"),
                      ({"modes": ["bus"]}, "invalid_choice"), ({"modes": "rail"}, "incorrect_type"),
                      ({"tags": [999999]}, "does_not_exist"), ({"total": 5}, "read_only")]:
        response = post(api, "/api/v1/data/trip/", {"nights": 1, "rate": "1", **bad})
        assert response.status_code == 400, bad
        name = next(iter(bad))
        errors = response.json()[name]
        codes = [error["code"] for error in (errors if isinstance(errors, list) else errors.get("0", errors))]
        assert codes[0] == code or code in str(response.json()), response.json()


def test_reads_of_a_sensitive_entity_through_api_keys_are_audited(api, acme, make_user):
    from audit import services as audit
    from dynamic_models import services
    from dynamic_models.models import Entity

    record = expense()
    api.get("/api/v1/data/expense/")
    assert not audit.filter_events(action="data.expense.view").exists()  # Not sensitive yet.
    entity = Entity.objects.get(key="expense")
    entity.sensitive = True
    entity.save()
    services.publish(entity)
    assert api.get("/api/v1/data/expense/").status_code == 200
    assert api.get(f"/api/v1/data/expense/{record.pk}/").status_code == 200
    events = list(audit.filter_events(action="data.expense.view"))
    assert [event.data["ids"] for event in events] == [[record.pk], [record.pk]]
    assert all(event.api_key_prefix and event.actor == api.user for event in events)
    browser = make_user(acme, "bea", is_superuser=True, is_staff=True)
    from django.test import Client

    session = Client(HTTP_HOST="acme.localhost")
    session.force_login(browser)
    connection.set_tenant(acme)
    session.get("/api/v1/data/expense/")
    assert audit.filter_events(action="data.expense.view").count() == 2  # Only key use is audited.
