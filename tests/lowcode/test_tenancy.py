import uuid

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.test import Client
from django_tenants.utils import schema_exists, tenant_context

from lowcode.tenancy import services
from lowcode.tenancy.models import Tenant


def login(client, username, password="correct-horse-battery"):
    return client.post("/accounts/login/", {"username": username, "password": password})


def test_user_of_acme_cannot_log_into_globex(acme, globex, make_user, acme_client, globex_client):
    make_user(acme, "alice")

    refused = login(globex_client, "alice")
    assert refused.status_code == 200
    assert "Please enter a correct username and password" in refused.content.decode()

    assert login(acme_client, "alice").status_code == 302
    assert acme_client.get("/").context["user"].username == "alice"
    # acme's session cookie means nothing to globex: sessions live in each tenant's schema.
    globex_client.cookies = acme_client.cookies
    assert not globex_client.get("/").context["user"].is_authenticated


def test_each_tenant_has_its_own_users(acme, globex, make_user):
    make_user(acme, "alice")
    with tenant_context(globex):
        assert not get_user_model().objects.filter(username="alice").exists()
    with tenant_context(acme):
        assert get_user_model().objects.filter(username="alice").exists()


def test_unknown_host_gets_404(db):
    assert Client(HTTP_HOST="nobody.localhost").get("/").status_code == 404


def test_suspended_tenant_answers_403_and_keeps_data(acme, make_user, acme_client, globex_client):
    make_user(acme, "alice")
    call_command("lowcode", "tenant", "suspend", "acme")

    page = acme_client.get("/admin/login/")
    assert page.status_code == 403
    assert "This workspace is suspended" in page.content.decode()
    api = acme_client.get("/api/v1/anything/", HTTP_ACCEPT="application/json")
    assert api.status_code == 403
    assert api.json()["code"] == "tenant_suspended"
    assert login(acme_client, "alice").status_code == 403
    assert globex_client.get("/").status_code == 200

    call_command("lowcode", "tenant", "resume", "acme")
    assert acme_client.get("/").status_code == 200
    assert login(acme_client, "alice").status_code == 302


def test_public_tenant_cannot_be_suspended(db):
    public = Tenant.objects.get(schema_name="public")
    with pytest.raises(services.TenancyError, match="cannot be suspended"):
        services.suspend_tenant(public)


def test_cli_creates_lists_and_deletes_a_tenant_after_exporting(db, tmp_path, capsys):
    call_command("lowcode", "tenant", "create", "initech", "--name", "Initech",
                 "--domain", "initech.localhost", "--admin", "boss")
    out = capsys.readouterr().out
    assert "Created tenant initech at initech.localhost" in out
    password = out.split("password: ")[1].split()[0]
    initech = Tenant.objects.get(schema_name="initech")
    assert initech.domains.get().is_primary
    response = Client(HTTP_HOST="initech.localhost").post(
        "/accounts/login/", {"username": "boss", "password": password})
    assert response.status_code == 302

    call_command("lowcode", "tenant", "list")
    listing = capsys.readouterr().out
    assert "initech" in listing and "acme" in listing and "initech.localhost" in listing

    with pytest.raises(CommandError, match="--yes"):
        call_command("lowcode", "tenant", "delete", "initech")
    assert schema_exists("initech")

    call_command("lowcode", "tenant", "delete", "initech", "--yes", "--export-dir", str(tmp_path))
    exports = list(tmp_path.glob("initech-*.json.gz"))
    assert len(exports) == 1 and exports[0].stat().st_size > 0
    assert not schema_exists("initech")
    assert not Tenant.objects.filter(schema_name="initech").exists()


@pytest.mark.parametrize("schema, message", [
    ("public", "reserved"),
    ("acme", "already exists"),
    ("Bad-Name", "invalid"),
    ('x"; drop schema public; --', "invalid"),
    ("pg_catalog2", "reserved"),
])
def test_bad_schema_names_are_refused(db, schema, message):
    with pytest.raises(CommandError, match=message):
        call_command("lowcode", "tenant", "create", schema, "--domain", "x.localhost")


def test_domain_in_use_is_refused(db):
    with pytest.raises(CommandError, match="already in use"):
        call_command("lowcode", "tenant", "create", "acme2", "--domain", "acme.localhost")
    assert not schema_exists("acme2")


def test_cache_keys_are_prefixed_by_schema(acme, globex):
    name = f"greeting-{uuid.uuid4().hex}"  # The test Redis outlives test runs.
    with tenant_context(acme):
        cache.set(name, "hello acme")
    with tenant_context(globex):
        assert cache.get(name) is None
        cache.set(name, "hello globex")
    with tenant_context(acme):
        assert cache.get(name) == "hello acme"
        key = cache.make_key(name)
    assert key.startswith("acme:")
    assert cache._cache.get_client().get(key) is not None


def test_platform_admin_suspends_tenants(db, make_user):
    public = Tenant.objects.get(schema_name="public")
    with tenant_context(public):
        root = get_user_model().objects.create_superuser("root", "root@example.com", "correct-horse-battery")
    client = Client(HTTP_HOST="localhost")
    client.force_login(root)
    acme = Tenant.objects.get(schema_name="acme")
    listing = client.get("/admin/tenancy/tenant/")
    assert listing.status_code == 200 and "acme.localhost" in listing.content.decode()
    response = client.post("/admin/tenancy/tenant/", {"action": "suspend", "_selected_action": [acme.pk]})
    assert response.status_code == 302
    acme.refresh_from_db()
    assert acme.is_suspended
    # Platform-only tables (beat schedules) show on the platform site, not in a tenant's admin.
    assert client.get("/admin/django_celery_beat/periodictask/").status_code == 200


def test_tenant_admin_does_not_show_platform_models(acme, make_user, acme_client):
    make_user(acme, "chief", is_staff=True, is_superuser=True)
    acme_client.post("/admin/login/?next=/admin/", {"username": "chief", "password": "correct-horse-battery"})
    index = acme_client.get("/admin/")
    assert index.status_code == 200
    body = index.content.decode()
    assert "Users" in body and "Periodic tasks" not in body and "Tenants" not in body
    assert acme_client.get("/admin/django_celery_beat/periodictask/").status_code == 404


def test_platform_admin_offers_no_delete_or_suspend_of_the_public_tenant_and_deletes_others_through_the_service(
        db, tmp_path, monkeypatch):
    public = Tenant.objects.get(schema_name="public")
    with tenant_context(public):
        root = get_user_model().objects.create_superuser("root", "root@example.com", "correct-horse-battery")
    client = Client(HTTP_HOST="localhost")
    client.force_login(root)
    page = client.get(f"/admin/tenancy/tenant/{public.pk}/change/").content.decode()
    assert f"/admin/tenancy/tenant/{public.pk}/delete/" not in page
    assert 'name="status"' not in page  # Shown, not editable.
    assert client.get(f"/admin/tenancy/tenant/{public.pk}/delete/").status_code == 403
    assert "delete_selected" not in client.get("/admin/tenancy/tenant/").content.decode()
    response = client.post("/admin/tenancy/tenant/", {"action": "suspend", "_selected_action": [public.pk]},
                           follow=True)
    assert "cannot be suspended" in response.content.decode()
    public.refresh_from_db()
    assert public.status == Tenant.Status.ACTIVE

    monkeypatch.setattr(services, "DEFAULT_EXPORT_DIR", tmp_path)
    initech = services.create_tenant(schema_name="initech", name="Initech", domain="initech.localhost")
    response = client.post(f"/admin/tenancy/tenant/{initech.pk}/delete/", {"post": "yes"}, follow=True)
    assert "exported to" in response.content.decode()
    assert not schema_exists("initech") and len(list(tmp_path.glob("initech-*.json.gz"))) == 1
