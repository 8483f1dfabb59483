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

from dynamic_models import runtime, schema, services
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


# --- Re-added fields ---------------------------------------------------------------------


def post(client, url, data=None):
    return client.post(API + url, json.dumps(data if data is not None else {}), content_type="application/json")


@pytest.fixture
def designer_api(tenant, make_user, acme_client):
    """acme's `project` published with a title on one row; a designer's client."""
    user = make_user(tenant, "dana", is_staff=True, is_superuser=True)
    with tenant_context(tenant):
        acme_client.force_login(user)
    connection.set_tenant(tenant)
    services.publish(design("project", [{"key": "name", "type": "text"},
                                        {"key": "title", "type": "text", "options": {"max_length": 20}}]))
    runtime.get_model("project").objects.create(name="Apollo", title="Moon")
    return acme_client


def use(tenant):
    """Point the test's connection at `tenant` with its current metadata token, as a request does."""
    tenant.refresh_from_db()
    connection.set_tenant(tenant)


def kept_value(column: str):
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT "{column}" FROM dm_project')
        return cursor.fetchone()[0]


def test_field_removed_and_added_back_with_another_type_in_one_publish(designer_api, acme):
    assert designer_api.delete(f"{API}/entities/project/fields/title/").status_code == 204
    assert post(designer_api, "/entities/project/fields/", {"key": "title", "type": "integer"}).status_code == 201
    plan = post(designer_api, "/entities/project/preview/").json()
    kept = plan["operations"][0]["kept_as"]
    assert [operation["op"] for operation in plan["operations"]] == ["remove_field", "add_field"]
    # The old column is renamed away before the new one takes its name.
    assert plan["sql"] == [f'ALTER TABLE "dm_project" RENAME COLUMN "title" TO "{kept}"',
                           'ALTER TABLE "dm_project" ADD COLUMN "title" bigint NULL']
    published = post(designer_api, "/entities/project/publish/", {"expected_version": 1})
    assert published.status_code == 201, published.json()
    assert published.json()["forward_sql"].index(f'TO "{kept}"') < published.json()["forward_sql"].index("ADD COLUMN")
    use(acme)
    record = runtime.get_model("project").objects.get()
    assert record.title is None and kept_value(kept) == "Moon"  # Kept until a purge.
    runtime.get_model("project").objects.create(name="Gemini", title=12)


def test_field_removed_and_added_back_with_the_same_type_in_one_publish_keeps_its_data(designer_api, acme):
    designer_api.delete(f"{API}/entities/project/fields/title/")
    post(designer_api, "/entities/project/fields/", {"key": "title", "type": "text", "options": {"max_length": 60}})
    plan = post(designer_api, "/entities/project/preview/").json()
    assert [operation["op"] for operation in plan["operations"]] == ["alter_field"]
    assert plan["operations"][0]["field"] == "title" and plan["operations"][0]["replaces"]
    assert plan["sql"] == ['ALTER TABLE "dm_project" ALTER COLUMN "title" TYPE varchar(60)']
    assert post(designer_api, "/entities/project/publish/").status_code == 201
    use(acme)
    assert runtime.get_model("project").objects.get().title == "Moon"
    assert schema.removed_columns("project") == []


def test_field_added_back_in_a_later_publish_gets_its_kept_column_back(designer_api, acme):
    designer_api.delete(f"{API}/entities/project/fields/title/")
    assert post(designer_api, "/entities/project/publish/").status_code == 201
    [kept] = schema.removed_columns("project")
    post(designer_api, "/entities/project/fields/", {"key": "title", "type": "text", "options": {"max_length": 60}})
    plan = post(designer_api, "/entities/project/preview/").json()
    assert plan["operations"] == [{"op": "restore_field", "field": "title", "from": kept}]
    # Restored as it was kept (varchar(20)), then widened to the new definition.
    assert plan["sql"] == [f'ALTER TABLE "dm_project" RENAME COLUMN "{kept}" TO "title"',
                           'ALTER TABLE "dm_project" ALTER COLUMN "title" TYPE varchar(60)']
    assert post(designer_api, "/entities/project/publish/").status_code == 201
    use(acme)
    assert runtime.get_model("project").objects.get().title == "Moon"
    runtime.get_model("project").objects.create(name="Gemini", title="x" * 60)
    assert schema.removed_columns("project") == []


def test_field_added_back_as_required_over_rows_without_a_value_is_refused(designer_api, acme):
    designer_api.delete(f"{API}/entities/project/fields/title/")
    post(designer_api, "/entities/project/publish/")
    use(acme)
    runtime.get_model("project").objects.create(name="Gemini")  # No title: its kept column is empty here.
    post(designer_api, "/entities/project/fields/", {"key": "title", "type": "text", "required": True,
                                                     "options": {"max_length": 20}})
    impact = post(designer_api, "/entities/project/preview/").json()["impact"]
    assert [(item["field"], item["code"], item["count"]) for item in impact] == [("title", "null", 1)]
    refused = post(designer_api, "/entities/project/publish/")
    assert refused.status_code == 400 and refused.json()["title"][0]["code"] == "null"
    assert len(schema.removed_columns("project")) == 1


def test_swapped_field_keys_keep_each_column(designer_api, acme):
    body = services.entity_body(services.Entity.objects.get(key="project"))
    name, title = body["fields"]
    body["fields"] = [{**name, "key": "title"}, {**title, "key": "name"}]
    migration = services.publish_body(body)
    assert [operation["op"] for operation in migration.operations] == [
        "park_field", "park_field", "alter_field", "alter_field"]
    use(acme)
    record = runtime.get_model("project").objects.get()
    assert (record.name, record.title) == ("Moon", "Apollo")


# --- Reserved keys -----------------------------------------------------------------------


def test_reserved_field_keys_are_found_by_introspection(scenario):
    from django.db import models

    from dynamic_models.api import parameters
    from dynamic_models.api.records import RecordViewSet
    from dynamic_models.keys import query_parameters, record_attributes
    from dynamic_models.runtime import DynamicRecord

    assert set(dir(models.Model)) <= record_attributes()
    assert set(dir(DynamicRecord)) <= record_attributes()
    # A loaded record of a real entity: every attribute its fields do not bring is reserved
    # (managers, the entity's body and formulas, what loading sets).
    expense_model = runtime.get_model("expense")
    expense_model.objects.create(title="Taxi", amount=1, spent_on="2026-01-05")
    record = expense_model.objects.get()
    field_keys = [spec["key"] for spec in expense_model.lowcode_entity["fields"]]
    own = {name for name in dir(record) if not any(key in name for key in field_keys)}
    assert own <= record_attributes()
    assert {"objects", "all_objects", "lowcode_entity", "lowcode_formulas", "loaded_values"} <= own
    # The records API reads its non-filter parameters from the same place (plus `count`, unless
    # an entity has a field of that name).
    assert query_parameters() == parameters.RESERVED
    assert isinstance(RecordViewSet.query_options, property)
    assert {"format", "page", "cursor", "fields", "search", "ordering", "expand"} <= query_parameters()


FOUND_KEYS = ["serializable_value", "from_db", "save_base", "clean_fields", "validate_unique", "lowcode_entity",
              "objects", "loaded_values", "format", "page", "cursor", "fields", "search", "ordering", "expand"]


@pytest.mark.parametrize("key", FOUND_KEYS)
def test_a_reserved_field_key_is_refused_with_its_path_and_rule_and_the_entity_keeps_working(designer_api, key):
    from dynamic_models.keys import query_parameters

    rule = "reserved_parameter" if key in query_parameters() else "reserved"
    added = post(designer_api, "/entities/project/fields/", {"key": key, "type": "text"})
    assert added.status_code == 400 and added.json()["key"][0]["code"] == rule, added.json()
    assert repr(key) in added.json()["key"][0]["message"]
    # A design row written some other way (admin inline) is refused at publish.
    entity = services.Entity.objects.get(key="project")
    Field.objects.create(entity=entity, key=key, type="text", position=9)
    refused = post(designer_api, "/entities/project/publish/")
    assert refused.status_code == 400 and refused.json()["fields/2/key"][0]["code"] == rule, refused.json()
    assert Definition.objects.get(kind="entity", key="project", status="published").version == 1
    listed = designer_api.get("/api/v1/data/project/")
    assert listed.status_code == 200 and listed.json()["results"][0]["title"] == "Moon"


@pytest.mark.parametrize("taken, spec", [
    ("project_id", {"key": "project", "type": "relation", "options": {"target": "project"}}),
    ("owner_id", {"key": "owner", "type": "user"}),
])
def test_a_field_key_that_is_another_fields_column_is_refused(designer_api, taken, spec):
    body = {"key": "task", "fields": [spec, {"key": taken, "type": "text"}]}
    created = post(designer_api, "/entities/", body)
    assert created.status_code == 400 and created.json()["fields/1/key"][0]["code"] == "duplicate", created.json()
    assert spec["key"] in created.json()["fields/1/key"][0]["message"]


def test_narrower_decimal_over_values_that_do_not_fit_is_refused_not_500(designer_api, acme):
    post(designer_api, "/entities/project/fields/", {"key": "budget", "type": "decimal",
                                                     "options": {"max_digits": 12, "decimal_places": 2}})
    post(designer_api, "/entities/project/publish/")
    use(acme)
    runtime.get_model("project").objects.update(budget="1234.50")
    designer_api.patch(f"{API}/entities/project/fields/budget/", json.dumps(
        {"options": {"max_digits": 5, "decimal_places": 2}}), content_type="application/json")
    impact = post(designer_api, "/entities/project/preview/").json()["impact"]
    assert [(item["field"], item["code"], item["count"]) for item in impact] == [("budget", "max_digits", 1)]
    refused = post(designer_api, "/entities/project/publish/")
    assert refused.status_code == 400 and refused.json()["budget"][0]["code"] == "max_digits"


def test_only_designers_publish_roll_back_or_save_drafts_whoever_calls_the_service(tenant, make_user):
    """The service checks its author, so no caller (admin, API, a command, an app to come) can
    skip it; None is the system (seed data, operators' commands)."""
    from django.core.exceptions import PermissionDenied

    from metadata import services as metadata
    from rbac import services as rbac
    from rbac.models import Role

    entity = design("gadget", [{"key": "name", "type": "text"}])
    services.publish(entity)
    clerk = make_user(tenant, "clerk", is_staff=True)
    connection.set_tenant(tenant)
    entity.label = "Gadget"
    entity.save()
    with pytest.raises(PermissionDenied):
        services.publish(entity, author=clerk)
    with pytest.raises(PermissionDenied):
        services.rollback("gadget", author=clerk)
    with pytest.raises(PermissionDenied):
        metadata.save_draft("entity", "gadget", services.entity_body(entity), author=clerk)
    assert Definition.objects.filter(key="gadget").count() == 1
    rbac.assign_role(clerk, Role.objects.get(key=Role.BUILDER))
    assert services.publish(entity, author=clerk).to_version == 2
