"""What every request pays outside its view: the tenant of its host name read from the process's
cache (checked against a shared token), `SET search_path` only when the session's differs."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from lowcode.tenancy import services
from lowcode.tenancy.models import Domain, Tenant
from tests.second_process import SecondProcess

# A second web process: looks each host name up as the tenant middleware does and prints the
# tenant's status and entity token (or "missing") with the number of SQL statements it took.
SECOND_PROCESS = """
import sys
import django
django.setup()
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context
from lowcode.tenancy import domains
from lowcode.tenancy.models import Domain
for line in sys.stdin:
    with CaptureQueriesContext(connection) as queries:
        try:
            tenant = domains.tenant_for_host(line.strip())
            answer = f"{tenant.status} {tenant.definition_versions.get('entity', '-')}"
        except Domain.DoesNotExist:
            answer = "missing -"
    print(answer, len(queries), flush=True)
"""


def test_another_process_sees_suspension_deletion_and_new_tokens_on_its_next_request(committed_acme,
                                                                                      test_database_url):
    worker = SecondProcess(SECOND_PROCESS, test_database_url)

    def ask(hostname):
        status, token, queries = worker.ask(hostname)
        return status, token, int(queries)

    with worker:
        token = committed_acme.definition_versions.get("entity", "-")
        assert ask("acme.localhost")[:2] == ("active", token)
        assert ask("acme.localhost") == ("active", token, 0)  # Cached: no SQL.
        services.suspend_tenant(committed_acme)
        assert ask("acme.localhost")[0] == "suspended"
        services.resume_tenant(committed_acme)
        assert ask("acme.localhost")[0] == "active"
        # A publish writes its token with an UPDATE (metadata.services), not a save.
        Tenant.objects.filter(pk=committed_acme.pk).update(definition_versions={"entity": "new-token"})
        assert ask("acme.localhost")[:2] == ("active", "new-token")
        Domain.objects.create(domain="second.localhost", tenant=committed_acme)
        assert ask("second.localhost")[0] == "active"
        assert ask("second.localhost")[2] == 0
        Domain.objects.filter(domain="second.localhost").delete()
        assert ask("second.localhost")[0] == "missing"
        assert ask("acme.localhost")[:2] == ("active", "new-token")


# A second web process authenticating API keys in acme: prints "ok" or the refusal's code, with the
# number of SQL statements it took.
KEY_PROCESS = """
import sys
import django
django.setup()
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context
from django_tenants.utils import schema_context
from lowcode.apikeys import services
for line in sys.stdin:
    with schema_context("acme"), CaptureQueriesContext(connection) as queries:
        try:
            answer = "ok " + services.authenticate(line.strip()).user.username
        except services.ApiKeyError as error:
            answer = error.code + " -"
    print(answer, len(queries), flush=True)
"""


def test_another_process_refuses_a_revoked_key_or_inactive_user_on_its_next_request(committed_acme, make_user,
                                                                                     test_database_url):
    from lowcode.apikeys import services as apikeys

    user = make_user(committed_acme, "robot")
    with schema_context("acme"):
        key, full_key = apikeys.create_key(user, name="ci", scopes=["*:read"])
        _other, other_key = apikeys.create_key(user, name="etl", scopes=["*:read"])
    worker = SecondProcess(KEY_PROCESS, test_database_url)

    def ask(text):
        answer, name, queries = worker.ask(text)
        return answer, name, int(queries)

    with worker:
        assert ask(full_key)[:2] == ("ok", "robot")
        assert ask(full_key) == ("ok", "robot", 0)  # Cached: no SQL.
        assert ask(full_key + "x")[0] == "unknown_api_key"
        with schema_context("acme"):
            apikeys.revoke(key)
        assert ask(full_key)[0] == "revoked_api_key"
        assert ask(other_key)[:2] == ("ok", "robot")
        with schema_context("acme"):
            user.is_active = False
            user.save()
        assert ask(other_key)[0] == "inactive_user"


def test_a_change_in_a_transaction_shows_to_its_own_requests_and_not_after_its_rollback(committed_acme,
                                                                                        acme_client):
    assert acme_client.get("/api/v1/me/").status_code != 403
    with transaction.atomic():
        services.suspend_tenant(committed_acme)
        assert acme_client.get("/api/v1/me/").status_code == 403
        transaction.set_rollback(True)
    assert acme_client.get("/api/v1/me/").status_code != 403


def _search_path():
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schemas(false)")
        return cursor.fetchone()[0]


def test_a_savepoint_rolled_back_after_switching_tenants_leaves_the_next_query_in_the_right_schema(acme, globex):
    connection.set_tenant(acme)
    assert _search_path() == ["acme", "public"]
    with pytest.raises(RuntimeError), transaction.atomic():
        connection.set_tenant(globex)
        assert _search_path() == ["globex", "public"]
        raise RuntimeError("PostgreSQL undoes the SET with the savepoint.")
    assert _search_path() == ["globex", "public"]
    connection.set_tenant(acme)
    assert _search_path() == ["acme", "public"]


def test_switching_back_to_the_sessions_tenant_sends_no_set(acme, globex):
    connection.set_tenant(acme)
    _search_path()
    with CaptureQueriesContext(connection) as queries:
        connection.set_schema_to_public()
        connection.set_tenant(acme)
        assert _search_path() == ["acme", "public"]
        connection.set_tenant(globex)
        assert _search_path() == ["globex", "public"]
    assert [query["sql"] for query in queries if query["sql"].startswith("SET")] == [
        'SET search_path = "globex","public"']


def test_the_cache_keeps_one_redis_client_for_every_call():
    from django.core.cache import cache

    client = cache._cache.get_client(write=True)
    assert cache._cache.get_client("any key") is client
    cache.set("reused-client", 1)
    assert cache.get("reused-client") == 1 and client.exists(cache.make_and_validate_key("reused-client"))
