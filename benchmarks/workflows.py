"""Workflows (WF-2, WF-4): start and complete approval processes; the inbox with 100k open tasks.

In tenant `bench_workflows`, the scenario's bundle (`project`, `expense`, the Expense claim and
the Expense approval workflow) and people (alice, mia, frank...) are loaded as `seed_demo` does.

- Start and complete: 1,000 expenses of alice's (amount under 1000), each started with
  `workflows.services.start` and approved by mia with `services.complete`: mark submitted, mia's
  task, the gateway, mark approved, the webhook step and the end, every step audited, each call
  its own transaction. Printed: processes per second (start + complete).
- The inbox: 100k open tasks assigned to mia and 100k in finance's queue (inserted with SQL, as
  viewflow rows of the same flow), plus the 1,000 done ones; then `services.inbox(mia)` (her tasks)
  and `services.inbox(frank, kind="claimable")` (the queues of his roles and departments), the
  first page of 50 fetched, median of 30 after a warm-up. Target: 50 ms.

Run: .venv/bin/python benchmarks/workflows.py [--quick]
"""

from __future__ import annotations

import time

import _setup
from _setup import console, fmt_time

TENANT = "bench_workflows"
TARGET_SECONDS = 0.050
PAGE = 50


def load_scenario() -> dict:
    """The acme bundle and people, once (kept for later runs); returns the people by user name."""
    from django.contrib.auth import get_user_model

    from dynamic_models import seed
    from metadata import services as metadata
    from metadata.bundles import load_bundle

    bundle = load_bundle((seed.EXAMPLES_DIR / "expenses.json").read_bytes())
    missing = [entry for entry in bundle["definitions"] if metadata.get_published(entry["kind"], entry["key"]) is None]
    seed._import(bundle, [entry for entry in missing if entry["kind"] not in seed.PEOPLE_KINDS])
    seed._acme_people()
    seed._import(bundle, [entry for entry in missing if entry["kind"] in seed.PEOPLE_KINDS])
    return {user.username: user for user in get_user_model().objects.all()}


def make_expenses(count: int, alice) -> list:
    """`count` new expenses of alice's, created in bulk (their creation is not what is measured)."""
    import datetime
    from decimal import Decimal

    from django.utils import timezone

    from dynamic_models import runtime

    expense = runtime.get_model("expense")
    today = timezone.localdate()
    return expense.objects.bulk_create([
        expense(title=f"Benchmark claim {index}", amount=Decimal("120.00") + index % 500, currency="CNY",
                category="travel", spent_on=today - datetime.timedelta(days=1), status="draft", submitted_by=alice,
                created_by=alice) for index in range(count)])


def start_and_complete(claims: list, people: dict) -> float:
    from viewflow.workflow.models import Task

    from workflows import services

    alice, mia = people["alice"], people["mia"]
    started = time.perf_counter()
    with _setup.progress() as bar:
        task = bar.add_task(f"Start and approve {len(claims):,} processes", total=len(claims))
        for claim in claims:
            process = services.start("expense_approval", claim, user=alice)
            services.complete(Task.objects.get(process=process, owner=mia, status="ASSIGNED"), user=mia,
                              outcome="approved")
            bar.advance(task)
    return time.perf_counter() - started


def fill_open_tasks(rows: int, mia, bob) -> float:
    """`rows` open tasks for mia and `rows` in finance's queue, each with its process (plain SQL), and
    a page of older ones for bob (found under everyone else's newer tasks)."""
    from django.db import connection
    from viewflow.workflow.models import Process, Task

    from workflows import flows

    flow = flows.published_flow("expense_approval")
    started = time.perf_counter()
    flow_ref = f"workflows/flows.{flow.__name__}"
    marker = "bench-open"
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM viewflow_task WHERE data->>'bench' = %s", [marker])
        cursor.execute("DELETE FROM viewflow_process WHERE data->>'bench' = %s", [marker])
        for node, owner, queue, status, count, age in (("manager", mia.pk, None, "ASSIGNED", rows, 0),
                                                       ("finance", None, "role:finance", "NEW", rows, 0),
                                                       ("manager", bob.pk, None, "ASSIGNED", PAGE, rows)):
            cursor.execute(f"""
                WITH processes AS (
                    INSERT INTO {Process._meta.db_table} (flow_class, status, created, data)
                    SELECT %s, 'NEW', now() - make_interval(secs => n + %s), %s::jsonb FROM generate_series(1, %s) AS n
                    RETURNING id, created)
                INSERT INTO {Task._meta.db_table} (flow_task, flow_task_type, status, created, assigned, token,
                                                   owner_id, owner_permission, process_id, data)
                SELECT %s, 'HUMAN', %s, created, created, 'start', %s, %s, id, %s::jsonb FROM processes""",
                [flow_ref, age, f'{{"bench": "{marker}"}}', count, f"{flow_ref}.n_{node}", status, owner, queue,
                 f'{{"bench": "{marker}"}}'])
        cursor.execute(f"VACUUM ANALYZE {Task._meta.db_table}")
        cursor.execute(f"VACUUM ANALYZE {Process._meta.db_table}")
    return time.perf_counter() - started


def inbox_page(user, kind: str) -> int:
    from workflows import services

    return len(list(services.inbox(user, kind=kind)[:PAGE]))


def main(argv: list[str] | None = None) -> int:
    args = _setup.parse_args(__doc__.splitlines()[0], argv)
    processes, rows, rounds = (100, 10_000, 10) if args.quick else (1_000, 100_000, 30)
    _setup.header("Workflows: approvals per second, the inbox with many open tasks", args.quick)

    with _setup.django_environment(keep_servers=args.keep_servers):
        from django.conf import settings
        from django.db import connection

        from rbac import services as rbac
        from workflows import services

        # Notification mail (workflows' channels) is composed and kept in memory, not printed.
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

        (tenant,) = _setup.ensure_tenants([TENANT])
        with _setup.in_tenant(tenant):
            people = load_scenario()
            _setup.empty_audit_trail()
            claims = make_expenses(processes, people["alice"])
            seconds = start_and_complete(claims, people)
            rate = processes / seconds
            _setup.table(f"Start and complete {processes:,} approval processes (one approval each)",
                         ["processes", "total", "per process", "processes per second"],
                         [[f"{processes:,}", f"{seconds:.1f} s", fmt_time(seconds / processes), f"{rate:,.1f}"]])

            load_seconds = fill_open_tasks(rows, people["mia"], people["bob"])
            console.print(f"[dim]Inserted {rows:,} open tasks for mia and {rows:,} in finance's queue "
                          f"in {load_seconds:.1f} s.[/dim]")
            rbac.clear_local_cache()
            measured = {f"mia's tasks ({rows:,} open)": (people["mia"], "mine"),
                        f"finance queue for frank ({rows:,} open)": (people["frank"], "claimable"),
                        f"bob's tasks ({PAGE} open, older than all)": (people["bob"], "mine")}
            table, ok = [], True
            for label, (user, kind) in measured.items():
                for _ in range(5):
                    assert inbox_page(user, kind) == PAGE
                times = _setup.repeat(lambda user=user, kind=kind: inbox_page(user, kind), rounds)
                with connection.cursor() as cursor:
                    sql, params = services.inbox(user, kind=kind)[:PAGE].query.sql_with_params()
                    cursor.execute(f"EXPLAIN {sql}", params)
                    plan = next((row[0].strip(" ->") for row in cursor.fetchall()
                                 if "Scan" in row[0] and "viewflow_task" in row[0]), "?")
                median = _setup.median(times)
                ok = ok and median < TARGET_SECONDS
                table.append([label, fmt_time(median), fmt_time(min(times)), plan.split("  (")[0][:70],
                              f"{_setup.verdict(median < TARGET_SECONDS)} < {fmt_time(TARGET_SECONDS)}"])
            _setup.table(f"Inbox: the first {PAGE} tasks, median of {rounds}",
                         ["inbox", "median", "best", "first scan of the plan", "target"], table)
            console.print("[dim]services.inbox() evaluated in process (the query and its rows; no page "
                          "rendering); rbac's effective roles cached as in a request.[/dim]")
            return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
