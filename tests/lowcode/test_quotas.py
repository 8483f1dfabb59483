"""Quotas hold at the service layer: at the limit a write passes, one more is refused with
`quota_exceeded` naming the quota and its usage, through admin, API, imports and the CLI."""

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from lowcode.tenancy import quotas
from lowcode.tenancy.models import Tenant


def set_limit(tenant, **limits):
    Tenant.objects.filter(pk=tenant.pk).update(**limits)
    tenant.refresh_from_db()
    connection.set_tenant(tenant)  # The request's tenant row, as a request loads it.


@pytest.fixture
def admin_client(tenant, make_user, acme_client):
    acme_client.force_login(make_user(tenant, "chief", is_staff=True, is_superuser=True))
    return acme_client


def test_users_quota_in_the_admin_and_for_any_other_creation(tenant, make_user, admin_client):
    present = get_user_model().objects.filter(is_active=True).count()  # chief and the fixtures' users.
    set_limit(tenant, max_users=present + 1)
    form = {"username": "second", "password1": "correct-horse-battery", "password2": "correct-horse-battery",
            "usable_password": "true"}
    added = admin_client.post("/admin/auth/user/add/", form)
    assert added.status_code == 302, added.context["adminform"].form.errors
    page = admin_client.post("/admin/auth/user/add/", {**form, "username": "third"})
    assert page.status_code == 200 and f"quota of users is reached: {present + 1} of {present + 1} used" in page.content.decode()
    with pytest.raises(quotas.QuotaExceeded):
        get_user_model().objects.create_user("third")
    inactive = get_user_model().objects.create_user("inactive", is_active=False)  # Counts only when active.
    inactive.is_active = True
    with pytest.raises(quotas.QuotaExceeded):
        inactive.save()
    assert get_user_model().objects.filter(is_active=True).count() == present + 1


def test_api_calls_per_day(tenant, make_user, acme_client):
    set_limit(tenant, max_api_calls_per_day=3)
    acme_client.force_login(make_user(tenant, "caller"))
    for _call in range(3):
        assert acme_client.get("/api/v1/me/").status_code == 200
    refused = acme_client.get("/api/v1/me/")
    assert refused.status_code == 429
    assert refused.json() == {"detail": "The tenant's quota of API calls per day is reached: 3 of 3 used.",
                              "code": "quota_exceeded"}
    quota = quotas.quota_registry.get("api_calls")
    assert quota.usage() == 4  # Counted in one round trip, read back through the cache.
    key = cache.make_and_validate_key(quota.cache_key())
    assert 2 * 24 * 3600 - 60 < cache._cache.get_client(key).ttl(key) <= 2 * 24 * 3600


def test_the_tenants_admin_index_shows_quota_usage_to_its_administrators(tenant, make_user, admin_client,
                                                                         acme_client):
    present = get_user_model().objects.filter(is_active=True).count()
    set_limit(tenant, max_users=present + 5)
    page = admin_client.get("/admin/").content.decode()
    assert 'id="quota-usage"' in page and f"{present} of {present + 5}" in page
    acme_client.force_login(make_user(tenant, "clerk", is_staff=True))
    assert 'id="quota-usage"' not in acme_client.get("/admin/").content.decode()


def test_users_quota_through_the_cli(tenant):
    present = get_user_model().objects.filter(is_active=True).count()
    set_limit(tenant, max_users=present)
    with pytest.raises(CommandError, match=f"quota of users is reached: {present} of {present} used"):
        call_command("create_tenant_superuser", "--schema", tenant.schema_name, "--username", "extra",
                     "--email", "extra@example.com", "--noinput")
    assert not get_user_model().objects.filter(username="extra").exists()
