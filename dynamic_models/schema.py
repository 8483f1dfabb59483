"""Generated schema migrations of entity tables: plan, preview, apply, purge (DM-3).

A plan compares two bodies of one entity field by field (matched by the field's stable id,
so a new key is a rename) and drives Django's schema editor. Preview collects the SQL
without running it and measures the data impact; apply runs it inside the publish
transaction (metadata.services.publish holds the tenant's advisory lock), refusing when the
impact shows rows that would break. Removing a field only renames its column to
`_removed_<id>`; `purge_removed` drops such columns later. Adding the field back restores its
column: the same field (a rollback, an import), or a new one with the same key and the same
kind of values (type, target, encryption); in the same publish, such a field simply takes the
removed one's column over. A new field of another kind gets a new column, after the old one
was renamed away.
"""

from __future__ import annotations

import copy
import random
import re
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import OperationalError, connection, models, transaction
from django.utils.translation import gettext as _
from django_tenants.utils import get_public_schema_name

from audit import services as audit
from dynamic_models import audit_actions as dm_actions
from dynamic_models import runtime
from dynamic_models.models import SchemaMigration
from dynamic_models.registries import field_type_registry
from metadata.exceptions import DefinitionValidationError, MetadataError, PublishConflict
from metadata.models import Definition
from rbac import services as rbac

SAMPLE_SIZE = 10


class MigrationRefused(MetadataError):
    """The change would break existing rows; `impact` lists them."""

    def __init__(self, impact: list[dict]):
        self.impact = impact
        super().__init__("; ".join(item["message"] for item in impact if item["blocking"]))


class TableBusy(PublishConflict):
    """A schema change could not get its table's lock in time (SCHEMA_LOCK_TIMEOUT_MS); nothing changed."""

    def __init__(self, table: str):
        self.table = table
        super().__init__(_("The table %(table)s is busy: the change could not lock it within %(ms)d ms and changed "
                           "nothing; try again.") % {"table": table, "ms": settings.SCHEMA_LOCK_TIMEOUT_MS})


#: How long one attempt of a statement waits for its table's lock: queries that arrive
#: meanwhile queue behind it, so less than the 50 ms a request may be held up.
LOCK_ATTEMPT_MS = 40
#: Statements that lock their table (CREATE INDEX CONCURRENTLY does not block it: not retried).
_LOCKING = re.compile(r"\s*(ALTER TABLE|ALTER INDEX|ALTER SEQUENCE|DROP TRIGGER|CREATE (OR REPLACE )?TRIGGER|"
                      r"DROP INDEX(?! CONCURRENTLY)|CREATE (UNIQUE )?INDEX(?! CONCURRENTLY)|DROP TABLE)",
                      re.IGNORECASE)


class _LockAttempts:
    """Run each locking statement in attempts of LOCK_ATTEMPT_MS, pausing between them (the
    queries queued behind an attempt go on), until SCHEMA_LOCK_TIMEOUT_MS have passed; then
    raise TableBusy. In a transaction each attempt is a savepoint, so a failed one costs nothing."""

    def __init__(self, table: str):
        self.table = table
        self.deadline = time.monotonic() + settings.SCHEMA_LOCK_TIMEOUT_MS / 1000

    def __call__(self, execute, sql, params, many, context):
        if not _LOCKING.match(sql):
            return execute(sql, params, many, context)
        while True:
            try:
                if not connection.in_atomic_block:
                    return execute(sql, params, many, context)
                with transaction.atomic():
                    return execute(sql, params, many, context)
            except OperationalError as error:
                if getattr(error.__cause__, "sqlstate", None) != "55P03":  # lock_not_available
                    raise
                if time.monotonic() > self.deadline:
                    raise TableBusy(self.table) from error
                time.sleep(random.uniform(0.02, 0.08))


@contextmanager
def lock_timeout(table: str):
    """Let statements on `table` wait for its lock in short attempts, for SCHEMA_LOCK_TIMEOUT_MS in
    all, then raise TableBusy (see _LockAttempts).

    While DDL waits for a lock, every query on the table queues behind it: short waits that give
    way, then a clear failure, are better than one long wait that stalls every request reading
    the table (autovacuum, which DDL only cancels after deadlock_timeout, is waited out).
    """
    local = connection.in_atomic_block  # In a transaction the setting ends with it.
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('lock_timeout'), set_config('lock_timeout', %s, %s)",
                       [f"{LOCK_ATTEMPT_MS}ms", local])
        previous = cursor.fetchone()[0]
    try:
        with connection.execute_wrapper(_LockAttempts(table)):
            yield
    finally:
        if not local or not connection.needs_rollback:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('lock_timeout', %s, %s)", [previous, local])


@dataclass
class Plan:
    entity_key: str
    operations: list[dict] = field(default_factory=list)
    sql: list[str] = field(default_factory=list)
    impact: list[dict] = field(default_factory=list)

    @property
    def blocking(self) -> list[dict]:
        return [item for item in self.impact if item["blocking"]]

    def as_dict(self) -> dict:
        return {"entity": self.entity_key, "operations": self.operations, "sql": self.sql, "impact": self.impact}


def removed_column(field_id: str) -> str:
    return f"_removed_{field_id}"


def _assert_tenant_schema() -> None:
    # DDL on the public search path would land in every tenant's view of public.
    if connection.schema_name == get_public_schema_name():
        raise RuntimeError("Entity tables are created in tenant schemas only.")


def _table_columns(table: str) -> set[str]:
    with connection.cursor() as cursor:
        return {c.name for c in connection.introspection.get_table_description(cursor, table)} \
            if table in connection.introspection.table_names(cursor) else set()


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _model_pair(old_body: dict | None, new_body: dict) -> tuple[type | None, type]:
    """Build the entity's old and new model classes (`runtime.build_entity_model`): what its
    table's migration reads, at a cost that does not grow with the tenant.

    The old one is the tenant snapshot's when that holds the published body (it usually does).
    """
    new_model = runtime.build_entity_model(new_body)
    old_model = None
    if old_body is not None:
        snapshot = runtime.current()
        old_model = snapshot.get_model(old_body["key"]) if snapshot.bodies.get(old_body["key"]) == old_body \
            else runtime.build_entity_model(old_body)
    return old_model, new_model


def _model_field(model, spec) -> models.Field | None:
    if not field_type_registry.get(spec["type"]).has_column:
        return None
    return model._meta.get_field(spec["key"])


def _renamed(model_field: models.Field, column: str) -> models.Field:
    clone = copy.copy(model_field)
    clone.db_column = clone.column = column
    return clone


def _removed_shape(model_field: models.Field, field_id: str) -> models.Field:
    """The field as it lives once removed: nullable, unconstrained, under `_removed_<id>`."""
    clone = _renamed(model_field, removed_column(field_id))
    clone.null, clone._unique, clone.db_index = True, False, False
    clone.db_default = models.NOT_PROVIDED
    return clone


def _column_kind(spec: dict) -> tuple:
    """What a column holds: values of one type (rows of one target for relations, one file or
    several), clear or encrypted."""
    options = spec.get("options", {})
    return spec["type"], options.get("target"), bool(options.get("multiple")), bool(spec.get("encrypted"))


def _successors(old_specs: dict, new_specs: dict, old_fields: dict, new_fields: dict, existing: set[str]) -> dict:
    """{new field id: old field id} for fields removed and added back with the same key and kind.

    The added field takes the removed one's column over (its data stays) instead of the
    column being kept aside and a new one added under the same name.
    """
    result = {}
    added_by_key = {spec["key"]: field_id for field_id, spec in new_specs.items() if field_id not in old_specs}
    for old_id, old_spec in old_specs.items():
        new_id = added_by_key.get(old_spec["key"])
        if old_id in new_specs or new_id is None or _column_kind(old_spec) != _column_kind(new_specs[new_id]):
            continue
        old_field, new_field = old_fields[old_id], new_fields[new_id]
        if old_field is not None and new_field is not None and not old_field.many_to_many \
                and not new_field.many_to_many and removed_column(new_id) not in existing:
            result[new_id] = old_id
    return result


def _kept_specs(entity_key: str, columns: set[str]) -> dict[str, dict]:
    """The spec each kept column's field had when it was removed, by column."""
    kept = {column for column in columns if column.startswith("_removed_")}
    if not kept:
        return {}
    removed_from = {}  # column -> the version the field was removed from
    for migration in SchemaMigration.objects.filter(entity_key=entity_key).order_by("-to_version"):
        for operation in migration.operations:
            if operation.get("op") == "remove_field" and operation.get("kept_as") in kept:
                removed_from.setdefault(operation["kept_as"], migration.from_version)
    bodies = dict(Definition.objects.filter(kind="entity", key=entity_key, version__in=set(removed_from.values()))
                  .values_list("version", "body"))
    return {column: spec for column, version in removed_from.items() for spec in bodies[version]["fields"]
            if removed_column(spec["id"]) == column}


def _restorable(spec: dict, new_specs: dict, kept_specs: dict[str, dict], existing: set[str]) -> dict | None:
    """The spec of the kept column that an added field brings back, if any.

    Its own (a field that comes back, by rollback or import), else the one most recently
    removed under the same key with the same kind of values.
    """
    own_column = removed_column(spec["id"])
    # A kept column without its removal on record is taken to hold what the field holds now.
    own = kept_specs.get(own_column) or (spec if own_column in existing else None)
    if own is not None and (_column_kind(own) == _column_kind(spec) or not (
            field_type_registry.get(own["type"]).is_relation or field_type_registry.get(spec["type"]).is_relation)):
        return own
    for kept_spec in kept_specs.values():  # Most recently removed first.
        if kept_spec["id"] not in new_specs and kept_spec["key"] == spec["key"] \
                and _column_kind(kept_spec) == _column_kind(spec):
            return kept_spec
    return None


def _kept_field(model, new_field: models.Field, kept_spec: dict) -> models.Field:
    """A kept column as the schema editor must see it: the removed field's type, nullable, unconstrained."""
    field_type = field_type_registry.get(kept_spec["type"])
    if field_type.is_relation:
        base = new_field  # Same target (see _restorable): the same key column.
    else:
        base = field_type.get_model_field({**kept_spec, "entity": model.lowcode_entity["key"],
                                           "options": kept_spec.get("options", {})})
        base.set_attributes_from_name(new_field.name)
        base.model = model
    return _removed_shape(base, kept_spec["id"])


def _count(sql: str, params=()) -> tuple[int, list]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) OVER (), id FROM ({sql}) AS offending LIMIT {SAMPLE_SIZE}", params)
        rows = cursor.fetchall()
    return (rows[0][0] if rows else 0), [row[1] for row in rows]


def _impact(table: str, spec: dict, old_spec: dict | None, old_field, new_field) -> list[dict]:
    """Measure rows of `table` that the new field definition would reject."""
    checks = []
    column = _quote(old_field.column if old_field is not None else new_field.column)
    key = spec["key"]
    new_type = field_type_registry.get(spec["type"])
    if old_field is None:
        # A required field whose column takes nulls (files) is checked on write, not here.
        if spec.get("required") and new_field.default is models.NOT_PROVIDED and not new_field.null and \
                new_field.db_default is models.NOT_PROVIDED and not new_field.many_to_many:
            checks.append(("required_without_default",
                           _("%(count)d rows would have no value for the new required field %(key)s; give it a default."),
                           f"SELECT id FROM {_quote(table)}"))
    else:
        if old_spec["type"] != spec["type"]:
            predicate = new_type.invalid_cast_predicate(column, field_type_registry.get(old_spec["type"]))
            if predicate:
                checks.append(("invalid_cast", _("%(count)d values of %(key)s cannot be converted to %(type)s."),
                               f"SELECT id FROM {_quote(table)} WHERE {column} IS NOT NULL AND {predicate}"))
        if old_field.null and not new_field.null and not new_field.many_to_many:
            checks.append(("null", _("%(count)d rows have no value for %(key)s, which becomes required."),
                           f"SELECT id FROM {_quote(table)} WHERE {column} IS NULL"))
        if new_field.unique and not old_field.unique:
            checks.append(("unique", _("%(count)d rows share a value of %(key)s, which becomes unique."),
                           f"SELECT id FROM {_quote(table)} WHERE {column} IN (SELECT {column} FROM {_quote(table)} "
                           f"WHERE {column} IS NOT NULL GROUP BY {column} HAVING count(*) > 1)"))
        new_length = getattr(new_field, "max_length", None)
        if new_length and (getattr(old_field, "max_length", None) or 10**9) > new_length:
            checks.append(("max_length", _("%(count)d values of %(key)s are longer than %(max)d characters."),
                           f"SELECT id FROM {_quote(table)} WHERE length({column}::text) > {int(new_length)}"))
        if isinstance(new_field, models.DecimalField) and _whole_digits(old_field) > _whole_digits(new_field):
            # PostgreSQL refuses the whole change ("numeric field overflow") over one such value.
            checks.append(("max_digits", _("%(count)d values of %(key)s have more than %(digits)d digits before "
                                           "the decimal point."),
                           f"SELECT id FROM {_quote(table)} WHERE round(abs({column}), %s) >= %s",
                           [new_field.decimal_places, 10 ** _whole_digits(new_field)]))
    if old_field is not None and new_field.choices and old_spec["type"] != spec["type"]:
        values = [value for value, _label in new_field.choices]
        checks.append(("invalid_choice", _("%(count)d rows hold a value of %(key)s that is no longer a choice."),
                       f"SELECT id FROM {_quote(table)} WHERE {column} IS NOT NULL AND NOT ({column} = ANY(%s))",
                       [values]))
    if old_spec is not None and bool(old_spec.get("encrypted")) != bool(spec.get("encrypted")):
        checks.append(("encryption", _("%(count)d values of %(key)s are stored; switching encryption on or off for "
                                       "existing values is not supported: empty the field first."),
                       f"SELECT id FROM {_quote(table)} WHERE {column} IS NOT NULL"))
    regex = spec.get("options", {}).get("regex")
    if old_field is not None and regex and regex != (old_spec or {}).get("options", {}).get("regex"):
        checks.append(("regex", _("%(count)d values of %(key)s do not match the new pattern."),
                       f"SELECT id FROM {_quote(table)} WHERE {column} IS NOT NULL AND NOT ({column} ~ %s)", [regex]))
    impact = []
    for code, message, sql, *params in checks:
        count, sample = _count(sql, params[0] if params else ())
        if count:
            impact.append({"field": key, "code": code, "count": count, "sample_ids": sample, "blocking": True,
                           "message": message % {"count": count, "key": key, "type": spec["type"],
                                                 "max": getattr(new_field, "max_length", 0) or 0,
                                                 "digits": _whole_digits(new_field)}})
    return impact


def _choice_values(model_field) -> set[str]:
    base = getattr(model_field, "base_field", model_field)  # A multiple choice holds an array of them.
    return {value for value, _label in base.choices or ()}


def _data_change_impact(table: str, spec: dict, old_spec: dict, old_field, new_field,
                        change: dict) -> tuple[list[dict], list[tuple[str, list]]]:
    """Rows that a same-column change would silently damage, and what the builder's `change` does to them.

    A removed choice leaves rows holding a value no form or filter accepts any more; a relation
    re-targeted at another entity leaves ids that name unrelated records. Both are refused
    unless `change` says what to do: a `value_map` ({removed value: value to store, or null}) or
    `clear` (the relation's values are emptied). Returns (impact items, statements to run).
    """
    items, statements = [], []
    key, column, quoted_table = spec["key"], _quote(old_field.column), _quote(table)
    removed = sorted(_choice_values(old_field) - _choice_values(new_field))
    if removed and old_spec["type"] == spec["type"]:
        array = isinstance(new_field, ArrayField)
        value_map = change.get("value_map", {})
        holding = f"{column} && %s::varchar[]" if array else f"{column} = ANY(%s)"
        unmapped = [value for value in removed if value not in value_map]
        if unmapped:
            count, sample = _count(f"SELECT id FROM {quoted_table} WHERE {holding}", [unmapped])
            if count:
                items.append(_item(key, "removed_choice", count, sample, True, _(
                    "%(count)d rows hold %(values)s, no longer a choice of %(key)s: map them to a value to store "
                    "instead (value_map) or keep the choice.") % {"count": count, "key": key,
                                                                   "values": ", ".join(unmapped)}))
        mapped = {value: value_map[value] for value in removed if value in value_map}
        if mapped:
            count, sample = _count(f"SELECT id FROM {quoted_table} WHERE {holding}", [list(mapped)])
            if count:
                items.append(_item(key, "value_map", count, sample, False, _(
                    "%(count)d rows of %(key)s get other values: %(map)s.") % {
                        "count": count, "key": key, "map": ", ".join(
                            f"{old} → {new if new is not None else '∅'}" for old, new in mapped.items())}))
                statements.append(_mapping_statement(quoted_table, column, mapped, array))
    old_target, new_target = (spec.get("options", {}).get("target") for spec in (old_spec, spec))
    if field_type_registry.get(spec["type"]).is_relation and old_spec["type"] == spec["type"] \
            and old_target != new_target:
        if old_field.many_to_many:
            links = _quote(old_field.m2m_db_table())
            rows_sql = f"SELECT DISTINCT {_quote(old_field.m2m_column_name())} AS id FROM {links}"
            clear_sql = f"DELETE FROM {links}"
        else:
            rows_sql = f"SELECT id FROM {quoted_table} WHERE {column} IS NOT NULL"
            clear_sql = f"UPDATE {quoted_table} SET {column} = NULL WHERE {column} IS NOT NULL"
        count, sample = _count(rows_sql)
        words = {"count": count, "key": key, "old": old_target, "new": new_target}
        if count and change.get("clear"):
            items.append(_item(key, "clear_relation", count, sample, False, _(
                "%(count)d rows of %(key)s point at %(old)s records: they are cleared, since the relation now "
                "leads to %(new)s.") % words))
            statements.append((clear_sql, []))
        elif count:
            items.append(_item(key, "relation_retarget", count, sample, True, _(
                "%(count)d rows of %(key)s point at %(old)s records and would point at unrelated %(new)s records: "
                "clear them (clear) or keep the related entity.") % words))
    return items, statements


def _item(key: str, code: str, count: int, sample: list, blocking: bool, message: str) -> dict:
    return {"field": key, "code": code, "count": count, "sample_ids": sample, "blocking": blocking,
            "message": message}


def _mapping_statement(table: str, column: str, mapped: dict, array: bool) -> tuple[str, list]:
    """UPDATE storing each removed choice's mapped value (null: none) in the rows holding it."""
    if array:
        expression, params = column, []
        for old, new in mapped.items():
            expression = f"array_remove({expression}, %s)" if new is None else f"array_replace({expression}, %s, %s)"
            params += [old] if new is None else [old, new]
        return (f"UPDATE {table} SET {column} = {expression} WHERE {column} && %s::varchar[]",
                [*params, list(mapped)])
    cases = " ".join("WHEN %s THEN %s" for _old in mapped)
    return (f"UPDATE {table} SET {column} = CASE {column} {cases} END WHERE {column} = ANY(%s)",
            [*(value for pair in mapped.items() for value in pair), list(mapped)])


def data_change_errors(old_body: dict | None, new_body: dict, data_changes: dict) -> list[dict]:
    """Why `data_changes` ({field key: {"value_map": {...}} or {"clear": true}}) does not fit the
    change from `old_body` to `new_body`, as {"path", "code", "message"}; [] if it does."""
    if not isinstance(data_changes, dict):
        return [{"path": "data_changes", "code": "type", "message": _("Expected a JSON object.")}]
    old_specs = {spec["id"]: spec for spec in (old_body or {}).get("fields", [])}
    new_specs = {spec["key"]: spec for spec in new_body["fields"]}
    errors = []
    for key, change in data_changes.items():
        path = f"data_changes/{key}"
        spec, old_spec = new_specs.get(key), old_specs.get(new_specs.get(key, {}).get("id"))
        if spec is None or old_spec is None or not isinstance(change, dict) or set(change) - {"value_map", "clear"}:
            errors.append({"path": path, "code": "invalid", "message": _(
                "Expected a published field's key with {\"value_map\": {...}} or {\"clear\": true}.")})
            continue
        new_choices = {choice["value"] for choice in spec.get("options", {}).get("choices", [])}
        removed = {choice["value"] for choice in old_spec.get("options", {}).get("choices", [])} - new_choices
        value_map = change.get("value_map", {})
        if not isinstance(value_map, dict):
            errors.append({"path": f"{path}/value_map", "code": "type", "message": _("Expected a JSON object.")})
            value_map = {}
        for old, new in value_map.items():
            if old not in removed or old_spec["type"] != spec["type"]:
                errors.append({"path": f"{path}/value_map/{old}", "code": "not_removed", "message": _(
                    "%(value)r is not a choice this change removes.") % {"value": old}})
            elif new is None and spec.get("required") and spec["type"] == "choice":
                errors.append({"path": f"{path}/value_map/{old}", "code": "required", "message": _(
                    "%(key)s is required: map %(value)r to one of its choices.") % {"key": key, "value": old}})
            elif new is not None and (not isinstance(new, str) or new not in new_choices):
                errors.append({"path": f"{path}/value_map/{old}", "code": "invalid_choice", "message": _(
                    "%(value)r is not one of the choices of %(key)s.") % {"value": new, "key": key}})
        if "clear" in change:
            options, old_options = spec.get("options", {}), old_spec.get("options", {})
            if change["clear"] is not True or old_spec["type"] != spec["type"] or \
                    not field_type_registry.get(spec["type"]).is_relation or \
                    options.get("target") == old_options.get("target"):
                errors.append({"path": f"{path}/clear", "code": "not_retargeted", "message": _(
                    "Only a relation that this change points at another entity can be cleared (true).")})
            elif spec.get("required") and options.get("cardinality", "many_to_one") != "many_to_many":
                errors.append({"path": f"{path}/clear", "code": "required", "message": _(
                    "%(key)s is required and cannot be cleared: make it optional first.") % {"key": key}})
    return errors


def _whole_digits(model_field) -> int:
    """How many digits before the decimal point a numeric column holds (0 for other columns)."""
    if isinstance(model_field, models.DecimalField):
        return model_field.max_digits - model_field.decimal_places
    if isinstance(model_field, models.IntegerField):
        return 19  # bigint at most: 9223372036854775807.
    return 0


def _as_prepared(old_field: models.Field, new_field: models.Field, done: set[str]) -> models.Field:
    """The column as the online phases left it, for the schema editor to do only what remains."""
    if "copy_values" in done:  # The shadow column, of the new type and nullable, took the old one's place.
        clone = copy.copy(new_field)
        clone.null, clone._unique, clone.db_index = True, False, False
        return clone
    clone = copy.copy(old_field)
    if "build_unique_index" in done:
        clone._unique = True  # Its constraint is added from the index built (operation["finish"]).
    if "build_index" in done:
        clone.db_index = True
    return clone


def _run(editor, operation: dict, model, old_field, new_field) -> None:
    op = operation["op"]
    for statement in operation.get("finish", ()):
        editor.execute(statement)
    if op == "create_model":
        for spec in model.lowcode_entity["fields"]:
            sequence = field_type_registry.get(spec["type"]).sequence_name(model.lowcode_entity["key"], spec["key"])
            if sequence:
                editor.execute(f"CREATE SEQUENCE IF NOT EXISTS {_quote(sequence)}")
        editor.create_model(model)
    elif op == "add_field":
        if operation.get("sequence"):
            editor.execute(f"CREATE SEQUENCE IF NOT EXISTS {_quote(operation['sequence'])}")
        editor.add_field(model, new_field)
    elif op in ("alter_field", "restore_field", "remove_field", "park_field"):
        if operation.get("rename_sequence"):
            old_seq, new_seq = operation["rename_sequence"]
            editor.execute(f"ALTER SEQUENCE IF EXISTS {_quote(old_seq)} RENAME TO {_quote(new_seq)}")
        editor.alter_field(model, old_field, new_field)


def plan(old_body: dict | None, new_body: dict, *, execute: bool, models_pair: tuple | None = None,
         data_changes: dict | None = None, prepared: dict | None = None, measure: bool = True) -> Plan:
    """Plan (and with `execute`, run) the change of one entity's table from `old_body` to `new_body`.

    Steps run in an order where no column name is taken twice: removed fields' columns are
    renamed away first, then columns that move onto a name another column still holds are
    parked, then fields are altered, then added or restored.

    :param models_pair: the (old, new) model classes when the caller built them already.
    :param data_changes: what to do with rows a change would damage, by field key (see
        `data_change_errors`); run before the table changes.
    :param prepared: {field id: (phases done, statements ending them)} of the online phases run
        before the publish (`schema_online.finishing`): those statements replace the slow ones.
    :param measure: whether to count the rows the change would break (a full scan each); not for
        the SQL of the way back.
    """
    _assert_tenant_schema()
    data_changes = data_changes or {}
    errors = data_change_errors(old_body, new_body, data_changes)
    if errors:
        raise DefinitionValidationError(errors)
    data_statements = []
    key = new_body["key"]
    table = f"dm_{key}"
    result = Plan(key)
    old_model, new_model = models_pair or _model_pair(old_body, new_body)
    steps = []  # (operation, model, old_field, new_field)
    existing = _table_columns(table)
    if old_body is None:
        steps.append(({"op": "create_model", "entity": key}, new_model, None, None))
    else:
        old_specs = {spec["id"]: spec for spec in old_body["fields"]}
        new_specs = {spec["id"]: spec for spec in new_body["fields"]}
        old_fields = {field_id: _model_field(old_model, spec) for field_id, spec in old_specs.items()}
        new_fields = {field_id: _model_field(new_model, spec) for field_id, spec in new_specs.items()}
        successors = _successors(old_specs, new_specs, old_fields, new_fields, existing)
        removals, parking, alters, additions = [], [], [], []
        for field_id, old_spec in old_specs.items():
            old_field = old_fields[field_id]
            if field_id in new_specs or field_id in successors.values() or old_field is None:
                continue
            if old_field.many_to_many:
                result.operations.append({"op": "remove_field", "field": old_spec["key"], "kept": "link table"})
                continue
            removals.append(({"op": "remove_field", "field": old_spec["key"], "kept_as": removed_column(field_id)},
                             new_model, old_field, _removed_shape(old_field, field_id)))
        # Columns of fields that stay, under their current names: a rename onto one of them waits.
        staying = {old_fields[field_id].column: field_id for field_id in new_specs
                   if old_fields.get(field_id) is not None and not old_fields[field_id].many_to_many}
        kept_specs = None  # Read on the first field that is added back.
        for field_id, spec in new_specs.items():
            new_field = new_fields[field_id]
            old_id = field_id if field_id in old_specs else successors.get(field_id)
            old_spec = old_specs.get(old_id)
            old_field = old_fields.get(old_id)
            if new_field is None:
                continue
            if old_field is None:
                if new_field.many_to_many and new_field.remote_field.through._meta.db_table in \
                        connection.introspection.table_names():
                    continue  # Re-added: its link table was kept.
                if kept_specs is None:
                    kept_specs = _kept_specs(key, existing)
                kept_spec = _restorable(spec, new_specs, kept_specs, existing)
                if kept_spec is not None:
                    kept_field = _kept_field(new_model, new_field, kept_spec)
                    additions.append(({"op": "restore_field", "field": spec["key"], "from": kept_field.column},
                                      new_model, kept_field, new_field))
                    result.impact += _impact(table, spec, kept_spec, kept_field, new_field) if measure else []
                else:
                    operation = {"op": "add_field", "field": spec["key"], "type": spec["type"]}
                    sequence = field_type_registry.get(spec["type"]).sequence_name(key, spec["key"])
                    if sequence:
                        operation["sequence"] = sequence
                    additions.append((operation, new_model, None, new_field))
                    result.impact += _impact(table, spec, None, None, new_field) if measure else []
                continue
            items, statements = _data_change_impact(table, spec, old_spec, old_field, new_field,
                                                    data_changes.get(spec["key"], {})) if measure else ([], [])
            result.impact += items
            if statements:
                data_statements += statements
                result.operations.append({"op": "change_data", "field": spec["key"], **data_changes[spec["key"]]})
            with connection.schema_editor(collect_sql=True) as probe:
                changed = probe._field_should_be_altered(old_field, new_field) or old_field.column != new_field.column
            if not changed and old_id == field_id:
                continue
            operation = {"op": "alter_field", "field": spec["key"]}
            if old_id != field_id:
                operation["replaces"] = old_id  # Removed and added back with the same key: one column.
            elif old_spec["key"] != spec["key"]:
                operation["renamed_from"] = old_spec["key"]
                field_type = field_type_registry.get(spec["type"])
                if spec["type"] == old_spec["type"] and field_type.sequence_name(key, spec["key"]):
                    operation["rename_sequence"] = [field_type.sequence_name(key, old_spec["key"]),
                                                    field_type.sequence_name(key, spec["key"])]
            if not new_field.many_to_many:
                result.impact += _impact(table, spec, old_spec, old_field, new_field) if measure else []
            if staying.get(new_field.column, field_id) != field_id and not new_field.many_to_many:
                # Its new name is still another staying column's (a swap): park it under a free name first.
                parked = _renamed(old_field, f"_renaming_{field_id}")
                parking.append(({"op": "park_field", "field": old_spec["key"], "as": parked.column},
                                new_model, old_field, parked))
                old_field = parked
            if field_id in (prepared or {}):
                done, operation["finish"] = prepared[field_id]
                operation["online"] = sorted(done)
                old_field = _as_prepared(old_field, new_field, done)
            alters.append((operation, new_model, old_field, new_field))
        steps = removals + parking + alters + additions
    result.operations += [step[0] for step in steps]
    if execute and result.blocking:
        raise MigrationRefused(result.blocking)
    if execute:
        _at_the_end(lambda: _execute(table, result, data_statements, steps))
    else:
        with connection.schema_editor(collect_sql=True) as editor:
            for operation, model, old_field, new_field in steps:
                _run(editor, operation, model, old_field, new_field)
        result.sql = [statement.rstrip(";") for statement in editor.collected_sql]
    return result


def _execute(table: str, result: Plan, data_statements: list[tuple[str, list]], steps: list[tuple]) -> None:
    with connection.cursor() as cursor:
        # Deferred foreign-key checks pending in this transaction would block ALTER TABLE.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    with connection.execute_wrapper(_SqlRecorder(result.sql)), connection.cursor() as cursor:
        for statement, params in data_statements:
            cursor.execute(statement, params)
    with lock_timeout(table), connection.execute_wrapper(_SqlRecorder(result.sql)), \
            connection.schema_editor() as editor:
        for operation, model, old_field, new_field in steps:
            _run(editor, operation, model, old_field, new_field)


class _SqlRecorder:
    def __init__(self, statements: list[str]):
        self.statements = statements

    _NOISE = ("SET ", "SAVEPOINT ", "RELEASE SAVEPOINT ", "ROLLBACK TO SAVEPOINT ")

    def __call__(self, execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        # Keep the schema changes only: search path and savepoints are connection plumbing.
        if not sql.lstrip().upper().startswith(self._NOISE):
            self.statements.append(context["connection"].ops.last_executed_query(context["cursor"], sql, params))
        return result


def _estimated_rows(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = to_regclass(%s)",
                       [f"{connection.schema_name}.{table}"])
        row = cursor.fetchone()
    return row[0] if row and row[0] else 0


#: The builder's data changes for the publish under way (`publishing_with`), by entity key.
_data_changes: ContextVar[dict | None] = ContextVar("lowcode_data_changes", default=None)
#: What the publish under way runs last (`publishing_with`, `run_last`).
_last: ContextVar[list | None] = ContextVar("lowcode_publish_last", default=None)


@contextmanager
def publishing_with(entity_key: str, data_changes: dict | None):
    """Let the publish of `entity_key` run inside this block apply `data_changes` (see `plan`),
    and keep its table changes for `run_last()`.

    The publish hook is called by metadata's kind-agnostic publish, which knows nothing of them.
    """
    tokens = _data_changes.set({entity_key: data_changes or {}}), _last.set([])
    try:
        yield
    finally:
        _data_changes.reset(tokens[0])
        _last.reset(tokens[1])


def _at_the_end(work) -> None:
    """Run `work` by `run_last()` inside `publishing_with`, else now.

    From its first ALTER TABLE a transaction holds the table's lock until it commits: the rest of
    the publish (definitions, design rows, audit events) must come before, not while requests wait.
    """
    last = _last.get()
    if last is None:
        work()
    else:
        last.append(work)


def run_last() -> None:
    """Run the table changes of the publish under way: the last thing before its transaction commits."""
    last = _last.get() or []
    while last:
        last.pop(0)()


def apply_entity_version(definition, previous, *, author=None) -> SchemaMigration:
    """Run the migration from `previous` to `definition` (the entity kind's publish hook)."""
    from dynamic_models import schema_online  # It builds on this module.

    started = time.monotonic()
    old_body = previous.body if previous else None
    old_model, model = _model_pair(old_body, definition.body)  # Built once for all three uses.
    backward = plan(definition.body, old_body, execute=False, models_pair=(model, old_model), measure=False).sql \
        if old_body else [f"DROP TABLE {_quote('dm_' + definition.key)} CASCADE"]
    rbac.ensure_entity_permissions(model)
    prepared = schema_online.preparing(definition.key, definition.body)
    result = plan(old_body, definition.body, execute=True, models_pair=(old_model, model),
                  data_changes=(_data_changes.get() or {}).get(definition.key),
                  prepared=schema_online.finishing(prepared))
    migration = prepared or SchemaMigration(entity_key=definition.key)
    migration.from_version = previous.version if previous else None
    migration.to_version, migration.operations, migration.author = definition.version, result.operations, author
    migration.backward_sql = "\n".join(s.rstrip(";") + ";" for s in backward)
    migration.duration_ms = int((time.monotonic() - started) * 1000) + sum(
        phase.get("ms", 0) for phase in migration.phases)
    migration.rows_affected = _estimated_rows(f"dm_{definition.key}") if old_body else 0
    migration.status = SchemaMigration.Status.APPLIED
    migration.save()

    def record() -> None:  # Once the SQL has run.
        migration.forward_sql = "\n".join(s.rstrip(";") + ";" for s in schema_online.phase_sql(prepared) + result.sql)
        migration.duration_ms = int((time.monotonic() - started) * 1000) + sum(
            phase.get("ms", 0) for phase in migration.phases)
        migration.save(update_fields=["forward_sql", "duration_ms"])
        audit.record(dm_actions.MIGRATION_APPLY, target=migration, actor=author,
                     data={"entity": definition.key, "from": migration.from_version, "to": migration.to_version,
                           "sql": migration.forward_sql[:10_000]})

    _at_the_end(record)
    return migration


def removed_columns(entity_key: str) -> list[str]:
    return sorted(c for c in _table_columns(f"dm_{entity_key}") if c.startswith("_removed_"))


def purge_removed(entity_key: str) -> list[str]:
    """Drop the columns of removed fields of `entity_key` for good; return their names."""
    _assert_tenant_schema()
    columns = removed_columns(entity_key)
    with connection.cursor() as cursor:
        for column in columns:
            cursor.execute(f"ALTER TABLE {_quote('dm_' + entity_key)} DROP COLUMN {_quote(column)}")
    return columns
