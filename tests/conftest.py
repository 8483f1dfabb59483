"""Fixtures on real parts: PostgreSQL tenant schemas, a Celery worker, headless Chromium (PF-4).

The test database gets the public tenant and two tenants, `acme` and `globex`, once per
session. Ordinary tests run inside a transaction that is rolled back; `tenant` switches the
connection to acme's schema inside it. Live-server (browser) tests commit, so `live_acme`
restores the tenant rows their final flush removes and cleans acme's tables afterwards.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import translation
from django_tenants.utils import schema_exists, tenant_context

from lowcode.tenancy import services as tenancy
from lowcode.tenancy.models import Domain, Tenant

DEMO = [
    {"schema_name": "acme", "name": "Acme", "domain": "acme.localhost"},
    {"schema_name": "globex", "name": "Globex", "domain": "globex.localhost"},
]
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
                "--disable-dev-shm-usage"]


def pytest_configure(config):
    # Hashing with the production hasher costs ~0.3 s a password; tests need no security here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _ensure_tenants() -> None:
    tenancy.ensure_public_tenant()
    for spec in DEMO:
        if not schema_exists(spec["schema_name"]):
            tenancy.create_tenant(**spec)
            continue
        # After a live test's flush the schema is there but its public rows are gone.
        tenant, _created = Tenant.objects.get_or_create(schema_name=spec["schema_name"],
                                                        defaults={"name": spec["name"]})
        Domain.objects.get_or_create(domain=spec["domain"], defaults={"tenant": tenant, "is_primary": True})


@pytest.fixture(autouse=True)
def _reset_request_state():
    """Requests leave the connection on their tenant's schema and their language active."""
    yield
    connection.set_schema_to_public()
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _fresh_request_rates():
    """Forget the API's request counts after each test: they are keyed by schema and user or key id,
    and ids start again at 1 after a committing test's flush, so one test's requests would count
    against the next one's budget."""
    yield
    from django.core.cache import cache

    client = cache._cache.get_client(write=True)
    counters = list(client.scan_iter("throttle_*"))
    if counters:
        client.delete(*counters)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        _ensure_tenants()


def _demo_tenant(schema_name: str) -> Tenant:
    tenant = Tenant.objects.filter(schema_name=schema_name).first()
    if tenant is None:  # A committing test's flush emptied the public tables (a test process runs both kinds).
        _ensure_tenants()
        tenant = Tenant.objects.get(schema_name=schema_name)
    return tenant


@pytest.fixture
def acme(db) -> Tenant:
    return _demo_tenant("acme")


@pytest.fixture
def globex(db) -> Tenant:
    return _demo_tenant("globex")


@pytest.fixture
def tenant(acme):
    """Run the test inside acme's schema (and its rolled-back transaction)."""
    connection.set_tenant(acme)
    yield acme
    connection.set_schema_to_public()


@pytest.fixture
def people(acme) -> dict:
    """The scenario's people in acme by user name, with its entities and demo records (seed_demo)."""
    from dynamic_models.seed import seed_demo

    seed_demo()
    connection.set_tenant(acme)
    from django.contrib.auth import get_user_model
    return {user.username: user for user in get_user_model().objects.all()}


@pytest.fixture
def bea(people) -> Client:
    """A client logged in as bea, who designs (staff with designer access)."""
    from tests.designers import client_of

    return client_of(people["bea"])


@pytest.fixture
def alice(people) -> Client:
    """A client logged in as alice, who does not design."""
    from tests.designers import client_of

    return client_of(people["alice"])


@pytest.fixture
def acme_client() -> Client:
    return Client(HTTP_HOST="acme.localhost")


@pytest.fixture
def globex_client() -> Client:
    return Client(HTTP_HOST="globex.localhost")


@pytest.fixture
def make_user():
    """Create a user in a tenant's schema: make_user(tenant, "alice", password=..., is_staff=...)."""
    from django.contrib.auth import get_user_model

    def make(tenant: Tenant, username: str, password: str = "correct-horse-battery", **fields):
        with tenant_context(tenant):
            return get_user_model().objects.create_user(
                username=username, password=password, email=f"{username}@example.com", **fields)

    return make


def _clean_acme() -> None:
    """Remove what a committing test left in acme: entity tables, sequences, static rows."""
    with tenant_context(Tenant.objects.get(schema_name="acme")):
        # Entity tables were committed by the test; flush only empties static tables.
        with connection.cursor() as cursor:
            cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'acme' AND tablename LIKE 'dm\\_%'")
            for (table,) in cursor.fetchall():
                cursor.execute(f'DROP TABLE IF EXISTS acme."{table}" CASCADE')
            cursor.execute("SELECT sequencename FROM pg_sequences WHERE schemaname = 'acme' "
                           "AND sequencename LIKE 'dm\\_%'")
            for (sequence,) in cursor.fetchall():
                cursor.execute(f'DROP SEQUENCE IF EXISTS acme."{sequence}"')
        call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def committed_acme(transactional_db) -> Tenant:
    """acme for a test whose changes commit (other processes see them); cleaned afterwards."""
    _ensure_tenants()  # A previous committing test's flush truncated the public tables.
    yield Tenant.objects.get(schema_name="acme")
    _clean_acme()


@pytest.fixture
def live_acme(live_server, committed_acme):
    """The live server's URL for acme; committed data in acme is removed afterwards."""
    return f"http://acme.localhost:{live_server.thread.port}"


@pytest.fixture
def output_dir(request) -> Path:
    """A folder for this test's artefacts (screenshots): test-results/<test name>/."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.nodeid.split("::", 1)[-1]).strip("-")
    path = Path(settings.BASE_DIR) / "test-results" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope="session")
def test_database_url(django_db_setup) -> str:
    """DATABASE_URL of the test database, for other processes (workers, a second web process)."""
    db = connection.settings_dict
    credentials = quote(db["USER"]) + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture(scope="session")
def celery_worker(test_database_url):
    """A real Celery worker process on the test database and the test Redis database."""
    from lowcode.celery import app

    database_url = test_database_url
    name = f"test-{uuid.uuid4().hex[:8]}@localhost"
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "lowcode", "worker", "--pool", "solo", "-l", "WARNING",
         "--without-mingle", "--without-gossip", "-n", name],
        env={**os.environ, "DATABASE_URL": database_url}, cwd=settings.BASE_DIR,
    )
    deadline = time.monotonic() + 60
    while not any(name in reply for reply in app.control.ping(timeout=0.5) or []):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"Celery worker did not start (exit code {process.poll()})")
    yield process
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture
def jobs_wait_in_the_queue():
    """Tasks queued during the test stay in the broker: a Celery worker this process started for an
    earlier test (`celery_worker` lives for the session) stops taking them, so the test can play the
    worker itself at the moment it chooses. The worker takes them again afterwards."""
    from lowcode.celery import app

    queue = app.conf.task_default_queue
    app.control.cancel_consumer(queue, reply=True, timeout=5)
    yield
    app.control.add_consumer(queue, reply=True, timeout=5)


@pytest.fixture
def test_audit_actions():
    """Declare the `test.*` audit actions that tests of the trail itself record (audit/actions.py)."""
    from audit.actions import AuditAction, audit_action_registry

    declared = audit_action_registry.register(AuditAction("test.*", "Test event (%(name)s)"))
    yield declared
    audit_action_registry.unregister(declared.type)
