"""Phone numbers and email addresses as real data has them (issue 17, finding 5).

Phone numbers are stored in E.164, read in the field's region or the tenant's; email addresses
with Unicode local parts are accepted.
"""

from __future__ import annotations

import pytest
from django.db import connection

from dynamic_models import runtime, services
from lowcode.apikeys import services as apikeys

from .conftest import design


@pytest.fixture
def contacts(tenant):
    entity = design("contact", [
        {"key": "name", "type": "text", "required": True, "options": {"max_length": 80}},
        {"key": "phone", "type": "phone", "filterable": True},
        {"key": "office_phone", "type": "phone", "options": {"region": "FR"}},
        {"key": "email", "type": "email", "filterable": True},
    ], label="Contact", display_field="name")
    services.publish(entity)
    return runtime.get_model("contact").objects


@pytest.fixture
def api(contacts, acme, make_user, acme_client):
    user = make_user(acme, "frank", is_superuser=True, is_staff=True)
    connection.set_tenant(acme)
    _key, secret = apikeys.create_key(user, name="integration", scopes=["*:write"])
    acme_client.defaults["HTTP_AUTHORIZATION"] = f"Api-Key {secret}"
    return acme_client


def post(api, **values):
    return api.post("/api/v1/data/contact/", {"name": "Clara", **values}, content_type="application/json")


def set_phone_region(tenant, region: str) -> None:
    tenant.phone_region = region
    tenant.save(update_fields=["phone_region"])


def test_a_national_number_is_read_in_the_tenants_region_and_stored_in_e164(api, acme, contacts):
    set_phone_region(acme, "US")
    response = post(api, phone="(918) 458-4364")
    assert response.status_code == 201, response.json()
    assert response.json()["phone"] == "+19184584364"
    assert contacts.get().phone == "+19184584364"
    # Found by any spelling of the number.
    found = api.get("/api/v1/data/contact/?phone=%2B1%20918-458-4364").json()["results"]
    assert [row["name"] for row in found] == ["Clara"]


def test_a_national_number_without_a_region_is_refused_naming_the_field(api):
    refused = post(api, phone="(918) 458-4364")
    assert refused.status_code == 400
    assert refused.json()["phone"][0]["code"] == "phone"
    assert "+" in refused.json()["phone"][0]["message"]
    # With its country code it needs no region.
    assert post(api, phone="+1 918 458 4364").json()["phone"] == "+19184584364"


def test_the_fields_region_wins_over_the_tenants(api, acme):
    set_phone_region(acme, "US")
    response = post(api, office_phone="01 42 68 53 00")
    assert response.status_code == 201, response.json()
    assert response.json()["office_phone"] == "+33142685300"


def test_what_is_no_phone_number_is_refused(api, acme):
    set_phone_region(acme, "US")
    for value in ("12", "call me", "+1 918 458 4364 4364 4364"):
        refused = post(api, phone=value)
        assert refused.status_code == 400, value
        assert refused.json()["phone"][0]["code"] == "phone"


def test_an_international_email_address_is_accepted(api, contacts):
    response = post(api, email="clara.lefèvre@example.com")
    assert response.status_code == 201, response.json()
    assert contacts.get().email == "clara.lefèvre@example.com"
    assert post(api, name="Li", email="李雷@例子.中国").status_code == 201
    for value in ("clara", "clara@", "a b@example.com"):
        refused = post(api, email=value)
        assert refused.status_code == 400, value
        assert refused.json()["email"][0]["code"] == "invalid"


def test_admin_takes_real_numbers_and_addresses(api, acme, make_user, acme_client, contacts):
    set_phone_region(acme, "US")
    make_user(acme, "bea", is_staff=True, is_superuser=True)
    client = type(acme_client)(HTTP_HOST="acme.localhost")
    client.post("/admin/login/", {"username": "bea", "password": "correct-horse-battery"})
    form = client.get("/admin/data/contact/add/").content.decode()
    assert 'type="tel"' in form and 'type="email"' not in form  # Browsers refuse Unicode local parts there.
    saved = client.post("/admin/data/contact/add/", {"name": "Clara", "phone": "(918) 458-4364",
                                                      "email": "clara.lefèvre@example.com"})
    assert saved.status_code == 302
    assert contacts.values_list("phone", "email").get() == ("+19184584364", "clara.lefèvre@example.com")
    refused = client.post("/admin/data/contact/add/", {"name": "Bad", "phone": "call me"})
    assert "Enter a valid phone number" in refused.content.decode()


def test_lists_show_numbers_as_people_write_them(api, acme, make_user, contacts):
    set_phone_region(acme, "US")
    contacts.create(name="Clara", phone="+19184584364", office_phone="+33142685300")
    user = make_user(acme, "bea", is_staff=True, is_superuser=True)
    client = type(api)(HTTP_HOST="acme.localhost")
    client.force_login(user)
    for url in ("/admin/data/contact/", "/data/contact/"):
        page = client.get(url).content.decode()
        assert "(918) 458-4364" in page and "+33 1 42 68 53 00" in page, url
