"""Field types of real-world models (issue 17): currency, percent, duration, rating, users and a
link to any record, from design to admin, API, filters, OpenAPI, export/import and expressions."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from drf_spectacular.validation import validate_schema

from dynamic_models import designer, runtime, services
from dynamic_models.business_types import format_money
from dynamic_models.models import Entity
from lowcode.apikeys import services as apikeys
from rbac import services as rbac

from .conftest import design
from .test_api_transfer import read_csv, upload

DEAL_FIELDS = [
    {"key": "name", "type": "text", "required": True, "options": {"max_length": 80}},
    {"key": "amount", "type": "currency", "options": {"currency": "EUR", "min": 0}},
    {"key": "code", "type": "choice", "options": {"choices": [{"value": "EUR"}, {"value": "JPY"}, {"value": "USD"}]}},
    {"key": "local_amount", "type": "currency", "options": {"currency_field": "code"}},
    {"key": "discount", "type": "percent", "options": {"max": 100}},
    {"key": "effort", "type": "duration"},
    {"key": "stars", "type": "rating", "options": {"max": 5}},
    {"key": "watchers", "type": "users"},
    {"key": "about", "type": "generic_link"},
    {"key": "net", "type": "formula", "options": {"expression": "amount * (100 - discount) / 100"}},
    {"key": "hours", "type": "formula", "options": {"expression": "effort / 3600"}},
]


@pytest.fixture
def deals(tenant):
    services.publish(design("project", [{"key": "name", "type": "text", "required": True}],
                            label="Project", display_field="name"))
    services.publish(design("deal", DEAL_FIELDS, label="Deal", display_field="name",
                            rules=[{"key": "top_is_cheap", "expression": "is_null(stars) or stars < 5 or amount < 1000",
                                    "message": "Five stars only under 1000.", "field": "stars"}]))
    return runtime.get_model("deal").objects


@pytest.fixture
def frank(acme, make_user):
    return make_user(acme, "frank", is_superuser=True, is_staff=True)


@pytest.fixture
def api(deals, acme, frank, acme_client):
    connection.set_tenant(acme)
    _key, secret = apikeys.create_key(frank, name="integration", scopes=["*:write"])
    acme_client.defaults["HTTP_AUTHORIZATION"] = f"Api-Key {secret}"
    return acme_client


@pytest.fixture
def apollo(deals):
    return runtime.get_model("project").objects.create(name="Apollo")


def post(api, **values):
    return api.post("/api/v1/data/deal/", {"name": "Big", **values}, content_type="application/json")


def test_the_designer_offers_the_types_and_checks_their_options(tenant):
    types = designer.config()["types"]
    assert {"currency", "percent", "duration", "rating", "users", "generic_link"} <= set(types)
    assert types["currency"]["schema"]["properties"]["currency"]["pattern"] == "^[A-Z]{3}$"
    entity = Entity.objects.create(key="bad")
    for position, spec in enumerate([
            {"key": "price", "type": "currency", "options": {}},
            {"key": "cost", "type": "currency", "options": {"currency": "ABC"}},
            {"key": "fee", "type": "currency", "options": {"currency_field": "nothing"}},
            {"key": "stars", "type": "rating", "options": {"max": 11}},
            {"key": "link", "type": "generic_link", "options": {"entities": ["nowhere"]}}]):
        entity.fields.create(position=position, **spec)
    with pytest.raises(services.DefinitionValidationError) as refused:
        services.publish(entity)
    messages = " ".join(error["message"] for error in refused.value.errors)
    for expected in ("Field “price”: Give either the currency", "Field “cost”: ABC is no currency code.",
                     "Field “fee”: Unknown field 'nothing'.", "Field “stars”: the option “maximum” must be at most 10.",
                     "Field “link”: Unknown entity 'nowhere'"):
        assert expected in messages


def test_api_round_trip(api, deals, frank, apollo):
    response = post(api, amount="1234.5", code="JPY", local_amount="1500", discount="12.5", effort="1:30",
                    stars=4, watchers=[frank.pk], about={"entity": "project", "id": apollo.pk})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["amount"], body["local_amount"], body["discount"]) == ("1234.50", "1500.00", "12.50")
    assert (body["effort"], body["stars"], body["watchers"]) == (5400, 4, [frank.pk])
    assert body["about"] == {"entity": "project", "id": apollo.pk, "display": "Apollo"}
    # Expressions read the new types.
    assert (Decimal(body["net"]), Decimal(body["hours"])) == (Decimal("1080.1875"), Decimal("1.5"))
    stored = deals.get()
    assert (stored.effort, stored.about, stored.watchers) == (5400, f"project:{apollo.pk}", [frank.pk])
    # ISO 8601 and seconds are durations too; a link may be written as entity:id.
    changed = api.patch(f"/api/v1/data/deal/{stored.pk}/", {"effort": "PT2H", "about": f"deal:{stored.pk}"},
                        content_type="application/json")
    assert changed.status_code == 200, changed.json()
    assert changed.json()["effort"] == 7200 and changed.json()["about"]["display"] == "Big"


def test_api_filters(api, deals, frank, apollo):
    deals.create(name="Small", amount="10", effort=600, stars=2, watchers=[])
    deals.create(name="Long", amount="900", effort=36000, stars=5, watchers=[frank.pk], about=f"project:{apollo.pk}")

    def names(query):
        response = api.get(f"/api/v1/data/deal/?{query}&ordering=name")
        assert response.status_code == 200, response.json()
        return [row["name"] for row in response.json()["results"]]

    assert names("effort__gte=3600") == ["Long"]
    assert names("stars__lt=3") == ["Small"]
    assert names("amount__gt=100") == ["Long"]
    assert names(f"watchers__contains={frank.pk}") == ["Long"]
    assert names(f"about=project:{apollo.pk}") == ["Long"]
    assert names("about__istartswith=project:") == ["Long"]
    assert names("about__isnull=true") == ["Small"]
    assert api.get("/api/v1/data/deal/?watchers__contains=x").status_code == 400


@pytest.mark.parametrize(("values", "field", "code"), [
    ({"stars": 6}, "stars", "max_value"),
    ({"stars": 0}, "stars", "min_value"),
    ({"stars": 5, "amount": "5000"}, "stars", "top_is_cheap"),
    ({"effort": "soon"}, "effort", "invalid"),
    ({"discount": "101"}, "discount", "max_value"),
    ({"amount": "-1"}, "amount", "min_value"),
    ({"watchers": [987654]}, "watchers", "does_not_exist"),
    ({"watchers": "me"}, "watchers", "incorrect_type"),
    ({"about": "nowhere:1"}, "about", "unknown_entity"),
    ({"about": "project:987654"}, "about", "does_not_exist"),
    ({"about": "project"}, "about", "invalid"),
])
def test_invalid_values_answer_400_naming_the_field(api, values, field, code):
    response = post(api, **values)
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert response.json()[field][0]["code"] == code, response.json()


def test_a_link_is_checked_and_shown_under_the_viewers_permissions(api, deals, acme, apollo, make_user):
    """A user who may see deals but not projects can neither link one nor read its name."""
    dana = make_user(acme, "dana")
    role = rbac.create_role("deal_reader", "Deal reader", grants=["data.deal.view", "data.deal.add"])
    rbac.add_scope(role, "deal", "all")
    rbac.assign_role(dana, role)
    deals.create(name="Linked", about=f"project:{apollo.pk}")
    _key, secret = apikeys.create_key(dana, name="dana", scopes=["*:write"])
    client = Client(HTTP_HOST="acme.localhost", HTTP_AUTHORIZATION=f"Api-Key {secret}")
    listing = client.get("/api/v1/data/deal/")
    assert listing.status_code == 200, listing.json()
    row = listing.json()["results"][0]
    assert row["about"] == {"entity": "project", "id": apollo.pk, "display": None}
    refused = client.post("/api/v1/data/deal/", {"name": "Mine", "about": f"project:{apollo.pk}"},
                          content_type="application/json")
    assert refused.status_code == 400 and refused.json()["about"][0]["code"] == "does_not_exist"


def test_openapi_schema(api):
    schema = api.get("/api/schema/?format=json").json()
    validate_schema(schema)
    properties = schema["components"]["schemas"]["DealRequest"]["properties"]
    assert {"amount", "discount", "effort", "stars", "watchers", "about"} <= set(properties)
    parameters = {p["name"] for p in schema["paths"]["/api/v1/data/deal/"]["get"]["parameters"]}
    assert {"effort__gte", "stars__lte", "watchers__contains", "about__istartswith"} <= parameters


def test_csv_export_and_import_round_trip(api, deals, frank, apollo):
    deals.create(name="Long", amount="900.5", code="USD", local_amount="12", discount="7.5", effort=5430, stars=3,
                 watchers=[frank.pk], about=f"project:{apollo.pk}")
    fields = "name,amount,local_amount,discount,effort,stars,watchers,about"
    rows = read_csv(api.get(f"/api/v1/data/deal/export.csv?fields={fields}"))
    assert rows == [fields.split(","), ["Long", "900.50", "12.00", "7.50", "1:30:30", "3", str(frank.pk),
                                        f"project:{apollo.pk}"]]
    content = "\n".join(",".join(row) for row in [rows[0], ["Copy", *rows[1][1:]]])
    response = upload(api, "deal", content)
    assert response.status_code == 201, response.json()
    copy = deals.get(name="Copy")
    original = deals.get(name="Long")
    for key in ("amount", "local_amount", "discount", "effort", "stars", "watchers", "about"):
        assert getattr(copy, key) == getattr(original, key), key


def test_admin_edits_and_shows_the_types(deals, acme, frank, apollo):
    client = Client(HTTP_HOST="acme.localhost")
    client.force_login(frank)
    form = client.get("/admin/data/deal/add/").content.decode()
    assert "★★★★★" in form and 'name="watchers"' in form
    response = client.post("/admin/data/deal/add/", {
        "name": "Admin", "amount": "10.00", "code": "EUR", "discount": "5", "effort": "2:15", "stars": "3",
        "watchers": [str(frank.pk)], "about": f"project:{apollo.pk}"})
    assert response.status_code == 302, response.content.decode()[:3000]
    saved = deals.get(name="Admin")
    assert (saved.effort, saved.stars, saved.watchers) == (8100, 3, [frank.pk])
    page = client.get(f"/admin/data/deal/{saved.pk}/change/").content.decode()
    assert 'value="2:15"' in page
    refused = client.post("/admin/data/deal/add/", {"name": "Bad", "effort": "later", "stars": "9"})
    assert refused.status_code == 200
    assert "Enter a duration such as 1:30" in refused.content.decode()


def test_money_is_formatted_in_the_readers_language():
    from django.utils import translation

    with translation.override("en"):
        assert format_money("1234.5", "EUR") == "€1,234.50"
        assert format_money("1234", "JPY") == "¥1,234"
    with translation.override("zh-hans"):
        assert format_money("1234.5", "CNY") == "¥1,234.50"
    assert format_money("12", None) == "12"


def test_durations_parse_and_format():
    from dynamic_models.business_types import format_seconds, parse_seconds

    assert [parse_seconds(v) for v in ("1:30", "1:30:15", "2d 1:00", "PT1H30M", "90", 90)] == [
        5400, 5415, 176400, 5400, 90, 90]
    assert [format_seconds(v) for v in (5400, 5415, 0)] == ["1:30", "1:30:15", "0:00"]
    assert parse_seconds(datetime.timedelta(minutes=2)) == 120
    assert json.dumps(format_seconds(None)) == '""'


def test_lists_show_money_durations_stars_and_names(deals, acme, frank, apollo):
    frank.first_name, frank.last_name = "Frank", "Li"
    frank.save()
    deals.create(name="Shown", amount="1234.5", code="JPY", local_amount="1500", discount="12.5", effort=5400,
                 stars=4, watchers=[frank.pk], about=f"project:{apollo.pk}")
    client = Client(HTTP_HOST="acme.localhost")
    client.force_login(frank)
    for url in ("/admin/data/deal/", "/data/deal/"):
        page = client.get(url).content.decode()
        for shown in ("€1,234.50", "¥1,500", "12.5%", "1:30", "★★★★☆", "Frank Li", "Project #"):
            assert shown in page, (url, shown)


def test_the_end_user_form_has_a_widget_per_type(deals, acme, frank, apollo):
    client = Client(HTTP_HOST="acme.localhost")
    client.force_login(frank)
    form = client.get("/data/deal/new/").content.decode()
    assert 'type="radio" name="stars" value="5"' in form and "★★★★★" in form
    assert '<select multiple' in form and f'value="{frank.pk}"' in form
    response = client.post("/data/deal/new/", {
        "name": "From the form", "amount": "12.5", "discount": "5", "effort": "2:15", "stars": "4",
        "watchers": [str(frank.pk)], "about": f"project:{apollo.pk}"})
    assert response.status_code == 302, response.content.decode()[:2000]
    saved = deals.get(name="From the form")
    assert (saved.effort, saved.stars, saved.watchers, saved.about) == (8100, 4, [frank.pk], f"project:{apollo.pk}")
    refused = client.post("/data/deal/new/", {"name": "Bad", "effort": "later", "stars": "9"})
    assert refused.status_code in (200, 400)
    assert not deals.filter(name="Bad").exists()


def test_expressions_read_each_type(tenant):
    from dynamic_models.formulas import expression_fields

    types = expression_fields({"key": "deal", "fields": [{**spec, "id": f"f{index:05d}"} for index, spec in
                                                         enumerate(DEAL_FIELDS)]}, database=False)
    assert {key: getattr(types[key], "kind", None) for key in (
        "amount", "local_amount", "discount", "effort", "stars", "watchers", "about")} == {
        "amount": "number", "local_amount": "number", "discount": "number", "effort": "number", "stars": "number",
        "watchers": "list", "about": "text"}
    assert types["watchers"].item.kind == "number"
    from lowcode.expressions import compile_expression

    # A rule (checked in Python) may ask whether a user is among them.
    assert compile_expression("3 in watchers and stars >= 4").check(types, database=False).kind == "boolean"
