"""Schema changes on a big table while it serves: the longest stall of a reader and a writer (issue 16).

In tenant `bench_schema`, entity `sc_big` is (re)created on every run and filled with 1M rows
(`--quick`: 100k). A reader (`SELECT` of a random row by id) and a writer (`INSERT` of a row)
then run every 10 ms, each on its own connection, while three changes are published through
`dynamic_models.services.publish_body`:
- "add an index": the text field `ref` gets `index`;
- "make a field unique": the text field `code` (distinct values) gets `unique`;
- "text to integer": the text field `amount` (whole numbers as text) becomes an integer.
Each change is published twice, side by side: online (the way a publish runs outside a
transaction: indexes built CONCURRENTLY, the unique constraint added USING that index, the
type change as shadow column + batched copy + swap) and inside one transaction (the way every
publish ran before, the DDL holding the table's lock until the commit); the change is undone
(not measured) between the two. A stall is the time one query of the reader or the writer
took; the table shows the longest of each during each publish and how many took over 50 ms,
and the same for a baseline of 20 s without any change (the machine's own hiccups).
PASS when no online change stalls either for more than 50 ms.

Run: .venv/bin/python benchmarks/schema_changes.py [--quick]
"""

from __future__ import annotations

import copy
import random
import threading
import time

import _setup
from _setup import console, fmt_time

TENANT = "bench_schema"
KEY = "sc_big"
CHUNK = 100_000
INTERVAL = 0.010
TARGET_STALL_MS = 50.0
BASELINE_SECONDS = 20
BODY = {"key": KEY, "label": "Schema changes", "display_field": "ref", "fields": [
    {"id": "ref0000001", "key": "ref", "type": "text", "options": {"max_length": 40}},
    {"id": "code000001", "key": "code", "type": "text", "options": {"max_length": 40}},
    {"id": "amount0001", "key": "amount", "type": "text", "options": {"max_length": 40}},
]}
CHANGES = {
    "index": ("add an index", "ref", {"index": True}),
    "unique": ("make a field unique", "code", {"unique": True}),
    "type": ("text to integer", "amount", {"type": "integer", "options": {}}),
}


def changed(body: dict, change: str) -> dict:
    _title, key, attributes = CHANGES[change]
    body = copy.deepcopy(body)
    for spec in body["fields"]:
        if spec["key"] == key:
            spec.update(attributes)
    return body


class Load:
    """A reader and a writer, each querying every INTERVAL on its own connection; every query's
    start and duration are kept."""

    def __init__(self, conninfo: dict, schema: str, rows: int):
        self.conninfo, self.schema, self.rows = conninfo, schema, rows
        self.samples: dict[str, list[tuple[float, float]]] = {"reader": [], "writer": []}
        self.errors: list[str] = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(role,), daemon=True) for role in self.samples]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _run(self, role: str) -> None:
        import psycopg

        # Not prepared: a prepared plan would fail once a type change swaps the column (as Django does not).
        with psycopg.connect(**self.conninfo, autocommit=True, prepare_threshold=None) as db:
            db.execute(f'SET search_path TO "{self.schema}", public')
            while not self.stopping.is_set():
                started = time.perf_counter()
                try:
                    if role == "reader":
                        db.execute(f"SELECT id, ref, code, amount FROM dm_{KEY} WHERE id = %s",
                                   [random.randint(1, self.rows)]).fetchall()
                    else:  # Literals: valid for the amount column as text and as bigint.
                        db.execute(f"INSERT INTO dm_{KEY} (created_at, updated_at, ref, code, amount) "
                                   f"VALUES (now(), now(), 'written', 'W{time.time_ns()}', '42')")
                except psycopg.Error as error:
                    self.errors.append(f"{role}: {error}")
                self.samples[role].append((started, time.perf_counter() - started))
                time.sleep(INTERVAL)

    def during(self, role: str, start: float, end: float) -> list[float]:
        """How long each query of `role` that ran (in part) between `start` and `end` took, in ms."""
        return [duration * 1000 for began, duration in self.samples[role] if began <= end and began + duration >= start]

    def longest(self, role: str, start: float, end: float) -> float:
        return max(self.during(role, start, end), default=0.0)

    def slow(self, start: float, end: float) -> str:
        """How many queries of both loops took over TARGET_STALL_MS, of how many."""
        durations = self.during("reader", start, end) + self.during("writer", start, end)
        return f"{sum(duration > TARGET_STALL_MS for duration in durations)} of {len(durations)}"


def fill(rows: int) -> float:
    from django.db import connection

    seconds = 0.0
    with _setup.progress() as bar, connection.cursor() as cursor:
        task = bar.add_task(f"Filling dm_{KEY} with {rows:,} rows", total=rows)
        for first in range(1, rows + 1, CHUNK):
            last = min(rows, first + CHUNK - 1)
            seconds += _setup.timed(lambda first=first, last=last: cursor.execute(
                f"INSERT INTO dm_{KEY} (created_at, updated_at, ref, code, amount) SELECT now(), now(), "
                "'Ref ' || mod(g, 5000), 'C' || g, (mod(g, 100000))::text FROM generate_series(%s, %s) AS g",
                [first, last]))[0]
            bar.update(task, completed=last)
        seconds += _setup.timed(lambda: cursor.execute(f"VACUUM ANALYZE dm_{KEY}"))[0]
    return seconds


def main(argv: list[str] | None = None) -> int:
    args = _setup.parse_args(__doc__.splitlines()[0], argv)
    rows = 100_000 if args.quick else 1_000_000
    _setup.header(f"Schema changes on {rows:,} rows under a reader and a writer every 10 ms", args.quick)
    results: dict[tuple[str, str], tuple[float, float, float]] = {}
    with _setup.django_environment(keep_servers=args.keep_servers):
        from django.db import connection, transaction

        from dynamic_models import services
        from metadata import services as metadata

        (tenant,) = _setup.ensure_tenants([TENANT])
        with _setup.in_tenant(tenant):
            if KEY in _setup.published_keys():
                metadata.archive("entity", KEY)
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS dm_{KEY} CASCADE")
            services.publish_body(BODY, note="benchmark: fresh entity")
            fill_seconds = fill(rows)
            db = connection.settings_dict
            conninfo = {"host": db["HOST"], "port": db["PORT"], "user": db["USER"],
                        "password": db["PASSWORD"] or None, "dbname": db["NAME"]}
            body = BODY
            with Load(conninfo, TENANT, rows) as load:
                time.sleep(BASELINE_SECONDS)
                baseline = (time.perf_counter() - BASELINE_SECONDS, time.perf_counter())
                for change, (title, _key, _attributes) in CHANGES.items():
                    for way in ("online", "in one transaction"):
                        target = changed(body, change)
                        with console.status(f"{title}, {way} ..."):
                            start = time.perf_counter()
                            if way == "online":
                                migration = services.publish_body(target, note=f"benchmark: {title}")
                            else:
                                with transaction.atomic():
                                    migration = services.publish_body(target, note=f"benchmark: {title}")
                            end = time.perf_counter()
                        phases = ", ".join(phase["phase"] for phase in migration.phases) or "-"
                        results[(change, way)] = (end - start, load.longest("reader", start, end),
                                                  load.longest("writer", start, end), load.slow(start, end), phases)
                        time.sleep(0.3)
                        with transaction.atomic():  # Undone, not measured.
                            services.publish_body(body, note="benchmark: undo")
                        time.sleep(0.3)
                    body = changed(body, change)  # The next change starts from this one's result.
                    with transaction.atomic():
                        services.publish_body(body, note=f"benchmark: {title}, kept")
                    time.sleep(0.3)  # Queries it held up end before the next window starts.
                base = (load.longest("reader", *baseline), load.longest("writer", *baseline), load.slow(*baseline))
            errors = load.errors

    _setup.table("Filling the table", ["table", "rows", "insert + VACUUM ANALYZE"],
                 [[f"dm_{KEY}", f"{rows:,}", fmt_time(fill_seconds)]])
    table_rows, ok = [[f"(none: {BASELINE_SECONDS} s baseline)", "-", "-", f"{base[0]:.0f} ms", f"{base[1]:.0f} ms",
                       base[2], "-", ""]], True
    for change, (title, _key, _attributes) in CHANGES.items():
        for way in ("online", "in one transaction"):
            seconds, reader, writer, slow, phases = results[(change, way)]
            passed = max(reader, writer) <= TARGET_STALL_MS
            if way == "online":
                ok &= passed
            table_rows.append([title, way, fmt_time(seconds), f"{reader:.0f} ms", f"{writer:.0f} ms", slow, phases,
                               _setup.verdict(passed) if way == "online" else ""])
    _setup.table("Longest stall of each query loop during each publish",
                 ["change", "how", "publish", "reader max", "writer max", f"> {TARGET_STALL_MS:.0f} ms",
                  "online phases",
                  f"<= {TARGET_STALL_MS:.0f} ms"], table_rows)
    if errors:
        console.print(f"[red]{len(errors)} queries failed[/red], the first: {errors[0]}")
    console.print(f"No online change stalls the reader or the writer for more than {TARGET_STALL_MS:.0f} ms: "
                  f"{_setup.verdict(ok and not errors)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
