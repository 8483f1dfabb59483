"""Adding a field to a big table: publish time on 1M rows against 10k rows (DM-3).

In tenant `bench_addfield`, two entities are (re)created from scratch on every run, one filled
with 10k rows and one with 1M rows (`INSERT ... SELECT generate_series`, in committed chunks,
then VACUUM ANALYZE). Each is then republished through `dynamic_models.services.publish_body`,
alternating sizes, with the body extended by:
- "add nullable field": a nullable text field;
- "add field with default": a required integer field with a default (NOT NULL DEFAULT 0).
Field ids stay stable between versions. Each publish is its own committed transaction. The
figures are the median of the repetitions: `SchemaMigration.duration_ms` (migration only) and
the wall time of `publish_body` (validation, migration, metadata, snapshot). PASS when the
large/small ratio of both is within 2x.

Run: .venv/bin/python benchmarks/add_field.py [--quick] [--repeat N]
"""

from __future__ import annotations

import _setup
from _setup import console, fmt_time

TENANT = "bench_addfield"
CHUNK = 100_000
OPERATIONS = {
    "nullable": "add nullable field",
    "default": "add field with default",
}


def base_body(key: str) -> dict:
    return {"key": key, "label": f"Add-field {key}", "display_field": "title", "fields": [
        {"id": "title00001", "key": "title", "type": "text", "options": {"max_length": 200}},
        {"id": "amount0001", "key": "amount", "type": "decimal", "options": {"max_digits": 12, "decimal_places": 2}},
        {"id": "qty0000001", "key": "qty", "type": "integer", "options": {}},
        {"id": "done000001", "key": "done", "type": "boolean", "options": {}},
        {"id": "spenton001", "key": "spent_on", "type": "date", "options": {}},
    ]}


def new_field(operation: str, number: int) -> dict:
    if operation == "nullable":
        return {"id": f"nullable{number:03d}", "key": f"note_{number}", "type": "text",
                "options": {"max_length": 200}}
    return {"id": f"withdefault{number:03d}", "key": f"priority_{number}", "type": "integer",
            "required": True, "default": 0, "options": {}}


def recreate(key: str) -> dict:
    """Take `key` out of service and drop its table if an earlier run left it; publish it anew."""
    from django.db import connection

    from dynamic_models import services
    from metadata import services as metadata

    if key in _setup.published_keys():
        metadata.archive("entity", key)
    assert connection.schema_name == TENANT
    with connection.cursor() as cursor:
        cursor.execute(f'DROP TABLE IF EXISTS "dm_{key}" CASCADE')
    body = base_body(key)
    services.publish_body(body, note="benchmark: fresh entity")
    return body


def fill(key: str, rows: int) -> float:
    """Insert `rows` rows in committed chunks; return the seconds it took."""
    from django.db import connection

    started = 0.0
    with _setup.progress() as bar:
        task = bar.add_task(f"Filling dm_{key} with {rows:,} rows", total=rows)
        with connection.cursor() as cursor:
            for first in range(1, rows + 1, CHUNK):
                last = min(rows, first + CHUNK - 1)
                started += _setup.timed(lambda first=first, last=last: cursor.execute(
                    f'INSERT INTO "dm_{key}" (created_at, updated_at, title, amount, qty, done, spent_on) '
                    "SELECT now(), now(), 'Row ' || g, mod(g, 100000) / 100.0, mod(g, 1000), "
                    "mod(g, 2) = 0, date '2026-01-01' + mod(g, 365)::int FROM generate_series(%s, %s) AS g", [first, last]))[0]
                bar.update(task, completed=last)
            bar.update(task, description=f"VACUUM ANALYZE dm_{key}")
            started += _setup.timed(lambda: cursor.execute(f'VACUUM ANALYZE "dm_{key}"'))[0]
    return started


def main(argv: list[str] | None = None) -> int:
    args = _setup.parse_args(__doc__.splitlines()[0], argv, extra=lambda parser: parser.add_argument(
        "--repeat", type=int, default=None, help="publishes per operation and size (default 5, --quick 3)"))
    repeats = args.repeat or (3 if args.quick else 5)
    sizes = {"10k": 10_000, "100k": 100_000} if args.quick else {"10k": 10_000, "1M": 1_000_000}
    small, large = list(sizes)
    _setup.header("Add a field: publish time against table size", args.quick)

    results: dict[tuple[str, str], list[tuple[int, float]]] = {}
    fill_times = {}
    with _setup.django_environment(keep_servers=args.keep_servers):
        from django.db import connection

        from dynamic_models import runtime, services

        (tenant,) = _setup.ensure_tenants([TENANT])
        with _setup.in_tenant(tenant):
            bodies = {}
            with console.status("Recreating the entities from scratch ..."):
                for label in sizes:
                    bodies[label] = recreate(f"addf_{label.lower()}")
            for label, rows in sizes.items():
                fill_times[label] = fill(bodies[label]["key"], rows)
            for label in sizes:
                model = runtime.get_model(bodies[label]["key"])
                assert model.all_objects.count() == sizes[label], "the table was not filled"
            with _setup.progress() as bar:
                task = bar.add_task("Publishing added fields", total=repeats * len(OPERATIONS) * len(sizes))
                for number in range(repeats):
                    for operation in OPERATIONS:
                        for label in sizes:
                            body = bodies[label]
                            body = bodies[label] = {**body, "fields": [*body["fields"], new_field(operation, number)]}
                            note = f"benchmark: {OPERATIONS[operation]}"
                            seconds, migration = _setup.timed(
                                lambda body=body, note=note: services.publish_body(body, note=note))
                            assert migration.operations[-1]["op"] == "add_field", migration.operations
                            assert not connection.in_atomic_block
                            results.setdefault((operation, label), []).append((migration.duration_ms, seconds))
                            bar.advance(task)
            columns = [f.column for f in runtime.get_model(bodies[large]["key"])._meta.concrete_fields]
            ddl = [line for line in migration.forward_sql.splitlines() if line.startswith("ALTER TABLE")]
            console.print(f"[dim]dm_{bodies[large]['key']} now has {len(columns)} columns; DDL of the last "
                          f"publish: {' '.join(ddl)}[/dim]")

    def med(operation, label, index):
        return _setup.median([run[index] for run in results[(operation, label)]])

    _setup.table("Filling the tables", ["table", "rows", "insert + VACUUM ANALYZE"],
                 [[f"dm_addf_{label.lower()}", f"{rows:,}", fmt_time(fill_times[label])]
                  for label, rows in sizes.items()])
    detail = []
    for operation, title in OPERATIONS.items():
        for label in sizes:
            runs = results[(operation, label)]
            detail.append([title, label, ", ".join(str(ms) for ms, _wall in runs),
                           f"{med(operation, label, 0):.0f} ms",
                           ", ".join(f"{wall * 1000:.0f}" for _ms, wall in runs), fmt_time(med(operation, label, 1))])
    _setup.table(f"Each publish ({repeats} per operation and size)",
                 ["operation", "rows", "duration_ms of each", "median", "wall ms of each", "median wall"], detail)

    summary, all_ok = [], True
    for operation, title in OPERATIONS.items():
        ms_ratio = med(operation, large, 0) / max(med(operation, small, 0), 1)
        wall_ratio = med(operation, large, 1) / med(operation, small, 1)
        ok = ms_ratio <= _setup.TARGET_ADD_FIELD_RATIO and wall_ratio <= _setup.TARGET_ADD_FIELD_RATIO
        all_ok &= ok
        summary.append([title, f"{med(operation, small, 0):.0f} ms", f"{med(operation, large, 0):.0f} ms",
                        f"{ms_ratio:.2f}x", fmt_time(med(operation, small, 1)), fmt_time(med(operation, large, 1)),
                        f"{wall_ratio:.2f}x", _setup.verdict(ok)])
    _setup.table(f"{large} rows against {small} rows (medians)",
                 ["operation", f"migration {small}", f"migration {large}", "ratio", f"wall {small}",
                  f"wall {large}", "ratio", f"within {_setup.TARGET_ADD_FIELD_RATIO:.0f}x"], summary)
    _setup.bar_chart("Median publish wall time", [
        (f"{OPERATIONS[operation]}, {label}", med(operation, label, 1), fmt_time(med(operation, label, 1)))
        for operation in OPERATIONS for label in sizes])
    _setup.bar_chart(f"{large}/{small} ratio of the wall time (target <= {_setup.TARGET_ADD_FIELD_RATIO:.0f}x)", [
        (OPERATIONS[operation], med(operation, large, 1) / med(operation, small, 1),
         f"{med(operation, large, 1) / med(operation, small, 1):.2f}x") for operation in OPERATIONS]
        + [("target", _setup.TARGET_ADD_FIELD_RATIO, f"{_setup.TARGET_ADD_FIELD_RATIO:.2f}x")])
    console.print(f"Add-field time on {large} rows within {_setup.TARGET_ADD_FIELD_RATIO:.0f}x of {small}: "
                  f"{_setup.verdict(all_ok)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
