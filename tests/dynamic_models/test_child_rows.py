"""Ordered child rows edited inline in their parent (issue 17): the entity option `child_of`."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import Client

from audit.models import AuditEvent
from dynamic_models import runtime, services
from lowcode.apikeys import services as apikeys
from metadata.exceptions import DefinitionValidationError

CLAIM = [{"key": "title", "type": "text", "required": True}]
LINE = [
    {"key": "claim", "type": "relation", "options": {"target": "claim", "on_delete": "cascade"}},
    {"key": "position", "type": "integer"},
    {"key": "description", "type": "text", "required": True},
    {"key": "amount", "type": "decimal", "required": True, "options": {"max_digits": 10, "decimal_places": 2, "min": 0}},
]
CHILD_OF = {"relation": "claim", "order_field": "position"}


def body(key: str, fields: list[dict], **entity) -> dict:
    return {"key": key, "fields": [{"id": f"{key[:4]}{index:04d}", **spec} for index, spec in enumerate(fields)],
            **entity}


@pytest.fixture
def claims(tenant):
    services.publish_body(body("claim", CLAIM, display_field="title"))
    services.publish_body(body("claim_line", LINE, child_of=CHILD_OF))
    return runtime.get_model("claim"), runtime.get_model("claim_line")


@pytest.fixture
def frank(acme, make_user, claims):
    user = make_user(acme, "frank", is_superuser=True, is_staff=True)
    connection.set_tenant(acme)
    return user


def refused(entity_body: dict) -> list[tuple[str, str]]:
    with pytest.raises(DefinitionValidationError) as raised:
        services.publish_body(entity_body)
    return [(error["path"], error["code"]) for error in raised.value.errors]


def test_design_errors_name_the_option(tenant):
    services.publish_body(body("claim", CLAIM))
    many = {**LINE[0], "options": {"target": "claim", "cardinality": "many_to_many"}}
    assert refused(body("claim_line", LINE, child_of={"relation": "nope", "order_field": "position"})) == [
        ("child_of/relation", "unknown_field")]
    assert refused(body("claim_line", LINE, child_of={"relation": "description", "order_field": "position"})) == [
        ("child_of/relation", "not_many_to_one")]
    assert refused(body("claim_line", [many, *LINE[1:]], child_of=CHILD_OF)) == [
        ("child_of/relation", "not_many_to_one")]
    assert refused(body("claim_line", [LINE[0], *LINE[2:]], child_of=CHILD_OF)) == [
        ("child_of/order_field", "order_field")]
    assert refused(body("claim_line", LINE, child_of={"relation": "claim", "order_field": "description"})) == [
        ("child_of/order_field", "order_field")]
    assert refused(body("claim_line", LINE, child_of={"relation": "claim"}))[0][0] == "child_of"


def test_the_option_survives_the_design_rows(claims):
    _claim, line = claims
    assert line.lowcode_entity["child_of"] == CHILD_OF
    assert services.entity_body(services.save_design(line.lowcode_entity))["child_of"] == CHILD_OF


def _inline_post(record, rows: list[dict], *, initial: int) -> dict:
    """The change form of `record` with the child rows `rows` (id, position, description, amount, DELETE)."""
    prefix = "claim_line_claim_set"
    data = {"title": record.title, f"{prefix}-TOTAL_FORMS": len(rows), f"{prefix}-INITIAL_FORMS": initial,
            f"{prefix}-MIN_NUM_FORMS": 0, f"{prefix}-MAX_NUM_FORMS": 1000}
    for index, row in enumerate(rows):
        data.update({f"{prefix}-{index}-{name}": value for name, value in row.items()})
        data[f"{prefix}-{index}-claim"] = record.pk
    return data


def test_admin_edits_the_children_inline_in_order(frank, claims):
    claim, line = claims
    record = claim.objects.create(title="Trip")
    client = Client(HTTP_HOST="acme.localhost")
    client.force_login(frank)
    url = f"/admin/data/claim/{record.pk}/change/"
    # Added: the second without an order number goes last.
    added = client.post(url, _inline_post(record, [
        {"position": "1", "description": "Train", "amount": "40"},
        {"position": "", "description": "Hotel", "amount": "90"}], initial=0))
    assert added.status_code == 302, (added.context["errors"], [f.formset.prefix for f in added.context["inline_admin_formsets"]])
    train, hotel = line.objects.order_by("position")
    assert [(train.description, train.position), (hotel.description, hotel.position)] == [("Train", 1), ("Hotel", 2)]
    page = client.get(url).content.decode()
    assert page.index("Train") < page.index("Hotel") and "claim_line_claim_set-0-amount" in page
    # Reordered and edited, then one deleted: each audited as a change of the child record.
    changed = client.post(url, _inline_post(record, [
        {"id": train.pk, "position": "2", "description": "Train", "amount": "45"},
        {"id": hotel.pk, "position": "1", "description": "Hotel", "amount": "90"}], initial=2))
    assert changed.status_code == 302
    assert list(line.objects.order_by("position").values_list("description", flat=True)) == ["Hotel", "Train"]
    page = client.get(url).content.decode()
    assert page.index("Hotel") < page.index("Train")
    deleted = client.post(url, _inline_post(record, [
        {"id": hotel.pk, "position": "1", "description": "Hotel", "amount": "90"},
        {"id": train.pk, "position": "2", "description": "Train", "amount": "45", "DELETE": "on"}], initial=2))
    assert deleted.status_code == 302
    assert list(line.objects.values_list("description", flat=True)) == ["Hotel"]
    actions = list(AuditEvent.objects.filter(target_type__endswith="claim_line", target_id=str(train.pk))
                   .order_by("seq").values_list("action", flat=True))
    assert actions[0].endswith("create") and actions[-1].endswith("delete") and len(actions) == 3, actions


@pytest.fixture
def api(frank, acme_client):
    _key, secret = apikeys.create_key(frank, name="integration", scopes=["*:write"])
    acme_client.defaults["HTTP_AUTHORIZATION"] = f"Api-Key {secret}"
    return acme_client


def _send(client, method: str, url: str, data: dict, **headers):
    return getattr(client, method)(url, json.dumps(data), content_type="application/json", **headers)


def test_api_reads_and_writes_the_children_in_order(api, claims):
    _claim, line = claims
    created = _send(api, "post", "/api/v1/data/claim/", {"title": "Trip", "claim_line": [
        {"description": "Train", "amount": "40"}, {"description": "Hotel", "amount": "90"}]})
    assert created.status_code == 201, created.json()
    rows = created.json()["claim_line"]
    assert [(row["description"], row["position"]) for row in rows] == [("Train", 1), ("Hotel", 2)]
    url = f"/api/v1/data/claim/{created.json()['id']}/"
    train, hotel = rows
    # Replaced: Hotel first and changed, Train gone, Taxi new; the client may send back what it read.
    changed = _send(api, "patch", url, {"claim_line": [
        {**hotel, "amount": "95"}, {"description": "Taxi", "amount": "12.5"}]})
    assert changed.status_code == 200, changed.json()
    assert [(row["description"], row["amount"], row["position"]) for row in changed.json()["claim_line"]] == [
        ("Hotel", "95.00", 1), ("Taxi", "12.50", 2)]
    assert changed.json()["claim_line"][0]["id"] == hotel["id"]
    assert not line.objects.filter(pk=train["id"]).exists()
    assert AuditEvent.objects.filter(target_type__endswith="claim_line", target_id=str(train["id"]),
                                     action__endswith="delete").exists()
    # Both read paths show them: the record serializer's (retrieve, list) and the rows' (a list of some fields).
    assert [row["description"] for row in api.get(url).json()["claim_line"]] == ["Hotel", "Taxi"]
    listed = api.get("/api/v1/data/claim/").json()["results"][0]
    assert [row["description"] for row in listed["claim_line"]] == ["Hotel", "Taxi"]
    assert api.get("/api/v1/data/claim/?fields=id,title").json()["results"][0] == {
        "id": created.json()["id"], "title": "Trip"}
    # A PATCH without them leaves them.
    assert _send(api, "patch", url, {"title": "Trip 2"}).json()["claim_line"][1]["description"] == "Taxi"


def test_api_errors_name_the_row_and_nothing_is_kept(api, claims):
    claim, line = claims
    refused = _send(api, "post", "/api/v1/data/claim/", {"title": "Trip", "claim_line": [
        {"description": "Train", "amount": "40"}, {"description": "Hotel"}, {"description": "Taxi", "amount": "-1"},
        {"id": 999999, "description": "Not ours", "amount": "1"}]})
    assert refused.status_code == 400
    errors = refused.json()
    assert sorted(errors) == ["claim_line[1].amount", "claim_line[2].amount", "claim_line[3].id"], errors
    assert errors["claim_line[1].amount"][0]["code"] == "required"
    assert not claim.objects.exists() and not line.objects.exists()
    assert _send(api, "post", "/api/v1/data/claim/", {"title": "x", "claim_line": {"a": 1}}).status_code == 400


def test_api_writes_children_with_the_child_entitys_permissions(api, acme, make_user, claims):
    from django.contrib.auth.models import Permission

    from rbac import services as rbac

    claim, line = claims
    record = claim.objects.create(title="Trip")
    line.objects.create(claim=record, position=1, description="Train", amount="40")
    clerk = make_user(acme, "clerk")
    connection.set_tenant(acme)
    clerks = rbac.create_role("clerk", grants=[Permission.objects.get(codename=name) for name in (
        "view_claim", "change_claim", "view_claim_line")])
    rbac.add_scope(clerks, "claim", "all")
    rbac.add_scope(clerks, "claim_line", "all")
    rbac.assign_role(clerk, clerks)
    _key, secret = apikeys.create_key(clerk, name="clerk", scopes=["*:write"])
    headers = {"HTTP_AUTHORIZATION": f"Api-Key {secret}"}
    url = f"/api/v1/data/claim/{record.pk}/"
    shown = api.get(url, **headers).json()["claim_line"]
    assert [row["description"] for row in shown] == ["Train"]
    refused = _send(api, "patch", url, {"title": "Changed", "claim_line": [{**shown[0], "amount": "1"}]}, **headers)
    assert refused.status_code == 403
    assert claim.objects.get().title == "Trip" and str(line.objects.get().amount) == "40.00"
    assert _send(api, "patch", url, {"title": "Changed"}, **headers).status_code == 200


def test_openapi_shows_the_nested_rows(api, claims):
    schema = api.get("/api/schema/?format=json").json()
    claim = schema["components"]["schemas"]["Claim"]["properties"]["claim_line"]
    assert claim["type"] == "array" and claim["items"]["$ref"].endswith("/Claim_LineRow")


def test_frappe_child_tables_map_to_child_rows(tenant):
    from dynamic_models.importers import frappe

    conversion = frappe.convert([
        {"doctype": "DocType", "name": "Claim", "fields": [
            {"fieldname": "title", "fieldtype": "Data"},
            {"fieldname": "lines", "fieldtype": "Table", "options": "Claim Line"}]},
        {"doctype": "DocType", "name": "Claim Line", "istable": 1, "fields": [
            {"fieldname": "amount", "fieldtype": "Float"}]}])
    line = conversion.bodies["claim_line"]
    assert line["child_of"] == {"relation": "claim", "order_field": "idx"}
    assert {spec["key"]: spec["type"] for spec in line["fields"]} == {
        "claim": "relation", "idx": "integer", "amount": "decimal"}
    services.publish_body(conversion.bodies["claim"])
    services.publish_body(line)  # A valid design: the option names the relation and the integer field.
    assert runtime.get_model("claim_line").lowcode_entity["child_of"]["order_field"] == "idx"


def test_a_bundle_cycle_leaves_the_option_for_the_second_step():
    from dynamic_models.definitions import EntityKind

    first_step = EntityKind().without_dependencies(body("claim_line", LINE, child_of=CHILD_OF), {("entity", "claim")})
    assert "child_of" not in first_step and "claim" not in {spec["key"] for spec in first_step["fields"]}
