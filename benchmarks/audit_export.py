"""Audit trail over 1M events: bulk load, streaming export with flat memory, seal and verify (AD-2, AD-4).

Measures, in tenant `bench_audit` (its trail is emptied and refilled on every run):
- load: 1M events by `INSERT ... SELECT generate_series` in committed chunks of 100k, every row
  going through the insert trigger (the event's transaction; no lock since issue 16, and no hash:
  the sealing hashes);
- `audit.services.record()` per event with 1M events in the table (each its own transaction);
- CSV export of all events through `audit.services.export` (what `lowcode audit export` runs) into
  a temporary file: rows/s, and this process's RSS (VmRSS) and peak RSS (VmHWM) at 0%, 25%, 50%
  and 100% of the rows; PASS when the RSS grows by less than 32 MiB from 0% to 100%;
- the same as JSON Lines (time only);
- `audit.services.seal_events()` sealing the 1M events into one block (hashing each), then
  `audit.services.verify()` over them (every event's and block's hash recomputed in SQL).

Run: .venv/bin/python benchmarks/audit_export.py [--quick] [--rows N]
"""

from __future__ import annotations

import os
import tempfile
import time

import _setup
from _setup import console, fmt_time

TENANT = "bench_audit"
CHUNK = 100_000
RSS_GROWTH_LIMIT_MIB = 32.0

LOAD_SQL = """
INSERT INTO audit_auditevent (created_at, actor_id, actor_repr, api_key_prefix, action, target_type, target_id,
                              target_repr, before, after, data, result, request_id, ip, user_agent)
SELECT now() - (%(total)s - g) * interval '1 second', NULL, 'user' || (g %% 50), '',
       (ARRAY['data.expense.update', 'data.expense.create', 'data.project.delete', 'auth.login',
              'data.expense.export'])[1 + g %% 5],
       'data.expense', (g %% 10000)::text, 'Expense ' || (g %% 10000),
       jsonb_build_object('amount', g %% 1000, 'title', 'Taxi ' || g),
       jsonb_build_object('amount', g %% 1000 + 1, 'title', 'Cab ' || g),
       jsonb_build_object('n', g), 'ok', md5(g::text), '10.0.0.1'::inet, 'bench-agent/1.0'
FROM generate_series(%(start)s, %(stop)s) AS g
ORDER BY g
"""


def memory_mib() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in MiB."""
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, amount = line.split()[:2]
                values[name.rstrip(":")] = int(amount) / 1024
    return values["VmRSS"], values["VmHWM"]


def main(argv: list[str] | None = None) -> int:
    args = _setup.parse_args(__doc__.splitlines()[0], argv, extra=lambda parser: parser.add_argument(
        "--rows", type=int, help="number of events (default 1,000,000; 100,000 with --quick)"))
    total = args.rows or (100_000 if args.quick else 1_000_000)
    record_calls = 500 if args.quick else 2000
    _setup.header(f"Audit trail: load, export and verify {total:,} events", args.quick)

    with _setup.django_environment(keep_servers=args.keep_servers):
        from django.db import connection, transaction

        from audit import services
        from audit.models import AuditEvent

        (tenant,) = _setup.ensure_tenants([TENANT])
        with _setup.in_tenant(tenant):
            # 1. Empty the bench tenant's trail (only the database superuser can).
            _setup.empty_audit_trail()

            # 2. Load through the insert trigger, in committed chunks.
            load_started = time.perf_counter()
            with _setup.progress() as bar:
                task = bar.add_task("INSERT ... SELECT generate_series, through the chaining trigger", total=total)
                for start in range(1, total + 1, CHUNK):
                    stop = min(total, start + CHUNK - 1)
                    with transaction.atomic(), connection.cursor() as cursor:
                        cursor.execute(LOAD_SQL, {"total": total, "start": start, "stop": stop})
                    bar.advance(task, stop - start + 1)
            load_seconds = time.perf_counter() - load_started
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE audit_auditevent")
                cursor.execute("SELECT pg_total_relation_size('audit_auditevent')")
                table_bytes = cursor.fetchone()[0]
            assert AuditEvent.objects.count() == total

            # 3. record() with the table full: one INSERT per call; each in its own transaction
            #    (commit and the after-commit alert check included), then all in one transaction.
            def one_record():
                services.record("data.expense.update", target_type="data.expense", target_id="1", after={"amount": 1})

            record_durations = _setup.per_call(one_record, record_calls, batch=record_calls // 4)
            started = time.perf_counter()
            with transaction.atomic():
                for _ in range(record_calls):
                    one_record()
            record_in_transaction = (time.perf_counter() - started) / record_calls

            # 4. CSV export into a temporary file, sampling memory at 0/25/50/100 %.
            queryset = services.filter_events()
            rows_to_export = queryset.count()
            marks = {0: memory_mib()}
            done = 0

            def sample(rows: int) -> None:
                nonlocal done
                before = done
                done += rows
                for percent in (25, 50):
                    if before < rows_to_export * percent / 100 <= done:
                        marks[percent] = memory_mib()
                bar.advance(task, rows)

            with tempfile.NamedTemporaryFile("w", encoding="utf-8", newline="", suffix=".csv", delete=False) as out, \
                    _setup.progress() as bar:
                task = bar.add_task("lowcode audit export --format csv (audit.services.export)", total=rows_to_export)
                export_started = time.perf_counter()
                written = services.export(out, queryset, "csv", progress=sample)
                export_seconds = time.perf_counter() - export_started
            marks[100] = memory_mib()
            csv_bytes = os.path.getsize(out.name)
            os.unlink(out.name)
            assert written == rows_to_export

            with open(os.devnull, "w") as devnull:
                jsonl_started = time.perf_counter()
                jsonl_written = services.export(devnull, queryset, "jsonl")
                jsonl_seconds = time.perf_counter() - jsonl_started

            # 5. seal everything into a block, then verify over everything.
            seal_started = time.perf_counter()
            services.seal_events()
            seal_seconds = time.perf_counter() - seal_started
            verify_started = time.perf_counter()
            verified = services.verify()
            verify_seconds = time.perf_counter() - verify_started

    growth = marks[100][0] - marks[0][0]
    flat = growth < RSS_GROWTH_LIMIT_MIB
    console.print()
    _setup.table("Load and record()", ["measure", "events", "time", "rate"], [
        ["load through the insert trigger", f"{total:,}", fmt_time(load_seconds),
         f"{total / load_seconds:,.0f} events/s"],
        ["table + indexes after VACUUM ANALYZE", f"{total:,}", f"{table_bytes / 2**20:,.0f} MiB", ""],
        ["record(), each committed, median of batches", f"{record_calls:,}",
         fmt_time(_setup.median(record_durations)), f"{1 / _setup.median(record_durations):,.0f} events/s"],
        ["record(), all in one transaction, per call", f"{record_calls:,}", fmt_time(record_in_transaction),
         f"{1 / record_in_transaction:,.0f} events/s"],
    ])
    _setup.table("Export (streamed, QuerySet.iterator(chunk_size=2000))", ["format", "rows", "time", "rows/s", "output"], [
        ["CSV to a file", f"{written:,}", fmt_time(export_seconds), f"{written / export_seconds:,.0f}",
         f"{csv_bytes / 2**20:,.0f} MiB"],
        ["JSON Lines to /dev/null", f"{jsonl_written:,}", fmt_time(jsonl_seconds),
         f"{jsonl_written / jsonl_seconds:,.0f}", ""],
    ])
    _setup.table("Memory of this process during the CSV export", ["rows exported", "RSS", "peak RSS (VmHWM)"], [
        [f"{percent}% ({int(rows_to_export * percent / 100):,})", f"{rss:.1f} MiB", f"{hwm:.1f} MiB"]
        for percent, (rss, hwm) in sorted(marks.items())
    ])
    _setup.table("seal_events() and verify()", ["measure", "events", "time", "rate", "result"], [
        ["seal into one block", f"{verified.count:,}", fmt_time(seal_seconds),
         f"{verified.count / seal_seconds:,.0f} events/s", f"{verified.blocks} blocks"],
        ["verify", f"{verified.count:,}", fmt_time(verify_seconds), f"{verified.count / verify_seconds:,.0f} events/s",
         "OK" if verified.ok else verified.message],
    ])
    console.print(f"[dim]Load: every row went through the BEFORE INSERT trigger (no trigger was disabled); "
                  f"{total // CHUNK or 1} INSERT ... SELECT statements of up to {CHUNK:,} rows, each committed. "
                  f"Export: all {rows_to_export:,} events, oldest first.[/dim]")
    console.print(f"RSS growth during the export: {growth:+.1f} MiB -> {_setup.verdict(flat)} "
                  f"(target < {RSS_GROWTH_LIMIT_MIB:.0f} MiB); verify: {_setup.verdict(verified.ok)}")
    return 0 if flat and verified.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
