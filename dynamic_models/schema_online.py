"""Online schema changes: a publish's slow work runs before its transaction, never locking the table (issue 16).

Inside the publish transaction three changes would hold a large table's lock for seconds:
building an index, adding a unique constraint (its index, then its check) and changing a
column's type (a rewrite). `prepare()` does their slow part first, outside any transaction,
while the table keeps serving reads and writes:

- an index is built CONCURRENTLY under the name Django gives it;
- a unique constraint's index is built CONCURRENTLY; the publish adds the constraint USING it;
- a type change gets a shadow column of the new type, which a trigger keeps in step with the
  old column while batches of rows are copied (each batch its own short transaction; a value
  the new type cannot hold is refused, by the copy or the trigger); the publish swaps them.

The publish transaction is then left with catalog changes, each waiting at most
SCHEMA_LOCK_TIMEOUT_MS for its lock (`schema.lock_timeout`). The SchemaMigration row shows the
phases as they run. A failure rolls back what was prepared (the row says what failed, and is
FAILED); a prepare that died midway (its process killed) is taken up by the next publish of
the same design: finished indexes are kept and the copy goes on where it stopped.

Only changes that keep the column's name go online, and type changes of columns without an
index; the others run inside the publish transaction as before.
"""

from __future__ import annotations

import logging
import re
import time
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from dynamic_models import schema
from dynamic_models.models import SchemaMigration
from dynamic_models.registries import field_type_registry
from metadata import services as metadata
from metadata.exceptions import PublishConflict
from metadata.models import Definition

logger = logging.getLogger(__name__)
Status = SchemaMigration.Status
#: Phases run before the publish transaction, and the catalog step each leaves to it.
BUILD_INDEX, BUILD_UNIQUE_INDEX, ADD_SHADOW_COLUMN, COPY_VALUES = (
    "build_index", "build_unique_index", "add_shadow_column", "copy_values")
ATTACH_UNIQUE, SWAP_COLUMNS = "attach_unique", "swap_columns"
#: How often the copy writes its progress to the migration row (seconds).
_PROGRESS_EVERY = 1.0


def shadow_column(field_id: str) -> str:
    return f"_shadow_{field_id}"


def _copy_trigger(entity_key: str, field_id: str) -> str:
    return f"dm_{entity_key}_{field_id}_copy"


def _base_type(model_field) -> str:
    """The column's type without its modifiers: varchar(100) and varchar(200) are one type."""
    return re.sub(r"\(.*\)", "", model_field.db_type(connection) or "")


def _rewrites(old_field, new_field) -> bool:
    """Whether PostgreSQL would rewrite the table to change `old_field`'s column into `new_field`'s."""
    old, new = _base_type(old_field), _base_type(new_field)
    return old != new and not (old == "varchar" and new == "text")


def _index_statements(editor, model, model_field) -> list[tuple[str, str]]:
    """(name, CREATE INDEX CONCURRENTLY ...) of the indexes Django gives a column: its own and,
    for text, the pattern-ops one that LIKE uses."""
    table, column = model._meta.db_table, model_field.column
    result = []
    if not model_field.unique:
        result.append((editor._create_index_name(table, [column], suffix=""),
                       str(editor._create_index_sql(model, fields=[model_field], concurrently=True))))
    like = editor._create_like_index_sql(model, model_field)
    if like is not None:
        result.append((editor._create_index_name(table, [column], suffix="_like"),
                       str(like).replace("CREATE INDEX", "CREATE INDEX CONCURRENTLY", 1)))
    return result


def _phases(old_body: dict, new_body: dict) -> list[dict]:
    """The online phases of the change from `old_body` to `new_body`, in order."""
    old_model, new_model = schema._model_pair(old_body, new_body)
    table = new_model._meta.db_table
    old_specs = {spec["id"]: spec for spec in old_body["fields"]}
    phases = []
    with connection.schema_editor(collect_sql=True) as editor:
        for spec in new_body["fields"]:
            old_spec = old_specs.get(spec["id"])
            if old_spec is None or not field_type_registry.get(spec["type"]).has_column \
                    or bool(old_spec.get("encrypted")) != bool(spec.get("encrypted")):
                continue
            old_field = old_model._meta.get_field(old_spec["key"])
            new_field = new_model._meta.get_field(spec["key"])
            if old_field.column != new_field.column or old_field.is_relation or new_field.is_relation:
                continue
            common = {"field": spec["key"], "field_id": spec["id"], "status": "pending"}
            if _rewrites(old_field, new_field):
                if not (old_field.unique or old_field.db_index or new_field.unique or new_field.db_index):
                    shadow = {"name": shadow_column(spec["id"]), "type": new_field.db_type(connection), **common}
                    phases += [{"phase": ADD_SHADOW_COLUMN, **shadow}, {"phase": COPY_VALUES, "rows": 0, **shadow}]
            elif new_field.unique and not old_field.unique and not old_field.db_index:
                name = editor._create_index_name(table, [new_field.column], suffix="_uniq")
                statement = f"CREATE UNIQUE INDEX CONCURRENTLY {editor.quote_name(name)} ON " \
                            f"{editor.quote_name(table)} ({editor.quote_name(new_field.column)})"
                phases.append({"phase": BUILD_UNIQUE_INDEX, "name": name,
                               "sql": [statement, *(sql for _name, sql in _index_statements(editor, new_model, new_field))],
                               **common})
            elif new_field.db_index and not (old_field.db_index or old_field.unique or new_field.unique):
                statements = _index_statements(editor, new_model, new_field)
                phases.append({"phase": BUILD_INDEX, "name": statements[0][0],
                               "sql": [sql for _name, sql in statements], **common})
    return phases


def _index_names(phase: dict) -> list[str]:
    return re.findall(r'INDEX CONCURRENTLY "([^"]+)"', " ".join(phase["sql"]))


@contextmanager
def _publish_lock():
    """The tenant's publish lock for this session, held across the prepare and the publish
    (the publish transaction takes it again, which its holder may)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtext('lowcode.publish'), hashtext(%s))",
                       [connection.schema_name])
        if not cursor.fetchone()[0]:
            raise PublishConflict(_("Another publish is running in this workspace; try again when it has finished."))
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtext('lowcode.publish'), hashtext(%s))",
                           [connection.schema_name])


@contextmanager
def online(entity_key: str, body: dict, *, author=None, data_changes: dict | None = None):
    """Run the online phases of publishing `body` as `entity_key`, then the block (the publish).

    Outside a transaction only (CONCURRENTLY cannot run in one); inside one, or when the change
    has no slow part, the block runs alone and the publish does everything, as before. If the
    block fails, what was prepared is rolled back. Rows the change would break (see
    `schema.plan`; `data_changes` as it takes them) refuse it before anything is prepared.
    """
    published = Definition.objects.filter(kind="entity", key=entity_key, status=Definition.Status.PUBLISHED).first()
    if published is None or connection.in_atomic_block:
        yield
        return
    stale = SchemaMigration.objects.filter(entity_key=entity_key, status=Status.PREPARING).first()
    metadata.validate("entity", body)  # The phases are read from a valid design only.
    phases = _phases(published.body, body)
    if phases:
        with transaction.atomic():  # Introspection only.
            refused = schema.plan(published.body, body, execute=False, data_changes=data_changes).blocking
            transaction.set_rollback(True)
        if refused:
            raise schema.MigrationRefused(refused)
    elif stale is None:
        yield
        return
    with _publish_lock():
        migration = _resumable(stale, entity_key, body, published, phases, author)
        try:
            _run_phases(migration)
            yield
        except BaseException as error:
            migration.refresh_from_db()
            if migration.status == Status.PREPARING:  # Not applied: the publish did not happen.
                try:
                    rollback(migration, error)
                except (DatabaseError, PublishConflict):
                    # Left PREPARING: the next publish of the entity resumes or undoes it.
                    logger.exception("Rolling back the prepared change of %s failed", entity_key)
            raise


def _resumable(stale, entity_key, body, published, phases, author) -> SchemaMigration:
    """The migration row to prepare: the one a dead prepare of the same design left, or a new one."""
    body_checksum = metadata.checksum(body)
    if stale is not None and stale.body_checksum == body_checksum and stale.from_version == published.version:
        return stale
    if stale is not None:  # Another design's leftovers: undo them first.
        rollback(stale, None)
    newest = Definition.objects.filter(kind="entity", key=entity_key).aggregate(v=Max("version"))["v"] or 0
    draft = Definition.objects.filter(kind="entity", key=entity_key, status=Definition.Status.DRAFT).exists()
    return SchemaMigration.objects.create(
        entity_key=entity_key, from_version=published.version, to_version=newest if draft else newest + 1,
        status=Status.PREPARING, phases=phases, body_checksum=body_checksum, author=author)


def _save(migration: SchemaMigration) -> None:
    migration.save(update_fields=["phases"])


def _run_phases(migration: SchemaMigration) -> None:
    table = f"dm_{migration.entity_key}"
    for phase in migration.phases:
        if phase["status"] == "done" and (phase["phase"] not in (BUILD_INDEX, BUILD_UNIQUE_INDEX)
                                          or all(_index_valid(name) for name in _index_names(phase))):
            continue
        started = time.monotonic()
        phase.update(status="running", error="")
        _save(migration)
        try:
            if phase["phase"] in (BUILD_INDEX, BUILD_UNIQUE_INDEX):
                _build_indexes(phase)
            elif phase["phase"] == ADD_SHADOW_COLUMN:
                _add_shadow_column(migration, table, phase)
            else:
                _copy_values(migration, table, phase)
        except (DatabaseError, schema.TableBusy) as error:
            phase.update(status="failed", error=str(error).strip()[:500])
            _save(migration)
            raise _refusal(phase, error) from error
        phase.update(status="done", ms=int((time.monotonic() - started) * 1000) + phase.get("ms", 0))
        _save(migration)


def _index_valid(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [name])
        row = cursor.fetchone()
    return bool(row and row[0])


def _build_indexes(phase: dict) -> None:
    with connection.cursor() as cursor:
        for name, statement in zip(_index_names(phase), phase["sql"], strict=True):
            if _index_valid(name):
                continue
            # A build that died or failed leaves an invalid index under the name.
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {connection.ops.quote_name(name)}")
            cursor.execute(statement)


def _add_shadow_column(migration: SchemaMigration, table: str, phase: dict) -> None:
    quote = connection.ops.quote_name
    old, shadow = quote(phase["field"]), quote(phase["name"])
    trigger = quote(_copy_trigger(migration.entity_key, phase["field_id"]))
    with schema.lock_timeout(table), connection.cursor() as cursor:
        # Autovacuum, woken by the copy's dead rows, would hold the table when the publish swaps the
        # columns: it stays off until then.
        cursor.execute(f"ALTER TABLE {quote(table)} ADD COLUMN IF NOT EXISTS {shadow} {phase['type']} NULL, "
                       "SET (autovacuum_enabled = false)")
        # Rows written while the copy runs: the new type's value goes along (or the write is refused).
        cursor.execute(f"CREATE OR REPLACE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                       f"BEGIN NEW.{shadow} := CAST(NEW.{old} AS {phase['type']}); RETURN NEW; END $$")
        cursor.execute(f"CREATE OR REPLACE TRIGGER {trigger} BEFORE INSERT OR UPDATE OF {old} ON {quote(table)} "
                       f"FOR EACH ROW EXECUTE FUNCTION {trigger}()")


def _copy_values(migration: SchemaMigration, table: str, phase: dict) -> None:
    """Copy the old column into the shadow one, SCHEMA_BACKFILL_BATCH rows per transaction.

    After each batch the copy rests as long as the batch took: its bursts of writes leave the
    table's readers and writers half of the server's time.
    """
    quote = connection.ops.quote_name
    old, shadow = quote(phase["field"]), quote(phase["name"])
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT coalesce(max(id), 0) FROM {quote(table)}")
        last = cursor.fetchone()[0]  # Rows added later: the trigger fills them.
        saved = time.monotonic()
        start = phase.get("copied_to", 0)
        while start < last:
            end = start + settings.SCHEMA_BACKFILL_BATCH
            batch_started = time.monotonic()
            cursor.execute(f"UPDATE {quote(table)} SET {shadow} = CAST({old} AS {phase['type']}) "
                           f"WHERE id > %s AND id <= %s AND {old} IS NOT NULL", [start, end])
            time.sleep(time.monotonic() - batch_started)
            phase["rows"] += cursor.rowcount
            start = phase["copied_to"] = end
            if time.monotonic() - saved > _PROGRESS_EVERY:
                _save(migration)
                saved = time.monotonic()


def _refusal(phase: dict, error: Exception) -> Exception:
    """The publish's answer to a failed phase: a busy table is a conflict, refused data names the field."""
    if isinstance(error, schema.TableBusy):
        return error
    cause = getattr(error, "__cause__", None)
    detail = (getattr(getattr(cause, "diag", None), "message_primary", None) or str(error)).strip()
    if phase["phase"] == BUILD_UNIQUE_INDEX:
        code, message = "unique", _("Values of %(key)s are not unique (%(detail)s); the change was rolled back.")
    elif phase["phase"] == COPY_VALUES:
        code, message = "invalid_cast", _("A value of %(key)s cannot be converted (%(detail)s); the change was "
                                          "rolled back.")
    else:
        code, message = "failed", _("Preparing %(key)s failed (%(detail)s); the change was rolled back.")
    return schema.MigrationRefused([{"field": phase["field"], "code": code, "count": 0, "sample_ids": [],
                                     "blocking": True, "message": message % {"key": phase["field"], "detail": detail}}])


def rollback(migration: SchemaMigration, error: BaseException | None) -> None:
    """Undo what `migration` prepared (newest first) and mark it FAILED."""
    quote = connection.ops.quote_name
    table = f"dm_{migration.entity_key}"
    with connection.cursor() as cursor:
        for phase in reversed(migration.phases):
            if phase["status"] == "pending":
                continue
            if phase["phase"] in (BUILD_INDEX, BUILD_UNIQUE_INDEX):
                for name in _index_names(phase):
                    cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quote(name)}")
            elif phase["phase"] == ADD_SHADOW_COLUMN:
                trigger = quote(_copy_trigger(migration.entity_key, phase["field_id"]))
                with schema.lock_timeout(table):
                    cursor.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {quote(table)}")
                    cursor.execute(f"DROP FUNCTION IF EXISTS {trigger}()")
                    cursor.execute(f"ALTER TABLE {quote(table)} DROP COLUMN IF EXISTS {quote(phase['name'])}, "
                                   "RESET (autovacuum_enabled)")
            if phase["status"] != "failed":
                phase["status"] = "rolled_back"
    migration.status = Status.FAILED
    if error is None:
        migration.phases.append({"phase": "rollback", "status": "done",
                                 "error": _("Left by a publish that stopped; another design was published.")})
    migration.save(update_fields=["phases", "status"])


def finishing(migration: SchemaMigration | None) -> dict[str, tuple[set[str], list[str]]]:
    """{field id: (the phases done, the catalog changes that end them)} of a prepared migration:
    what `schema.plan` has left to do for each field, inside the publish transaction."""
    quote = connection.ops.quote_name
    result: dict[str, tuple[set[str], list[str]]] = {}
    for phase in migration.phases if migration is not None else []:
        if phase["status"] != "done":
            continue
        done, statements = result.setdefault(phase["field_id"], (set(), []))
        done.add(phase["phase"])
        table, column = quote(f"dm_{migration.entity_key}"), quote(phase["field"])
        if phase["phase"] == BUILD_UNIQUE_INDEX:
            name = quote(phase["name"])
            statements.append(f"ALTER TABLE {table} ADD CONSTRAINT {name} UNIQUE USING INDEX {name}")
        elif phase["phase"] == COPY_VALUES:
            trigger = quote(_copy_trigger(migration.entity_key, phase["field_id"]))
            statements += [f"DROP TRIGGER {trigger} ON {table}", f"DROP FUNCTION {trigger}()",
                           f"ALTER TABLE {table} DROP COLUMN {column}, RESET (autovacuum_enabled)",
                           f"ALTER TABLE {table} RENAME COLUMN {quote(phase['name'])} TO {column}"]
    return result


def phase_sql(migration: SchemaMigration | None) -> list[str]:
    """The statements the online phases ran (the copy's as one statement), for the migration's SQL."""
    quote = connection.ops.quote_name
    statements = []
    for phase in migration.phases if migration is not None else []:
        if phase["phase"] == ADD_SHADOW_COLUMN:
            statements.append(f"ALTER TABLE {quote('dm_' + migration.entity_key)} ADD COLUMN {quote(phase['name'])} "
                              f"{phase['type']} NULL")
        elif phase["phase"] == COPY_VALUES:
            statements.append(f"UPDATE {quote('dm_' + migration.entity_key)} SET {quote(phase['name'])} = "
                              f"CAST({quote(phase['field'])} AS {phase['type']}) -- in batches of "
                              f"{settings.SCHEMA_BACKFILL_BATCH} rows")
        else:
            statements += phase.get("sql", [])
    return statements


def preparing(entity_key: str, body: dict) -> SchemaMigration | None:
    """The prepared migration of publishing `body` as `entity_key`, if `online` prepared one."""
    return SchemaMigration.objects.filter(entity_key=entity_key, status=Status.PREPARING,
                                          body_checksum=metadata.checksum(body)).first()
