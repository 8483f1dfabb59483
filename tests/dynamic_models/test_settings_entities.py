"""Settings entities (issue 17): `"single": true`, exactly one record, opened by the lists."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client

from dynamic_models import runtime, services
from lowcode.apikeys import services as apikeys

from .conftest import design


@pytest.fixture
def settings_entity(tenant):
    entity = design("company_settings", [
        {"key": "company", "type": "text", "required": True},
        {"key": "vat_rate", "type": "percent"},
    ], label="Company settings", display_field="company", single=True)
    services.publish(entity)
    return runtime.get_model("company_settings")


@pytest.fixture
def frank(acme, make_user, settings_entity):
    user = make_user(acme, "frank", is_superuser=True, is_staff=True)
    connection.set_tenant(acme)
    return user


def test_the_body_says_single_and_publishing_keeps_it(settings_entity):
    assert settings_entity.lowcode_entity["single"] is True
    assert services.entity_body(services.save_design(settings_entity.lowcode_entity))["single"] is True


def test_the_api_refuses_a_second_record(frank, acme_client, settings_entity):
    _key, secret = apikeys.create_key(frank, name="integration", scopes=["*:write"])
    acme_client.defaults["HTTP_AUTHORIZATION"] = f"Api-Key {secret}"
    first = acme_client.post("/api/v1/data/company_settings/", {"company": "Acme", "vat_rate": "20"},
                             content_type="application/json")
    assert first.status_code == 201, first.json()
    second = acme_client.post("/api/v1/data/company_settings/", {"company": "Again"}, content_type="application/json")
    assert second.status_code == 400
    assert [error["code"] for errors in second.json().values() for error in errors] == ["single"]
    # The one record is changed as any other.
    changed = acme_client.patch(f"/api/v1/data/company_settings/{first.json()['id']}/", {"vat_rate": "19"},
                                content_type="application/json")
    assert changed.status_code == 200 and changed.json()["vat_rate"] == "19.00"
    assert settings_entity.objects.count() == 1


def test_admin_and_pages_open_the_one_record(frank, settings_entity):
    client = Client(HTTP_HOST="acme.localhost")
    client.force_login(frank)
    assert client.get("/admin/data/company_settings/")["Location"] == "/admin/data/company_settings/add/"
    assert client.get("/data/company_settings/")["Location"] == "/data/company_settings/new/"
    created = client.post("/admin/data/company_settings/add/", {"company": "Acme", "vat_rate": "20"})
    assert created.status_code == 302
    record = settings_entity.objects.get()
    change = f"/admin/data/company_settings/{record.pk}/change/"
    assert client.get("/admin/data/company_settings/")["Location"] == change
    assert client.get("/admin/data/company_settings/add/")["Location"] == change
    assert client.get("/data/company_settings/")["Location"] == f"/data/company_settings/{record.pk}/"
    # A list with a query (the deleted filter) is still a list.
    assert client.get("/admin/data/company_settings/?state=all").status_code == 200
    refused = client.post("/data/company_settings/new/", {"company": "Second"})
    assert refused.status_code in (200, 400)
    assert "holds one record" in refused.content.decode()
    assert settings_entity.objects.count() == 1
