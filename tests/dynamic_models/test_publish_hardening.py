"""Publishes never answer 500 (issue 9, findings 8 and 9): races, re-added fields, reserved keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django_tenants.utils import tenant_context

from dynamic_models import runtime, services
from dynamic_models.models import Field, SchemaMigration
from metadata.models import Definition

from .conftest import design

API = "/api/v1/meta"


# --- Races --------------------------------------------------------------------------------


@contextmanager
def definitions_held(schema_name: str = "acme"):
    """Hold the tenant's definition table from another session, so that publishes started
    meanwhile all reach it and then go on together when it is let go (a real race, every run).

    Yields a function counting the sessions waiting for the table.
    """
    db = connection.settings_dict
    with psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"] or None,
                         dbname=db["NAME"]) as gate:
        gate.execute(f'LOCK TABLE "{schema_name}".metadata_definition IN EXCLUSIVE MODE')

        def waiting() -> int:
            return gate.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass",
                                [f"{schema_name}.metadata_definition"]).fetchone()[0]

        yield waiting
    # Leaving the block commits the gate's transaction: the table is free.


def wait_for(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the publishes did not all start"
        time.sleep(0.05)


def versions(key: str) -> list[tuple[int, str]]:
    return list(Definition.objects.filter(kind="entity", key=key).order_by("version")
                .values_list("version", "status"))


def assert_consecutive(key: str, count: int) -> None:
    """Versions 1..count, the last one published and no draft left; one migration each."""
    assert versions(key) == [(n, "archived") for n in range(1, count)] + [(count, "published")]
    assert sorted(SchemaMigration.objects.filter(entity_key=key).values_list("to_version", flat=True)) == \
        list(range(1, count + 1))


@pytest.fixture
def committed_project(committed_acme, make_user):
    """acme with `project` published (version 1) and changed in its design, committed; a designer."""
    user = make_user(committed_acme, "dana", is_staff=True, is_superuser=True)
    with tenant_context(committed_acme):
        entity = design("project", [{"key": "name", "type": "text"}])
        services.publish(entity)
        Field.objects.create(entity=entity, key="budget", type="decimal", position=1)
    return user


def designer_clients(tenant, user, count: int) -> list[Client]:
    """Clients logged in as `user`, each for one thread; a 500 is answered, not raised."""
    clients = [Client(HTTP_HOST="acme.localhost", raise_request_exception=False) for _index in range(count)]
    with tenant_context(tenant):
        for client in clients:
            client.force_login(user)
    return clients


def publish_at_once(clients: list[Client], data: dict, waiting) -> list[tuple[int, dict]]:
    """POST the publish from one thread per client (each its own connection), all started together."""
    results: list = [None] * len(clients)

    def publish(index: int, client: Client) -> None:
        try:
            response = client.post(f"{API}/entities/project/publish/", json.dumps(data),
                                   content_type="application/json")
            results[index] = (response.status_code, response.json())
        finally:
            connection.close()

    threads = [threading.Thread(target=publish, args=item) for item in enumerate(clients)]
    for thread in threads:
        thread.start()
    # Every publish either answered already or waits for the definitions.
    wait_for(lambda: sum(result is not None for result in results) + waiting() == len(clients))
    return results, threads


@pytest.mark.parametrize("data", [{}, {"expected_version": 1}], ids=["latest", "expected_version"])
def test_concurrent_http_publishes_get_409_never_500(committed_acme, committed_project, data):
    clients = designer_clients(committed_acme, committed_project, 8)
    with definitions_held() as waiting:
        results, threads = publish_at_once(clients, data, waiting)
    for thread in threads:
        thread.join(timeout=120)
    statuses = sorted(status for status, _body in results)
    assert statuses == [201] + [409] * 7, results
    for status, body in results:
        if status == 409:
            assert body["code"] == "conflict" and "Another publish is running" in body["detail"]
    committed_acme.refresh_from_db()  # Its metadata token, as the next request loads it.
    with tenant_context(committed_acme):
        assert_consecutive("project", 2)
        assert "budget" in {f.name for f in runtime.get_model("project")._meta.fields}


def test_concurrent_publishes_in_threads_without_help_stay_consecutive(committed_acme, committed_project):
    """No gate: whatever interleaving happens, each publish is 201 or 409 and versions follow."""
    clients = designer_clients(committed_acme, committed_project, 6)
    results: list = [None] * len(clients)
    barrier = threading.Barrier(len(clients))

    def publish(index: int, client: Client) -> None:
        try:
            barrier.wait(timeout=60)
            response = client.post(f"{API}/entities/project/publish/", "{}", content_type="application/json")
            results[index] = response.status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=publish, args=item) for item in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert set(results) <= {201, 409} and 201 in results, results
    with tenant_context(committed_acme):
        assert_consecutive("project", 1 + results.count(201))


def test_concurrent_cli_publishes_exit_1_with_a_message_not_a_traceback(committed_acme, committed_project,
                                                                          test_database_url):
    command = [sys.executable, "manage.py", "lowcode", "entity", "publish", "project", "--tenant", "acme"]
    environment = {**os.environ, "DATABASE_URL": test_database_url, "LOG_LEVEL": "WARNING"}
    with definitions_held() as waiting:
        processes = [subprocess.Popen(command, cwd=settings.BASE_DIR, env=environment, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _index in range(2)]
        wait_for(lambda: sum(process.poll() is not None for process in processes) + waiting() == 2)
    outputs = [(process.wait(timeout=120), *process.communicate()) for process in processes]
    assert sorted(code for code, _out, _err in outputs) == [0, 1], outputs
    (_code, _out, error), = [output for output in outputs if output[0] == 1]
    assert "Another publish is running" in error and "Traceback" not in error
    with tenant_context(committed_acme):
        assert_consecutive("project", 2)
