"""The records quota holds at the service layer: at the limit a write passes, one more is refused with
`quota_exceeded` naming the quota and its usage, through admin, API, imports and the CLI."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django_tenants.utils import tenant_context

from lowcode.tenancy import quotas
from lowcode.tenancy.models import Tenant

from .conftest import expense


def set_limit(tenant, **limits):
    Tenant.objects.filter(pk=tenant.pk).update(**limits)
    tenant.refresh_from_db()
    connection.set_tenant(tenant)  # The request's tenant row, as a request loads it.


def records_used(tenant) -> int:
    return next(usage.usage for usage in quotas.usage_report(tenant) if usage.quota.type == "records")


@pytest.fixture
def admin_client(tenant, make_user, acme_client):
    acme_client.force_login(make_user(tenant, "chief", is_staff=True, is_superuser=True))
    return acme_client


def test_records_quota_through_the_api_at_the_limit_and_one_more(api, acme):
    expense(title="One")
    set_limit(acme, max_records=2)
    body = {"title": "Two", "amount": "3.00", "spent_on": "2026-01-05"}
    assert api.post("/api/v1/data/expense/", body, content_type="application/json").status_code == 201
    refused = api.post("/api/v1/data/expense/", {**body, "title": "Three"}, content_type="application/json")
    assert refused.status_code == 400, refused.json()
    error = refused.json()["non_field_errors"][0]
    assert error["code"] == "quota_exceeded"
    assert error["message"] == "The tenant's quota of records is reached: 2 of 2 used."
    assert records_used(acme) == 2


def test_records_quota_in_the_admin_add_form(api, acme, admin_client):
    set_limit(acme, max_records=1)
    form = {"title": "Taxi", "amount": "12.50", "currency": "CNY", "spent_on": "2026-01-05", "status": "draft"}
    assert admin_client.post("/admin/data/expense/add/", form).status_code == 302
    page = admin_client.post("/admin/data/expense/add/", {**form, "title": "Bus"})
    assert page.status_code == 200
    assert "The tenant&#x27;s quota of records is reached: 1 of 1 used." in page.content.decode()
    assert records_used(acme) == 1


def test_records_quota_refuses_an_import_that_would_pass_it_whole(api, acme):
    set_limit(acme, max_records=2)
    header = "title,amount,spent_on\n"
    fits = api.post("/api/v1/data/expense/import/", {"file": _csv(header + "A,1,2026-01-05\nB,2,2026-01-05\n")})
    assert fits.status_code == 201, fits.json()
    refused = api.post("/api/v1/data/expense/import/", {"file": _csv(header + "C,1,2026-01-05\n")})
    assert refused.status_code == 400
    assert refused.json()["rows"][0]["code"] == "quota_exceeded"
    assert records_used(acme) == 2


def test_records_quota_through_the_cli(acme):
    acme.max_records = 0
    acme.save(update_fields=["max_records"])
    with pytest.raises(CommandError, match="quota of records is reached: 0 of 0 used"):
        call_command("lowcode", "seed_demo")
    with tenant_context(acme):
        assert records_used(acme) == 0


def test_platform_admin_shows_usage_beside_the_quotas(api, acme):
    expense()
    set_limit(acme, max_records=10)
    public = Tenant.objects.get(schema_name="public")
    with tenant_context(public):
        root = get_user_model().objects.create_superuser("root", "root@example.com", "correct-horse-battery")
    client = Client(HTTP_HOST="localhost")
    with tenant_context(public):
        client.force_login(root)
    page = client.get(f"/admin/tenancy/tenant/{acme.pk}/change/").content.decode()
    assert "records: 1 of 10" in page and re.search(r"users: \d+ \(unlimited\)", page)


def _csv(content: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("rows.csv", content.encode(), content_type="text/csv")


def test_restoring_deleted_records_counts_against_the_quota(api, acme):
    gone = expense(title="Gone")
    gone.soft_delete()
    expense(title="Here")
    set_limit(acme, max_records=1)
    refused = api.post(f"/api/v1/data/expense/{gone.pk}/restore/")
    assert refused.status_code == 400
    assert refused.json()["non_field_errors"][0]["code"] == "quota_exceeded"
    assert records_used(acme) == 1
