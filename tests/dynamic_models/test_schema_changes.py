"""Schema changes that neither damage rows silently nor stall the table (issue 16 finding 3, issue 17 finding 3).

Preview reports rows holding a removed choice and rows of a relation re-targeted at another
entity, and publish refuses them unless the builder says what to do (`data_changes`). DDL waits
at most SCHEMA_LOCK_TIMEOUT_MS for its lock and fails with a conflict naming the table.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django_tenants.utils import tenant_context

from dynamic_models import runtime, schema, services
from dynamic_models.models import Field, SchemaMigration
from metadata.exceptions import DefinitionValidationError
from metadata.models import Definition

from .conftest import design, expense, project

API = "/api/v1/meta"


def _narrow_category(scenario) -> None:
    category = Field.objects.get(entity=scenario["expense"], key="category")
    category.options = {"choices": [{"value": "travel"}, {"value": "equipment"}, {"value": "other"}]}
    category.save()


def test_narrowing_a_choice_list_shows_the_rows_holding_removed_values_and_is_refused(scenario):
    meals = [expense(category="meals").pk for _ in range(3)]
    expense(category="travel")
    _narrow_category(scenario)

    plan = services.preview(scenario["expense"])
    [item] = [item for item in plan["impact"] if item["field"] == "category"]
    assert (item["code"], item["count"], sorted(item["sample_ids"]), item["blocking"]) == (
        "removed_choice", 3, meals, True)
    assert "3 rows hold meals" in item["message"] and plan["refused"]
    with pytest.raises(schema.MigrationRefused, match="no longer a choice of category"):
        services.publish(scenario["expense"])
    assert Definition.objects.get(kind="entity", key="expense", status="published").version == 1


def test_a_value_map_stores_other_values_in_rows_holding_a_removed_choice(scenario):
    meals = expense(category="meals").pk
    travel = expense(category="travel").pk
    _narrow_category(scenario)
    value_map = {"category": {"value_map": {"meals": "other"}}}

    plan = services.preview(scenario["expense"], data_changes=value_map)
    [item] = [item for item in plan["impact"] if item["field"] == "category"]
    assert (item["code"], item["count"], item["sample_ids"], item["blocking"]) == ("value_map", 1, [meals], False)
    assert not plan["refused"]
    migration = services.publish(scenario["expense"], data_changes=value_map)
    assert {"op": "change_data", "field": "category", "value_map": {"meals": "other"}} in migration.operations
    Expense = runtime.get_model("expense")
    assert dict(Expense.objects.values_list("pk", "category")) == {meals: "other", travel: "travel"}


def test_a_value_map_that_does_not_fit_the_change_is_a_validation_error_naming_it(scenario):
    _narrow_category(scenario)
    with pytest.raises(DefinitionValidationError) as error:
        services.publish(scenario["expense"], data_changes={"category": {"value_map": {
            "travel": "other", "meals": "lunch"}}, "nothing": {"clear": True}})
    assert {(e["path"], e["code"]) for e in error.value.errors} == {
        ("data_changes/category/value_map/travel", "not_removed"),
        ("data_changes/category/value_map/meals", "invalid_choice"),
        ("data_changes/nothing", "invalid")}


def test_narrowing_a_multiple_choice_list_is_refused_and_mapped_like_a_choice(tenant):
    choices = [{"value": "red"}, {"value": "green"}, {"value": "blue"}]
    entity = design("paint", [{"key": "colours", "type": "multiple_choice", "options": {"choices": choices}}])
    services.publish(entity)
    Paint = runtime.get_model("paint")
    mixed = Paint.objects.create(colours=["red", "blue"]).pk
    Paint.objects.create(colours=["green"])
    colours = Field.objects.get(entity=entity, key="colours")
    colours.options = {"choices": choices[:2]}
    colours.save()
    [item] = services.preview(entity)["impact"]
    assert (item["code"], item["count"], item["sample_ids"]) == ("removed_choice", 1, [mixed])

    services.publish(entity, data_changes={"colours": {"value_map": {"blue": None}}})
    assert sorted(Paint.objects.values_list("colours", flat=True)) == [["green"], ["red"]]


def _retarget_project_to_task(scenario) -> None:
    services.publish(design("task", [{"key": "title", "type": "text"}]))
    relation = Field.objects.get(entity=scenario["expense"], key="project")
    relation.options = {**relation.options, "target": "task"}
    relation.save()


def test_retargeting_a_relation_shows_the_rows_that_would_point_elsewhere_and_is_refused(scenario):
    linked = expense(project=project()).pk
    expense()
    _retarget_project_to_task(scenario)
    runtime.get_model("task").objects.create(title="Unrelated")  # Same id as the project: no error would show.

    plan = services.preview(scenario["expense"])
    [item] = [item for item in plan["impact"] if item["field"] == "project"]
    assert (item["code"], item["count"], item["sample_ids"], item["blocking"]) == (
        "relation_retarget", 1, [linked], True)
    assert "would point at unrelated task records" in item["message"]
    with pytest.raises(schema.MigrationRefused, match="point at project records"):
        services.publish(scenario["expense"])


def test_clearing_a_retargeted_relation_empties_it_explicitly(scenario):
    linked = expense(project=project()).pk
    _retarget_project_to_task(scenario)
    clear = {"project": {"clear": True}}
    [item] = [item for item in services.preview(scenario["expense"], data_changes=clear)["impact"]
              if item["field"] == "project"]
    assert (item["code"], item["sample_ids"], item["blocking"]) == ("clear_relation", [linked], False)

    services.publish(scenario["expense"], data_changes=clear)
    record = runtime.get_model("expense").objects.get(pk=linked)
    assert record.project_id is None and record._meta.get_field("project").related_model._meta.model_name == "task"


def test_the_api_previews_and_publishes_with_data_changes(scenario, acme, make_user, acme_client):
    designer = make_user(acme, "dana", is_staff=True, is_superuser=True)
    with tenant_context(acme):
        acme_client.force_login(designer)
    connection.set_tenant(acme)
    meals = expense(category="meals").pk
    _narrow_category(scenario)
    answer = acme_client.post(f"{API}/entities/expense/publish/", {"expected_version": 1}, content_type="application/json")
    assert answer.status_code == 400, answer.content
    assert answer.json()["category"][0]["code"] == "removed_choice"

    data_changes = {"category": {"value_map": {"meals": "travel"}}}
    answer = acme_client.post(f"{API}/entities/expense/preview/", {"data_changes": data_changes},
                      content_type="application/json")
    assert answer.status_code == 200, answer.content
    assert [item["code"] for item in answer.json()["impact"]] == ["value_map"]
    answer = acme_client.post(f"{API}/entities/expense/publish/", {"expected_version": 1, "data_changes": data_changes},
                      content_type="application/json")
    assert answer.status_code == 201, answer.content
    assert runtime.get_model("expense").objects.get(pk=meals).category == "travel"


def test_fields_marked_filterable_are_indexed_where_the_type_benefits(scenario):
    indexed = {definition.rsplit("(", 1)[1].split(")")[0].split()[0] for (definition,) in _sql(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'acme' AND tablename = 'dm_expense'")}
    assert {"currency", "category", "status", "project_id"} <= indexed  # Filterable choices; a relation.
    assert not {"title", "amount", "notes"} & indexed  # Not filterable.


def _other_session():
    db = connection.settings_dict
    return psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"] or None,
                           dbname=db["NAME"])


def test_a_change_that_cannot_get_its_lock_fails_fast_with_a_conflict_naming_the_table(committed_acme, settings):
    settings.SCHEMA_LOCK_TIMEOUT_MS = 200
    connection.set_tenant(committed_acme)
    entity = design("ledger", [{"key": "title", "type": "text"}])
    services.publish(entity)
    Field.objects.create(entity=entity, key="amount", type="integer", position=1)
    with _other_session() as reader:
        # A long transaction that read the table: ALTER TABLE must wait for it to end.
        reader.execute("SELECT count(*) FROM acme.dm_ledger")
        started = time.monotonic()
        with pytest.raises(schema.TableBusy, match="dm_ledger is busy"):
            services.publish(entity)
        assert time.monotonic() - started < 2
    assert "amount" not in {column.name for column in connection.introspection.get_table_description(
        connection.cursor(), "dm_ledger")}
    assert services.publish(entity).to_version == 2  # The reader is gone: the same change goes through.


# --- Online phases: outside the publish transaction, committed (CONCURRENTLY needs that) ----------


@pytest.fixture
def ledger(committed_acme):
    """acme's committed `ledger` (a reference text and an amount as text) with 30 rows."""
    connection.set_tenant(committed_acme)
    entity = design("ledger", [{"key": "ref", "type": "text", "options": {"max_length": 20}},
                               {"key": "amount", "type": "text", "options": {"max_length": 20}},
                               {"key": "booked", "type": "text", "options": {"max_length": 20}}])
    services.publish(entity)
    runtime.get_model("ledger").objects.bulk_create(
        runtime.get_model("ledger")(ref=f"R{index}", amount=str(index * 10) if index % 5 else None,
                                    booked="2026-01-05") for index in range(30))
    return entity


def _change(entity, key, **attributes):
    Field.objects.filter(entity=entity, key=key).update(**attributes)


def _sql(query, params=()):
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def _phases(migration):
    return [(phase["phase"], phase["field"], phase["status"]) for phase in migration.phases]


def test_an_index_is_built_concurrently_before_the_publish_transaction(ledger):
    _change(ledger, "ref", index=True)
    migration = services.publish(ledger)
    assert _phases(migration) == [("build_index", "ref", "done")]
    assert 'CREATE INDEX CONCURRENTLY "dm_ledger_ref_' in migration.forward_sql
    assert {"op": "alter_field", "field": "ref", "finish": [], "online": ["build_index"]} in migration.operations
    indexes = _sql("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'acme' AND tablename = 'dm_ledger' "
                   "AND indexdef LIKE '%%(ref%%'")
    assert len(indexes) == 2 and any("varchar_pattern_ops" in definition for _name, definition in indexes)
    assert all(valid for (valid,) in _sql("SELECT indisvalid FROM pg_index WHERE indrelid = 'acme.dm_ledger'::regclass"))


def test_a_unique_constraint_is_added_from_an_index_built_concurrently(ledger):
    from django.db import IntegrityError, transaction

    _change(ledger, "ref", unique=True)
    migration = services.publish(ledger)
    assert _phases(migration) == [("build_unique_index", "ref", "done")]
    assert "UNIQUE USING INDEX" in migration.forward_sql and "CREATE UNIQUE INDEX CONCURRENTLY" in migration.forward_sql
    assert _sql("SELECT contype FROM pg_constraint WHERE conrelid = 'acme.dm_ledger'::regclass "
                "AND conname LIKE 'dm_ledger_ref_%%_uniq'") == [("u",)]
    with pytest.raises(IntegrityError), transaction.atomic():
        runtime.get_model("ledger").objects.create(ref="R1")


def test_a_type_change_copies_values_in_batches_into_a_shadow_column_then_swaps(ledger, settings):
    settings.SCHEMA_BACKFILL_BATCH = 7
    _change(ledger, "amount", type="integer", options={})
    migration = services.publish(ledger)
    assert _phases(migration) == [("add_shadow_column", "amount", "done"), ("copy_values", "amount", "done")]
    assert migration.phases[1]["rows"] == 24 and migration.status == "applied"
    assert 'RENAME COLUMN "_shadow_' in migration.forward_sql
    Ledger = runtime.get_model("ledger")
    assert sorted(Ledger.objects.exclude(amount=None).values_list("amount", flat=True)) == sorted(
        index * 10 for index in range(30) if index % 5)
    assert _sql("SELECT data_type FROM information_schema.columns WHERE table_schema = 'acme' "
                "AND table_name = 'dm_ledger' AND column_name = 'amount'") == [("bigint",)]
    assert not _sql("SELECT 1 FROM information_schema.columns WHERE table_schema = 'acme' "
                    "AND column_name LIKE '\\_shadow\\_%%'")
    assert not _sql("SELECT 1 FROM pg_trigger WHERE tgrelid = 'acme.dm_ledger'::regclass AND NOT tgisinternal")
    Ledger.objects.create(ref="new", amount=5)


def test_a_failure_midway_rolls_back_every_phase_and_publishes_nothing(ledger):
    Ledger = runtime.get_model("ledger")
    Ledger.objects.filter(ref="R3").update(booked="2026-02-30")  # Looks like a date; is none.
    indexes = _sql("SELECT indexname FROM pg_indexes WHERE schemaname = 'acme' AND tablename = 'dm_ledger'")
    _change(ledger, "ref", index=True)
    _change(ledger, "booked", type="date", options={})
    with pytest.raises(schema.MigrationRefused, match="A value of booked cannot be converted"):
        services.publish(ledger)
    failed = SchemaMigration.objects.get(entity_key="ledger", status="failed")
    assert _phases(failed) == [("build_index", "ref", "rolled_back"), ("add_shadow_column", "booked", "rolled_back"),
                               ("copy_values", "booked", "failed")]
    assert "out of range" in failed.phases[2]["error"]
    assert _sql("SELECT indexname FROM pg_indexes WHERE schemaname = 'acme' AND tablename = 'dm_ledger'") == indexes
    assert not _sql("SELECT 1 FROM information_schema.columns WHERE table_schema = 'acme' "
                    "AND column_name LIKE '\\_shadow\\_%%'")
    assert not _sql("SELECT 1 FROM pg_trigger WHERE tgrelid = 'acme.dm_ledger'::regclass AND NOT tgisinternal")
    assert Definition.objects.get(kind="entity", key="ledger", status="published").version == 1
    Ledger.objects.create(ref="still", booked="2026-03-01")  # The table works as before.

    Ledger.objects.filter(ref="R3").update(booked="2026-02-28")  # Fixed: the same change goes through.
    migration = services.publish(ledger)
    assert migration.to_version == 2 and migration.status == "applied"
    assert SchemaMigration.objects.get(pk=failed.pk).status == "failed"
    assert services.eject("ledger")  # The failed attempt is no version of its own.


def test_a_publish_killed_midway_is_taken_up_where_it_stopped_by_the_next_one(ledger, test_database_url):
    Ledger = runtime.get_model("ledger")
    Ledger.objects.bulk_create(Ledger(ref=f"S{index}", amount=str(index)) for index in range(3000))
    _change(ledger, "ref", index=True)
    _change(ledger, "amount", type="integer", options={})
    command = [sys.executable, "manage.py", "lowcode", "entity", "publish", "ledger", "--tenant", "acme"]
    environment = {**os.environ, "DATABASE_URL": test_database_url, "LOG_LEVEL": "WARNING",
                   "SCHEMA_BACKFILL_BATCH": "1"}  # One row per transaction: slow enough to stop midway.
    process = subprocess.Popen(command, cwd=settings.BASE_DIR, env=environment)

    def copying() -> dict | None:
        migration = SchemaMigration.objects.filter(entity_key="ledger", status="preparing").first()
        copy = migration and migration.phases[-1]
        return copy if copy and copy["status"] == "running" and copy.get("copied_to") else None

    deadline = time.monotonic() + 120
    while copying() is None:
        assert process.poll() is None and time.monotonic() < deadline, "the publish did not reach the copy"
        time.sleep(0.05)
    process.kill()
    process.wait()
    stopped = SchemaMigration.objects.get(entity_key="ledger", status="preparing")
    assert _phases(stopped) == [("build_index", "ref", "done"), ("add_shadow_column", "amount", "done"),
                                ("copy_values", "amount", "running")]
    assert 0 < stopped.phases[2]["copied_to"] < 3030

    migration = services.publish(ledger)
    assert migration.pk == stopped.pk and migration.status == "applied" and migration.to_version == 2
    assert migration.phases[0] == stopped.phases[0]  # The index was built once.
    assert _phases(migration)[2] == ("copy_values", "amount", "done")
    assert migration.phases[2]["rows"] == Ledger.objects.exclude(amount=None).count() == 3024
    Ledger = runtime.get_model("ledger")
    assert Ledger.objects.get(ref="S2999").amount == 2999 and Ledger.objects.get(ref="R6").amount == 60


def test_a_lock_held_briefly_is_waited_out_in_short_attempts(ledger):
    import threading

    _change(ledger, "ref", options={"max_length": 30})  # A change that needs the table's lock.
    with _other_session() as reader:
        reader.execute("SELECT count(*) FROM acme.dm_ledger")  # Holds the table until it ends.
        threading.Timer(0.3, reader.commit).start()
        started = time.monotonic()
        migration = services.publish(ledger)
    assert migration.to_version == 2 and time.monotonic() - started >= 0.3
    assert "varchar(30)" in migration.forward_sql


def test_the_table_is_changed_last_in_the_publish_transaction(scenario):
    statements = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    Field.objects.create(entity=scenario["project"], key="region", type="text", position=9)
    with connection.execute_wrapper(record):
        services.publish(scenario["project"])
    first_ddl = next(index for index, sql in enumerate(statements) if sql.startswith('ALTER TABLE "dm_project"'))
    bookkeeping = [index for index, sql in enumerate(statements)
                   if '"metadata_definition"' in sql or '"dynamic_models_field"' in sql]
    assert bookkeeping and max(bookkeeping) < first_ddl  # The lock is held from there to the commit only.
