"""Per-tenant API keys (AU-2): service, CLI, authentication, scopes, throttling, admin."""

import hashlib
import html
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import include, path
from django.utils import timezone
from django_tenants.utils import tenant_context
from drf_spectacular.generators import SchemaGenerator
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from lowcode.apikeys import services
from lowcode.apikeys.models import ApiKey
from lowcode.apikeys.permissions import ApiKeyScope
from lowcode.apikeys.throttling import ApiKeyRateThrottle, TenantUserRateThrottle

PASSWORD = "correct-horse-battery"


@pytest.fixture(autouse=True)
def _clear_cache():
    """Throttle counters live in the real Redis, outside the rolled-back transaction."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def alice(tenant, make_user):
    return make_user(tenant, "alice")


def auth(full_key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Api-Key {full_key}"}


# Service


def test_create_key_returns_the_full_key_once_and_stores_only_a_hash(alice):
    key, full_key = services.create_key(alice, name="ci", scopes=["expense:read", "expense:read", "*:write"])

    prefix, secret = full_key.split(".", 1)
    assert key.prefix == prefix and len(prefix) == 8 and len(secret) >= 43
    assert key.scopes == ["expense:read", "*:write"]
    assert key.hashed_key == hashlib.sha256(secret.encode()).hexdigest()
    row = ApiKey.objects.filter(pk=key.pk).values().get()
    assert not any(secret in str(value) for value in row.values())
    assert services.authenticate(full_key) == key


@pytest.mark.parametrize("scopes, bad", [
    (["expense:delete"], "expense:delete"),
    (["Expense:read"], "Expense:read"),
    (["expense"], "expense"),
    (["*:read", "exp-ense:read"], "exp-ense:read"),
    (["metadata:*"], "metadata:*"),
    ([":read"], ":read"),
])
def test_scope_grammar_errors_name_the_bad_scope(alice, scopes, bad):
    with pytest.raises(ValidationError) as error:
        services.create_key(alice, name="bad", scopes=scopes)
    assert repr(bad) in error.value.messages[0]
    assert not ApiKey.objects.exists()


def test_scopes_must_be_a_non_empty_list(alice):
    with pytest.raises(ValidationError, match="at least one scope"):
        services.create_key(alice, name="none", scopes=[])
    with pytest.raises(ValidationError, match="list of strings"):
        services.create_key(alice, name="text", scopes="expense:read")
    with pytest.raises(ValidationError, match="in the future"):
        services.create_key(alice, name="old", scopes=["*:read"], expires_at=timezone.now() - timedelta(days=1))


@pytest.mark.parametrize("scopes, resource, write, allowed", [
    (["expense:read"], "expense", False, True),
    (["expense:read"], "expense", True, False),
    (["expense:write"], "expense", False, True),  # write implies read
    (["expense:write"], "project", False, False),
    (["*:read"], "project", False, True),
    (["*:read"], "project", True, False),
    (["*:write"], "project", True, True),
    (["*:write"], "metadata", False, False),  # * covers entities only
    (["metadata:read"], "metadata", False, True),
    (["metadata:read"], "metadata", True, False),
    (["metadata:write"], "metadata", True, True),
])
def test_key_allows(scopes, resource, write, allowed):
    assert services.key_allows(ApiKey(scopes=scopes), resource, write=write) is allowed


def test_authenticate_says_why_a_key_is_refused(alice):
    key, full_key = services.create_key(alice, name="ci", scopes=["*:read"])
    with pytest.raises(services.MalformedKey):
        services.authenticate("no-dot-here")
    with pytest.raises(services.UnknownKey):
        services.authenticate(full_key + "x")
    with pytest.raises(services.UnknownKey):
        services.authenticate("00000000." + full_key.split(".", 1)[1])

    alice.is_active = False
    alice.save()
    with pytest.raises(services.InactiveUser):
        services.authenticate(full_key)
    alice.is_active = True
    alice.save()

    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(services.ExpiredKey):
        services.authenticate(full_key)

    services.revoke(key)
    with pytest.raises(services.RevokedKey):
        services.authenticate(full_key)


def test_touch_writes_at_most_once_a_minute(alice, django_assert_num_queries):
    key, _full_key = services.create_key(alice, name="ci", scopes=["*:read"])
    services.touch(key)
    first = ApiKey.objects.get(pk=key.pk).last_used_at
    assert first is not None

    with django_assert_num_queries(0):
        services.touch(key)
    assert ApiKey.objects.get(pk=key.pk).last_used_at == first

    key.last_used_at = first - timedelta(minutes=2)
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=key.last_used_at)
    services.touch(key)
    assert ApiKey.objects.get(pk=key.pk).last_used_at > first


def test_revoke_keeps_the_first_date(alice):
    key, _full_key = services.create_key(alice, name="ci", scopes=["*:read"])
    services.revoke(key)
    first = ApiKey.objects.get(pk=key.pk).revoked_at
    services.revoke(ApiKey.objects.get(pk=key.pk))
    assert ApiKey.objects.get(pk=key.pk).revoked_at == first


# CLI


def test_cli_creates_lists_and_revokes_keys(alice):
    out = StringIO()
    call_command("lowcode", "apikey", "create", "--tenant", "acme", "--user", "alice", "--scope", "expense:read",
                 "--scope", "metadata:read", "--name", "etl", "--expires-in-days", "30", stdout=out)
    full_key = re.search(r"^([0-9a-f]{8}\.\S+)$", out.getvalue(), re.MULTILINE).group(1)
    assert "it will not be shown again" in out.getvalue()
    key = services.authenticate(full_key)
    assert (key.name, key.user, key.scopes) == ("etl", alice, ["expense:read", "metadata:read"])
    assert timedelta(days=29) < key.expires_at - timezone.now() <= timedelta(days=30)

    out = StringIO()
    call_command("lowcode", "apikey", "create", "--tenant", "acme", "--user", "alice", stdout=out)
    default = ApiKey.objects.exclude(pk=key.pk).get()
    assert default.scopes == ["*:read"] and default.expires_at is None and default.name == "cli-alice"

    out = StringIO()
    call_command("lowcode", "apikey", "list", "--tenant", "acme", stdout=out)
    listing = out.getvalue()
    assert key.prefix in listing and default.prefix in listing and "etl" in listing and "Active" in listing
    assert full_key.split(".", 1)[1] not in listing

    call_command("lowcode", "apikey", "revoke", "--tenant", "acme", key.prefix, stdout=StringIO())
    with pytest.raises(services.RevokedKey):
        services.authenticate(full_key)
    out = StringIO()
    call_command("lowcode", "apikey", "list", "--tenant", "acme", stdout=out)
    assert "Revoked" in out.getvalue()


def test_cli_errors_are_clear(alice):
    with pytest.raises(CommandError, match="No user 'bob'"):
        call_command("lowcode", "apikey", "create", "--tenant", "acme", "--user", "bob")
    with pytest.raises(CommandError, match="'expense:delete'"):
        call_command("lowcode", "apikey", "create", "--tenant", "acme", "--user", "alice", "--scope", "expense:delete")
    with pytest.raises(CommandError, match="No API key with prefix 'deadbeef'"):
        call_command("lowcode", "apikey", "revoke", "--tenant", "acme", "deadbeef")
    with pytest.raises(CommandError, match="No tenant with schema 'nowhere'"):
        call_command("lowcode", "apikey", "list", "--tenant", "nowhere")
    assert not ApiKey.objects.exists()


# Authentication over HTTP


def test_me_with_an_api_key(alice, acme_client):
    expires_at = timezone.now() + timedelta(days=7)
    key, full_key = services.create_key(alice, name="ci", scopes=["expense:read"], expires_at=expires_at)

    response = acme_client.get("/api/v1/me/", **auth(full_key))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["username"] == "alice" and body["tenant"] == "acme" and body["auth"] == "api_key"
    assert body["scopes"] == ["expense:read"]
    assert body["expires_at"].startswith(expires_at.strftime("%Y-%m-%dT%H:%M"))
    key.refresh_from_db()
    assert key.last_used_at is not None


@pytest.mark.parametrize("header, message, code", [
    ("Api-Key no-dot", "Malformed API key", "malformed_api_key"),
    ("Api-Key", "Malformed API key header", "authentication_failed"),
    ("Api-Key one two", "Malformed API key header", "authentication_failed"),
    ("Api-Key 00000000.unknownsecret", "Unknown API key.", "unknown_api_key"),
])
def test_bad_keys_get_401_saying_why(tenant, acme_client, header, message, code):
    response = acme_client.get("/api/v1/me/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert message in response.json()["detail"] and response.json()["code"] == code
    assert response["WWW-Authenticate"] == "Api-Key"


def test_revoked_expired_and_inactive_keys_get_401(alice, acme_client):
    revoked, revoked_key = services.create_key(alice, name="old", scopes=["*:read"])
    services.revoke(revoked)
    expired, expired_key = services.create_key(alice, name="short", scopes=["*:read"])
    ApiKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    for full_key, message in [(revoked_key, "This API key has been revoked."),
                              (expired_key, "This API key has expired.")]:
        response = acme_client.get("/api/v1/me/", **auth(full_key))
        assert response.status_code == 401 and response.json()["detail"] == message
        assert response["WWW-Authenticate"] == "Api-Key"
    assert ApiKey.objects.filter(last_used_at__isnull=False).count() == 0

    _key, full_key = services.create_key(alice, name="ci", scopes=["*:read"])
    alice.is_active = False
    alice.save()
    response = acme_client.get("/api/v1/me/", **auth(full_key))
    assert response.status_code == 401 and "inactive" in response.json()["detail"]


def test_without_credentials_the_api_asks_for_a_key(tenant, acme_client):
    response = acme_client.get("/api/v1/me/")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Api-Key"


def test_acme_key_is_refused_on_globex(alice, globex, globex_client):
    _key, full_key = services.create_key(alice, name="ci", scopes=["*:write"])
    response = globex_client.get("/api/v1/me/", **auth(full_key))
    assert response.status_code == 401 and response.json()["detail"] == "Unknown API key."


def test_session_user_gets_me(tenant, make_user, acme_client):
    staff = make_user(tenant, "bea", is_staff=True)
    acme_client.force_login(staff)
    response = acme_client.get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json() == {"username": "bea", "tenant": "acme", "auth": "session", "scopes": None,
                               "expires_at": None}


def test_openapi_describes_me_and_the_key_scheme(db):
    generator = SchemaGenerator(patterns=[path("api/v1/", include("lowcode.apikeys.urls"))])
    schema = generator.get_schema(request=None, public=True)
    assert schema["components"]["securitySchemes"]["ApiKeyAuth"] == {
        "type": "apiKey", "in": "header", "name": "Authorization",
        "description": "An API key of this tenant, sent as `Authorization: Api-Key <prefix>.<secret>`."}
    operation = schema["paths"]["/api/v1/me/"]["get"]
    assert {"ApiKeyAuth": []} in operation["security"]
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    me = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(me["properties"]) == {"username", "tenant", "auth", "scopes", "expires_at"}
    assert me["properties"]["scopes"]["nullable"] is True


# Scopes on views


class ExpenseView(APIView):
    permission_classes = [IsAuthenticated, ApiKeyScope]
    api_resource = "expense"

    def get(self, request):
        return Response({"ok": True})

    def post(self, request):
        return Response({"ok": True}, status=201)


class MetadataView(ExpenseView):
    api_resource = None

    def get_api_resource(self):
        return "metadata"


def call(view, method: str, **extra):
    request = getattr(APIRequestFactory(), method)("/", HTTP_HOST="acme.localhost", **extra)
    return view.as_view()(request)


def test_api_key_scope_checks_read_and_write(alice):
    _key, reader = services.create_key(alice, name="reader", scopes=["expense:read"])
    _key, writer = services.create_key(alice, name="writer", scopes=["expense:write"])
    _key, everything = services.create_key(alice, name="all", scopes=["*:write"])

    assert call(ExpenseView, "get", **auth(reader)).status_code == 200
    refused = call(ExpenseView, "post", **auth(reader))
    assert refused.status_code == 403
    assert refused.data["detail"] == "This API key lacks the scope expense:write."
    assert refused.data["code"] == "missing_scope"
    assert call(ExpenseView, "get", **auth(writer)).status_code == 200
    assert call(ExpenseView, "post", **auth(writer)).status_code == 201
    assert call(ExpenseView, "post", **auth(everything)).status_code == 201

    refused = call(MetadataView, "get", **auth(everything))
    assert refused.status_code == 403 and refused.data["detail"] == "This API key lacks the scope metadata:read."


def test_session_requests_pass_api_key_scope(alice):
    request = APIRequestFactory().post("/", HTTP_HOST="acme.localhost")
    force_authenticate(request, user=alice)
    assert ExpenseView.as_view()(request).status_code == 201


def test_a_view_without_resource_refuses_to_run_with_a_key(alice):
    from django.core.exceptions import ImproperlyConfigured

    _key, full_key = services.create_key(alice, name="all", scopes=["*:write"])

    class Unnamed(ExpenseView):
        api_resource = None

    with pytest.raises(ImproperlyConfigured):
        call(Unnamed, "get", **auth(full_key))


# Throttling


def test_api_key_requests_are_throttled_per_key(alice, acme_client, monkeypatch):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "2/min"})
    _key, first = services.create_key(alice, name="one", scopes=["*:read"])
    _key, second = services.create_key(alice, name="two", scopes=["*:read"])

    assert [acme_client.get("/api/v1/me/", **auth(first)).status_code for _ in range(2)] == [200, 200]
    throttled = acme_client.get("/api/v1/me/", **auth(first))
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0
    # Another key has its own budget, and sessions are not counted against keys.
    assert acme_client.get("/api/v1/me/", **auth(second)).status_code == 200
    acme_client.force_login(alice)
    assert acme_client.get("/api/v1/me/").status_code == 200


def test_session_requests_are_throttled_per_user(tenant, make_user, acme_client, monkeypatch):
    monkeypatch.setattr(TenantUserRateThrottle, "THROTTLE_RATES", {"user": "1/min"})
    acme_client.force_login(make_user(tenant, "bea"))
    assert acme_client.get("/api/v1/me/").status_code == 200
    assert acme_client.get("/api/v1/me/").status_code == 429


def test_throttle_keys_carry_the_tenant_schema(acme, globex, make_user):
    request = APIRequestFactory().get("/")
    keys = []
    for tenant in (acme, globex):
        user = make_user(tenant, "same")
        with tenant_context(tenant):
            force_authenticate(request, user=user)
            drf_request = ExpenseView().initialize_request(request)
            user.pk = 1  # The same pk in both schemas must still count separately.
            drf_request.user = user
            keys.append(TenantUserRateThrottle().get_cache_key(drf_request, None))
            assert ApiKeyRateThrottle().get_cache_key(drf_request, None) is None
    assert keys[0] != keys[1] and "acme" in keys[0] and "globex" in keys[1]


# Admin


@pytest.fixture
def staff_client(tenant, make_user, acme_client):
    make_user(tenant, "root", is_staff=True, is_superuser=True)
    response = acme_client.post("/admin/login/?next=/admin/", {"username": "root", "password": PASSWORD})
    assert response.status_code == 302
    return acme_client


def test_admin_creates_a_key_and_shows_it_once(alice, staff_client):
    form = staff_client.get("/admin/apikeys/apikey/add/")
    assert form.status_code == 200

    response = staff_client.post("/admin/apikeys/apikey/add/", {
        "name": "integration", "user": alice.pk, "scopes": "expense:read,\nproject:write",
        "expires_at_0": "", "expires_at_1": ""}, follow=True)
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    full_key = re.search(r"The new API key integration is ([0-9a-f]{8}\.[\w-]+)\. Copy it now: it will not be "
                         r"shown again\.", page).group(1)
    key = ApiKey.objects.get()
    assert (key.name, key.user, key.scopes, key.created_by.username) == (
        "integration", alice, ["expense:read", "project:write"], "root")
    assert services.authenticate(full_key) == key

    secret = full_key.split(".", 1)[1]
    for url in ("/admin/apikeys/apikey/", f"/admin/apikeys/apikey/{key.pk}/change/"):
        again = staff_client.get(url)
        assert again.status_code == 200 and secret not in again.content.decode()
    assert "Copy it now" not in staff_client.get("/admin/apikeys/apikey/").content.decode()


def test_admin_rejects_bad_scopes_and_only_renames(alice, staff_client):
    response = staff_client.post("/admin/apikeys/apikey/add/", {
        "name": "bad", "user": alice.pk, "scopes": "expense:delete", "expires_at_0": "", "expires_at_1": ""})
    assert response.status_code == 200 and "expense:delete" in html.unescape(response.content.decode())
    assert not ApiKey.objects.exists()

    key, _full_key = services.create_key(alice, name="ci", scopes=["expense:read"])
    response = staff_client.post(f"/admin/apikeys/apikey/{key.pk}/change/",
                                 {"name": "renamed", "scopes": '["*:write"]', "user": alice.pk})
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.name == "renamed" and key.scopes == ["expense:read"]


def test_admin_action_revokes_keys(alice, staff_client, acme_client):
    key, full_key = services.create_key(alice, name="ci", scopes=["*:read"])
    response = staff_client.post("/admin/apikeys/apikey/", {"action": "revoke", "_selected_action": [key.pk]},
                                 follow=True)
    assert "1 API key revoked." in response.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is not None
    staff_client.logout()
    assert acme_client.get("/api/v1/me/", **auth(full_key)).status_code == 401
