"""RBAC and audit: a department-scoped list against an unrestricted one, audited writes against unaudited ones.

In tenant `bench_rbac` (settings `benchmarks.bench_settings`, as api_overhead.py), the scenario's
`project` and `expense` are published; 100 projects and 100k expenses (api_overhead.py's rows, with
`submitted_by` spread over 200 users) are loaded by COPY on every run, then VACUUM ANALYZE. The 200
users sit in 20 departments of 10 (the first of each is its manager); roles come from
`rbac.services`, as in the scenario: `manager` (view on expense, a `department` scope on
`submitted_by`, iban masked) held by mia, the manager of Sales (10 users: about 5,000 visible
expenses), and `finance` (view, change, export, scope `all`) held by frank; `bench_rbac` is a
superuser. The tenant's audit trail is emptied at the start of each run.

1. List through the real API, in process (Django test Client, one API key per user, the tenant's
   host): `/api/v1/data/expense/?page_size=50` and `...&status=submitted`, as the superuser, frank
   and mia, in interleaved rounds (which side goes first rotates). Printed: median req/s, CPU per
   request, queries per request, and the median over the rounds of mia's time per request /
   the superuser's (target <= 1.2) and / frank's; then the list's expense queries run again from
   here (wall time, planning time, EXPLAIN ANALYZE), next to a what-if of the scoped ones with each
   outer `IN (SELECT ...)` written `= ANY(ARRAY(SELECT ...))`, and the expense table's indexes.
2. Writes: the same updates (new title and amount of random records) and creates, each in its own
   `transaction.atomic()`, through `dynamic_models.records.save` (audited) and
   `dynamic_models.validation.save_record` (the same save without the audit event), in interleaved
   rounds: ops/s and the median over the rounds of audited / unaudited time (target <= 1.3). Also
   PATCH through the API as frank, against the same requests with `records.save` replaced in this
   process by a stand-in calling `validation.save_record` (the product always audits).
3. Permission checks: `rbac.check`, `rbac.field_rules` and `rbac.scope_queryset` (built, not
   evaluated) 10,000 times each under CaptureQueriesContext after a warm-up: queries (target 0),
   cache reads and µs per call, without and with `request=`; then the first call after `rbac.bump()`.

Run: .venv/bin/python benchmarks/rbac_audit.py [--quick] [--sql] [--profile N]
"""

from __future__ import annotations

import datetime
import decimal
import gc
import os
import random
import re
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import _setup
import api_overhead
from _setup import console, fmt_time

os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.bench_settings"  # Throttle rates out of reach, kept connections.

TENANT = "bench_rbac"
TARGET_LIST_RATIO = 1.2
TARGET_WRITE_RATIO = 1.3
CHECK_CALLS = 10_000
ADMIN, FRANK, MIA = "bench_rbac", "frank", "mia"
SIDE_LABELS = {ADMIN: "superuser", FRANK: "all scope (frank)", MIA: "department scope (mia)"}
KEY_NAME = "rbac_audit benchmark"
DEPARTMENTS = ["Sales", "Finance", "Marketing", "Engineering", "Support", "Operations", "Legal", "People",
               "Procurement", "Logistics", "Research", "Design", "Quality", "Security", "IT", "Facilities",
               "Training", "Customer Success", "Partnerships", "Strategy"]
PER_DEPARTMENT = 10
USER_PREFIX = "bench_rbac_u"
AUDITED, UNAUDITED, EVENT_ONLY, EVENT_LOCKED = "audited", "unaudited", "event only", "event, lock until commit"


@dataclass
class Side:
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    count: int = 0
    rounds: list[float] = field(default_factory=list)  # seconds per operation in each round
    queries: list[str] = field(default_factory=list)

    def add(self, seconds: float, cpu: float, count: int) -> None:
        self.seconds += seconds
        self.cpu_seconds += cpu
        self.count += count
        self.rounds.append(seconds / count)

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    @property
    def median_rate(self) -> float:
        return 1 / _setup.median(self.rounds)

    @property
    def cpu_per_op(self) -> float:
        return self.cpu_seconds / self.count


def ratio_of(slow: Side, fast: Side) -> tuple[float, list[float]]:
    """Median over the rounds of slow's time per operation / fast's, and the round ratios."""
    per_round = [s / f for s, f in zip(slow.rounds, fast.rounds, strict=True)]
    return _setup.median(per_round), per_round


def spread(values: list[float]) -> str:
    if len(values) < 4:
        return "-"
    quartiles = statistics.quantiles(values, n=4)
    return f"{quartiles[0]:.2f}-{quartiles[2]:.2f}"


# --- set-up ----------------------------------------------------------------------------------


def publish_scenario() -> None:
    from dynamic_models import services
    from metadata.services import published_bodies

    published = published_bodies("entity")
    todo = [body for body in api_overhead.scenario_bodies()
            if body["key"] not in published or published[body["key"]].body != services.normalize_body(body)]
    if todo:
        with console.status(f"Publishing {', '.join(body['key'] for body in todo)} in {TENANT} ..."):
            for body in todo:
                services.publish_body(body, note="benchmark set-up")


def people() -> dict:
    """The superuser, frank, and the 200 department users (mia first); created once, kept."""
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    total = len(DEPARTMENTS) * PER_DEPARTMENT
    names = [MIA, *(f"{USER_PREFIX}{index:03d}" for index in range(1, total))]
    existing = set(user_model.objects.filter(username__in=[*names, FRANK, ADMIN]).values_list("username", flat=True))
    missing = []
    for name in [*names, FRANK]:
        if name not in existing:
            user = user_model(username=name, email=f"{name}@example.com")
            user.set_unusable_password()
            missing.append(user)
    user_model.objects.bulk_create(missing)
    if ADMIN not in existing:
        user_model.objects.create_superuser(ADMIN, f"{ADMIN}@example.com", password=None)
    by_name = user_model.objects.in_bulk([*names, FRANK, ADMIN], field_name="username")
    return {"admin": by_name[ADMIN], "frank": by_name[FRANK], "mia": by_name[MIA],
            "department_users": [by_name[name] for name in names]}


def roles_and_departments(users: dict) -> None:
    """The departments, `manager` (department scope) for mia and `finance` (scope all) for frank."""
    from rbac import services as rbac
    from rbac.models import ColumnRule, DataScope, Department, Role

    members = users["department_users"]
    with _setup.progress() as bar:
        missing = [name for name in DEPARTMENTS if not Department.objects.filter(name=name).exists()]
        task = bar.add_task("Departments and roles through rbac.services (kept for later runs)",
                            total=len(missing) + 2)
        for name in missing:
            index = DEPARTMENTS.index(name)
            team = members[index * PER_DEPARTMENT:(index + 1) * PER_DEPARTMENT]
            rbac.create_department(name, managers=team[:1], members=team[1:])
            bar.advance(task)
        manager = Role.objects.filter(key="manager").first() or rbac.create_role(
            "manager", "Manager", grants=["data.expense.view"])
        if not manager.scopes.filter(entity_key="expense", kind=DataScope.Kind.DEPARTMENT).exists():
            rbac.add_scope(manager, "expense", DataScope.Kind.DEPARTMENT, owner_field="submitted_by")
        if not manager.column_rules.filter(entity_key="expense", field_key="iban").exists():
            rbac.set_column_rule(manager, "expense", "iban", ColumnRule.Rule.MASKED)
        if not manager.users.filter(pk=users["mia"].pk).exists():
            rbac.assign_role(users["mia"], manager)
        bar.advance(task)
        finance = Role.objects.filter(key="finance").first() or rbac.create_role(
            "finance", "Finance", grants=["data.expense.view", "data.expense.change", "data.expense.export"])
        if not finance.scopes.filter(entity_key="expense", kind=DataScope.Kind.ALL).exists():
            rbac.add_scope(finance, "expense", DataScope.Kind.ALL)
        if not finance.users.filter(pk=users["frank"].pk).exists():
            rbac.assign_role(users["frank"], finance)
        bar.advance(task)


def expense_rows(count: int, creator_id: int, owner_ids: list[int]) -> list[tuple]:
    """api_overhead.py's expenses, each submitted by one of `owner_ids` (drafts too: their owner)."""
    rng = random.Random(3)
    return [(*row[:-1], owner_ids[rng.randrange(len(owner_ids))])
            for row in api_overhead.expense_rows(count, creator_id)]


def load(models: dict[str, type], rows: int, creator_id: int, owner_ids: list[int]) -> float:
    """Empty `project` and `expense`, COPY the rows in, VACUUM ANALYZE (and ANALYZE the scope's tables)."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from guardian.models import GroupObjectPermission, UserObjectPermission

    from dynamic_models.field_types import AutoNumberType
    from rbac.models import Department

    qn = connection.ops.quote_name
    data = {"project": (api_overhead.PROJECT_COLUMNS, api_overhead.project_rows(creator_id)),
            "expense": (api_overhead.EXPENSE_COLUMNS, expense_rows(rows, creator_id, owner_ids))}
    started = time.perf_counter()
    with _setup.progress() as bar, connection.cursor() as cursor:
        task = bar.add_task(f"Loading {api_overhead.PROJECTS} projects and {rows:,} expenses (COPY)",
                            total=sum(len(values) for _columns, values in data.values()))
        cursor.execute(f"TRUNCATE {qn(models['expense']._meta.db_table)}, {qn(models['project']._meta.db_table)} "
                       "RESTART IDENTITY")
        cursor.execute(f"ALTER SEQUENCE {qn(AutoNumberType.sequence_name('expense', 'number'))} RESTART")
        for key, (columns, values) in data.items():
            model = models[key]
            names = ", ".join(qn(model._meta.get_field(name).column) for name in columns)
            for first in range(0, len(values), api_overhead.CHUNK):
                chunk = values[first:first + api_overhead.CHUNK]
                with cursor.cursor.copy(f"COPY {qn(model._meta.db_table)} ({names}) FROM STDIN") as copy:
                    for row in chunk:
                        copy.write_row(row)
                bar.advance(task, len(chunk))
            cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [model._meta.db_table, len(values)])
        bar.update(task, description="VACUUM ANALYZE")
        for model in models.values():
            cursor.execute(f"VACUUM ANALYZE {qn(model._meta.db_table)}")
        for model in (get_user_model(), Department, Department.members.through, Department.managers.through,
                      UserObjectPermission, GroupObjectPermission):
            cursor.execute(f"ANALYZE {qn(model._meta.db_table)}")
    return time.perf_counter() - started


def api_keys(users: dict) -> dict[str, str]:
    from lowcode.apikeys import services as apikeys
    from lowcode.apikeys.models import ApiKey

    ApiKey.objects.filter(name=KEY_NAME).delete()  # The previous run's.
    scopes = {ADMIN: ["*:read"], FRANK: ["*:write"], MIA: ["*:read"]}  # frank also PATCHes (section 2).
    return {side: apikeys.create_key(users[key], name=KEY_NAME, scopes=scopes[side])[1]
            for side, key in ((ADMIN, "admin"), (FRANK, "frank"), (MIA, "mia"))}


# --- 1. lists through the API ------------------------------------------------------------------


LISTS = {"list": "/api/v1/data/expense/?page_size=50",
         "filtered": "/api/v1/data/expense/?status=submitted&page_size=50"}
LIST_LABELS = {"list": "list ?page_size=50", "filtered": "list ?status=submitted&page_size=50"}


def get_batch(client, path: str, count: int) -> tuple[float, float]:
    bad = None
    cpu, started = time.process_time(), time.perf_counter()
    for _ in range(count):
        response = client.get(path)
        if response.status_code != 200:
            bad = response
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if bad is not None:
        raise RuntimeError(f"GET {path}: HTTP {bad.status_code} {bad.content[:500]!r}")
    return seconds, cpu


def captured(func: Callable[[], object]) -> list[str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        func()
    return [query["sql"] for query in queries.captured_queries]


def measure_lists(clients: dict, rounds: int, batch: int, warmup: int, label: str) -> dict[str, dict[str, Side]]:
    sides = list(clients)
    results = {op: {side: Side() for side in sides} for op in LISTS}
    with _setup.progress() as bar:
        task = bar.add_task(label, total=len(LISTS) * len(sides) * (rounds * batch + warmup))
        for op, path in LISTS.items():
            for side in sides:
                get_batch(clients[side], path, warmup)
                results[op][side].queries = captured(lambda side=side, path=path: clients[side].get(path))
                bar.advance(task, warmup)
            for number in range(rounds):
                shift = number % len(sides)
                for side in sides[shift:] + sides[:shift]:  # Each side goes first equally often.
                    gc.collect()
                    seconds, cpu = get_batch(clients[side], path, batch)
                    results[op][side].add(seconds, cpu, batch)
                    bar.advance(task, batch)
    return results


def list_tables(results: dict, rounds: int, title: str) -> list[tuple[str, float]]:
    """Print the list figures; return (label, ratio mia / superuser) per list."""
    summary, cpu, ratios = [], [], []
    for op in LISTS:
        sides = results[op]
        ratio, per_round = ratio_of(sides[MIA], sides[ADMIN])
        ratio_all, _rounds = ratio_of(sides[MIA], sides[FRANK])
        ratios.append((LIST_LABELS[op], ratio))
        summary.append([LIST_LABELS[op], *(f"{sides[side].median_rate:,.1f}" for side in (ADMIN, FRANK, MIA)),
                        f"{ratio:.3f}", spread(per_round), f"{ratio_all:.3f}",
                        f"{_setup.verdict(ratio <= TARGET_LIST_RATIO)} <= {TARGET_LIST_RATIO}"])
        cpu.append([LIST_LABELS[op], *(fmt_time(sides[side].cpu_per_op) for side in (ADMIN, FRANK, MIA)),
                    f"{sides[MIA].cpu_per_op / sides[ADMIN].cpu_per_op:.3f}",
                    " / ".join(str(len(sides[side].queries)) for side in (ADMIN, FRANK, MIA))])
    _setup.table(f"{title}: req/s (median of {rounds} rounds) and time ratio department scope / unrestricted",
                 ["list", "superuser req/s", "all scope req/s", "dept scope req/s", "ratio mia/superuser",
                  "middle half", "ratio mia/frank", "target"], summary)
    _setup.table(f"{title}: CPU time of this process per request (the database's not included) and SQL queries",
                 ["list", "superuser CPU", "all scope CPU", "dept scope CPU", "CPU ratio mia/superuser",
                  "queries super / all / dept"], cpu)
    return ratios


def expense_queries(queries: list[str], table: str) -> dict[str, str]:
    """The count and the page query of one list request, by kind."""
    found = {}
    for sql in queries:
        if sql.lstrip().upper().startswith("SELECT") and f'"{table}"' in sql.split(" WHERE ")[0]:
            found["count" if "COUNT(*)" in sql.upper() else "page"] = sql
    return found


def any_array(sql: str) -> str:
    """The same SQL with each outer `<column> IN (SELECT ...)` written `<column> = ANY(ARRAY(SELECT ...))`.

    A what-if for the scope's SQL shape: PostgreSQL runs `ARRAY(subquery)` once (an InitPlan) and can
    then use the column's index, which it cannot do for an OR of hashed IN-subplans.
    """
    out, position = [], 0
    while match := _IN_SELECT.search(sql, position):
        opening = match.end() - len("SELECT ") - 1
        depth, end = 0, opening
        for end in range(opening, len(sql)):
            depth += {"(": 1, ")": -1}.get(sql[end], 0)
            if depth == 0:
                break
        out.append(f"{sql[position:match.start()]}{match.group(1)} = ANY(ARRAY({sql[opening + 1:end]}))")
        position = end + 1
    return "".join(out) + sql[position:]


_IN_SELECT = re.compile(r'("[^"]+"\."[^"]+") IN \(SELECT ')


def run_sql(sql: str, times: int = 7) -> tuple[float, float, list[str], object]:
    """The query's wall time from here (median of `times` runs, ms: planning, execution and the round trip),
    its planning time (EXPLAIN ANALYZE, TIMING OFF: per-node timing inflates a scan of many rows), the plan,
    and the query's first value."""
    from django.db import connection

    walls, planning = [], []
    with connection.cursor() as cursor:
        for _ in range(times):
            started = time.perf_counter()
            cursor.execute(sql)
            result = cursor.fetchall()
            walls.append((time.perf_counter() - started) * 1e3)
        for _ in range(3):
            cursor.execute("EXPLAIN (ANALYZE, TIMING OFF, BUFFERS) " + sql)
            plan = [row[0] for row in cursor.fetchall()]
            planning += [float(line.split(":")[1].split()[0]) for line in plan if line.startswith("Planning Time")]
    return _setup.median(walls), _setup.median(planning), plan, result[0][0]


def explain(lists: dict, table: str, full: bool) -> list[list[str]]:
    """Time and EXPLAIN the expense queries of one list request (superuser, mia, and mia's rewritten as a
    what-if); print the plans' top nodes (whole plans with `full`); return the table's rows."""
    rows = []
    for op in LISTS:
        admin = expense_queries(lists[op][ADMIN].queries, table)
        mia = expense_queries(lists[op][MIA].queries, table)
        for kind in ("count", "page"):
            figures = []
            for label, sql in ((SIDE_LABELS[ADMIN], admin[kind]), (SIDE_LABELS[MIA], mia[kind]),
                               ("department scope, = ANY(ARRAY(...)) what-if", any_array(mia[kind]))):
                wall, planning, plan, first = run_sql(sql)
                figures.append((wall, planning, first))
                console.print(f"[bold]{LIST_LABELS[op]}, {kind} query, {label}[/]: {wall:.2f} ms "
                              f"(planning {planning:.2f} ms)")
                shown = plan if full else [line for line in plan if not line.startswith(" " * 10)][:6]
                for line in shown:
                    if not line.lstrip().startswith(("Planning", "Execution", "Buffers")):
                        console.print(f"  [dim]{line[:140]}[/dim]")
            same = "same" if figures[1][2] == figures[2][2] else "[red]differs[/]"
            rows.append([f"{LIST_LABELS[op]}: {kind}",
                         *(f"{wall:.2f} ms ({planning:.2f})" for wall, planning, _first in figures), same])
        console.print()
    return rows


def indexes(table: str) -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %s "
                       "ORDER BY indexname", [table])
        return [row[0] for row in cursor.fetchall()]


# --- 2. writes ------------------------------------------------------------------------------


def write_functions() -> dict[str, Callable]:
    from dynamic_models import records, validation

    return {AUDITED: records.save, UNAUDITED: validation.save_record, EVENT_ONLY: save_with_event,
            EVENT_LOCKED: save_with_event_locked}


def save_with_event(record, *, user):
    """`validation.save_record` and the audit event `records.save` writes with it, nothing else of
    `records.save` (permission checks, file fields, workflow triggers): what the audit adds to a write."""
    from audit import services as audit
    from dynamic_models import audit_actions, validation

    verb = "create" if record._state.adding else "update"
    validation.save_record(record, user=user)
    audit.record_later(audit_actions.RECORD_ACTIONS[verb].of(record._meta.model_name), target=record, actor=user,
                       after={"title": record.title, "amount": str(record.amount)})


def save_with_event_locked(record, *, user):
    """`save_with_event` holding the tenant's lock until the commit, as the audit's insert trigger took it
    before issue 16: what the audit cost concurrent writers then."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.audit'))")
    save_with_event(record, user=user)


def new_values(rng: random.Random, tag: str) -> tuple[str, decimal.Decimal]:
    return (f"{rng.choice(api_overhead.WORDS).title()} {rng.choice(api_overhead.WORDS)} {tag}",
            decimal.Decimal(rng.randint(100, 500_000)).scaleb(-2))


def update_batch(model, side: str, ids: list[int], user, tag: str) -> tuple[float, float]:
    """Give each record a new title and amount; each save in its own transaction. Loading is untimed."""
    from django.db import transaction

    save = write_functions()[side]
    found = model.objects.in_bulk(ids)
    rng = random.Random(tag)
    changes = [(found[pk], *new_values(rng, f"{tag} {pk}")) for pk in ids]
    cpu, started = time.process_time(), time.perf_counter()
    for record, title, amount in changes:
        record.title, record.amount = title, amount
        with transaction.atomic():
            save(record, user=user)
    return time.perf_counter() - started, time.process_time() - cpu


def create_batch(model, side: str, count: int, user, tag: str, *, hold: float = 0.0) -> tuple[float, float]:
    """Create `count` records, each in its own transaction; building the instances is untimed.

    :param hold: seconds each transaction stays open after the save (`pg_sleep`), as a request's
        other work would keep it.
    """
    from django.db import connection, transaction

    save = write_functions()[side]
    rng = random.Random(tag)
    made = []
    for index in range(count):
        title, amount = new_values(rng, f"{tag} {index}")
        made.append(model(title=title, amount=amount, currency=rng.choice(["CNY", "USD", "EUR"]),
                          spent_on=datetime.date(2025, 1, 1) + datetime.timedelta(days=rng.randrange(300)),
                          category=rng.choice(api_overhead.CATEGORIES), project_id=rng.randint(1, api_overhead.PROJECTS),
                          status="submitted", submitted_by=user))
    cpu, started = time.process_time(), time.perf_counter()
    for record in made:
        with transaction.atomic():
            save(record, user=user)
            if hold:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_sleep(%s)", [hold])
    return time.perf_counter() - started, time.process_time() - cpu


WRITES = {"update": "update (title, amount)", "create": "create", "patch": "API PATCH (title, amount)"}


def measure_writes(model, user, rows: int, rounds: int, batch: int, warmup: int) -> dict[str, dict[str, Side]]:
    results = {op: {AUDITED: Side(), UNAUDITED: Side()} for op in ("update", "create")}
    rng = random.Random(5)
    with _setup.progress() as bar:
        task = bar.add_task("Writes: records.save (audited) against validation.save_record (unaudited)",
                            total=2 * 2 * (rounds * batch + warmup))
        for op in ("update", "create"):
            for side in (AUDITED, UNAUDITED):
                if op == "update":
                    update_batch(model, side, rng.sample(range(1, rows + 1), warmup), user, f"warm {side}")
                    ids = [rng.randint(1, rows)]
                    results[op][side].queries = captured(
                        lambda side=side, ids=ids: update_batch(model, side, ids, user, f"sql {side}"))
                else:
                    create_batch(model, side, warmup, user, f"warm {side}")
                    results[op][side].queries = captured(
                        lambda side=side: create_batch(model, side, 1, user, f"sql {side}"))
                bar.advance(task, warmup)
            for number in range(rounds):
                ids = rng.sample(range(1, rows + 1), batch)  # The same records for both sides, new values each.
                for side in (AUDITED, UNAUDITED) if number % 2 == 0 else (UNAUDITED, AUDITED):
                    gc.collect()
                    tag = f"r{number} {side}"
                    if op == "update":
                        seconds, cpu = update_batch(model, side, ids, user, tag)
                    else:
                        seconds, cpu = create_batch(model, side, batch, user, tag)
                    results[op][side].add(seconds, cpu, batch)
                    bar.advance(task, batch)
    return results


def patch_batch(client, side: str, ids: list[int], tag: str) -> tuple[float, float]:
    """PATCH a new title and amount into each record through the API; `unaudited`: with the benchmark's
    stand-in for records.save (validation.save_record, no audit event), in this process only."""
    import json

    from dynamic_models import records, validation

    rng = random.Random(tag)
    bodies = [(pk, json.dumps({"title": title, "amount": str(amount)}))
              for pk in ids for title, amount in [new_values(rng, f"{tag} {pk}")]]
    real = records.save
    if side == UNAUDITED:
        records.save = lambda record, *, user=None, **_kwargs: validation.save_record(record, user=user)
    try:
        bad = None
        cpu, started = time.process_time(), time.perf_counter()
        for pk, body in bodies:
            response = client.patch(f"/api/v1/data/expense/{pk}/", body, content_type="application/json")
            if response.status_code != 200:
                bad = response
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        records.save = real
    if bad is not None:
        raise RuntimeError(f"PATCH: HTTP {bad.status_code} {bad.content[:500]!r}")
    return seconds, cpu


def measure_patches(client, rows: int, rounds: int, batch: int, warmup: int) -> dict[str, Side]:
    results = {AUDITED: Side(), UNAUDITED: Side()}
    rng = random.Random(6)
    with _setup.progress() as bar:
        task = bar.add_task("PATCH /api/v1/data/expense/<id>/ as frank, with and without the audit event",
                            total=2 * (rounds * batch + warmup))
        for side in (AUDITED, UNAUDITED):
            patch_batch(client, side, rng.sample(range(1, rows + 1), warmup), f"warm {side}")
            ids = [rng.randint(1, rows)]
            results[side].queries = captured(lambda side=side, ids=ids: patch_batch(client, side, ids, f"sql {side}"))
            bar.advance(task, warmup)
        for number in range(rounds):
            ids = rng.sample(range(1, rows + 1), batch)
            for side in (AUDITED, UNAUDITED) if number % 2 == 0 else (UNAUDITED, AUDITED):
                gc.collect()
                results[side].add(*patch_batch(client, side, ids, f"r{number} {side}"), batch)
                bar.advance(task, batch)
    return results


# --- 3. permission checks ---------------------------------------------------------------------


class CountingCache:
    """Stands in for `rbac.services.effective_cache.cache`: counts the reads, delegates everything."""

    def __init__(self, real):
        self.real, self.reads = real, 0

    def get(self, *args, **kwargs):
        self.reads += 1
        return self.real.get(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.real, name)


def measure_checks(user, model) -> tuple[list[list[str]], dict]:
    """Each call CHECK_CALLS times under CaptureQueriesContext; then the first calls after bump()."""
    from django.db import connection
    from django.http import HttpRequest
    from django.test.utils import CaptureQueriesContext

    from rbac import services as rbac
    from rbac.services import effective_cache

    def request():
        return HttpRequest()  # Remembers the tenant's permission version after the first call.

    shared = request()
    calls = {
        'check(mia, "data.expense.view")': lambda req: rbac.check(user, "data.expense.view", request=req),
        'field_rules(mia, "expense")': lambda req: rbac.field_rules(user, "expense", request=req),
        "scope_queryset(mia, expense.objects.all()), built": (
            lambda req: rbac.scope_queryset(user, model.objects.all(), request=req)),
    }
    rows, all_zero = [], True
    real = effective_cache.cache
    counting = CountingCache(real)
    effective_cache.cache = counting
    try:
        for label, call in calls.items():
            for variant, req in (("", None), (", request=", shared)):
                for _ in range(200):
                    call(req)  # Warm-up.
                counting.reads = 0
                with CaptureQueriesContext(connection) as queries:
                    durations = _setup.per_call(lambda call=call, req=req: call(req), CHECK_CALLS, batch=500)
                reads = counting.reads
                all_zero &= len(queries) == 0
                rows.append([label + variant, f"{CHECK_CALLS:,}", str(len(queries)), f"{reads / CHECK_CALLS:.0f}",
                             fmt_time(_setup.median(durations)), fmt_time(min(durations)),
                             _setup.verdict(len(queries) == 0) + " 0 queries"])
        # After bump(): the first call of each recomputes the user's permissions, the next is free again.
        after = {}
        for label, call in calls.items():
            rbac.bump()
            with CaptureQueriesContext(connection) as first:
                seconds = _setup.timed(lambda call=call: call(None))[0]
            with CaptureQueriesContext(connection) as second:
                call(None)
            after[label] = (len(first), seconds, len(second))
    finally:
        effective_cache.cache = real
    return rows, {"all_zero": all_zero, "after_bump": after}


# --- profiles ---------------------------------------------------------------------------------


def _label(filename: str, line: int, name: str) -> str:
    short = filename.split("site-packages/")[-1].replace(str(_setup.ROOT) + "/", "")
    return f"{name} ({short}:{line})" if line else name


#: Django and driver calls shown next to the project's own in the profiles' second table.
WATCHED = {"get_client", "clone", "chain", "_filter_or_exclude", "as_sql", "execute_sql", "get_count", "count",
           "__init__", "execute", "commit", "save_base", "_do_update", "_do_insert"}


def profile_pair(title: str, runs: dict[str, Callable[[], object]], count: int, ours: tuple[str, ...]) -> None:
    """cProfile (CPU time, garbage collector off) the two runs of `count` operations each; print the
    functions where the first spends more own time, then the project's functions (`ours`) in the first."""
    import cProfile
    import pstats

    stats, own = {}, {}
    for side, run in runs.items():
        run()
        gc.collect()
        gc.disable()
        profiler = cProfile.Profile(time.process_time)
        try:
            profiler.enable()
            run()
            profiler.disable()
        finally:
            gc.enable()
        stats[side] = pstats.Stats(profiler).stats
        own[side] = sum(entry[2] for entry in stats[side].values()) / count
    first, second = list(runs)
    functions: dict[str, dict[str, tuple[float, float, float]]] = {}
    for side, entries in stats.items():
        for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in entries.items():
            item = functions.setdefault(_label(filename, line, name), {first: (0, 0.0, 0.0), second: (0, 0.0, 0.0)})
            item[side] = (calls / count, tottime / count * 1e6, cumtime / count * 1e6)
    by_own = sorted(functions.items(), key=lambda item: item[1][first][1] - item[1][second][1], reverse=True)
    _setup.table(f"Profile of {title}, {count} per side: CPU per operation {own[first] * 1e6:,.0f} µs {first}, "
                 f"{own[second] * 1e6:,.0f} µs {second} (under cProfile); functions by extra own CPU time",
                 ["function", f"{first} calls", f"{first} own µs", f"{second} calls", f"{second} own µs",
                  "extra µs"],
                 [[label, f"{v[first][0]:.1f}", f"{v[first][1]:.0f}", f"{v[second][0]:.1f}", f"{v[second][1]:.0f}",
                   f"{v[first][1] - v[second][1]:+.0f}"] for label, v in by_own[:15]])
    mine = sorted(((label, v) for label, v in functions.items()
                   if (label.split("(")[-1].startswith(ours) or label.split(" (")[0] in WATCHED) and v[first][0]),
                  key=lambda item: item[1][first][2] - item[1][second][2], reverse=True)
    _setup.table(f"Profile of {title}: {', '.join(ours)} and a few Django calls, cumulative CPU per operation, "
                 "by extra cumulative time",
                 ["function", f"{first} calls", f"{first} cum. µs", f"{second} calls", f"{second} cum. µs",
                  "extra µs"],
                 [[label, f"{v[first][0]:.1f}", f"{v[first][2]:.0f}", f"{v[second][0]:.1f}", f"{v[second][2]:.0f}",
                   f"{v[first][2] - v[second][2]:+.0f}"] for label, v in mine[:20]])


# --- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    def extra(parser):
        parser.add_argument("--sql", action="store_true", help="print the SQL of one list request per user")
        parser.add_argument("--profile", type=int, default=0, metavar="N",
                            help="afterwards, cProfile N list requests (mia, superuser) and N writes of each kind")

    args = _setup.parse_args(__doc__.splitlines()[0], argv, extra=extra)
    rows = 10_000 if args.quick else 100_000
    list_rounds, list_batch, list_warmup = (12, 4, 10) if args.quick else (60, 8, 30)
    write_rounds, write_batch, write_warmup = (12, 20, 20) if args.quick else (60, 50, 100)
    patch_batch_size = 5 if args.quick else 10
    _setup.header("RBAC and audit: scoped lists, audited writes, cached permission checks", args.quick)
    warnings.filterwarnings("ignore", message="No directory at")  # STATIC_ROOT: not served here.

    with _setup.django_environment(keep_servers=args.keep_servers):
        from django.test import Client

        from dynamic_models import runtime
        from rbac import services as rbac

        (tenant,) = _setup.ensure_tenants([TENANT])
        with _setup.in_tenant(tenant):
            publish_scenario()
            _setup.empty_audit_trail()
            users = people()
            roles_and_departments(users)
            models = {key: runtime.get_model(key) for key in ("project", "expense")}
            expense = models["expense"]
            table = expense._meta.db_table
            owners = [user.pk for user in users["department_users"]]
            load_seconds = load(models, rows, users["admin"].pk, owners)
            rbac.clear_local_cache()
            visible = rbac.scope_queryset(users["mia"], expense.objects.all()).count()
            visible_submitted = rbac.scope_queryset(users["mia"], expense.objects.filter(status="submitted")).count()
            console.print(f"[dim]Loaded in {load_seconds:.1f} s: {rows:,} expenses over {len(owners)} users in "
                          f"{len(DEPARTMENTS)} departments; mia (manager of Sales) sees {visible:,} "
                          f"({visible_submitted:,} submitted).[/dim]")
            host = tenant.get_primary_domain().domain
            clients = {side: Client(HTTP_HOST=host, HTTP_AUTHORIZATION=f"Api-Key {secret}")
                       for side, secret in api_keys(users).items()}
            answer = clients[MIA].get(LISTS["list"]).json()
            assert answer["count"] == visible, (answer["count"], visible)
            assert all(item["iban"] in ("", None) or item["iban"].startswith("****") for item in answer["results"])
            assert clients[ADMIN].get(LISTS["list"]).json()["count"] == rows
            gc.collect()

            # 1. Lists.
            lists = measure_lists(clients, list_rounds, list_batch, list_warmup,
                                  "Lists as superuser, frank (all) and mia (department), rounds rotate who goes first")
            existing_indexes = indexes(table)
            list_ratios = list_tables(lists, list_rounds, f"GET /api/v1/data/expense/ ({rows:,} rows)")
            console.print("[dim]Django test Client in process, API key per user, after a warm-up; each round "
                          "sends the same requests as each user in turn. Ratio: median over the rounds of mia's "
                          "time per request / the superuser's (> 1: the scope costs). Queries: one request, "
                          "SET search_path included.[/dim]\n")
            if args.sql:
                for op in LISTS:
                    for side in (ADMIN, MIA):
                        console.print(f"[bold]{LIST_LABELS[op]}, {SIDE_LABELS[side]}[/]: "
                                      f"{len(lists[op][side].queries)} queries")
                        for sql in lists[op][side].queries:
                            console.print(f"  [dim]{sql[:600]}[/dim]")
            console.rule("[bold]The list's expense queries (one request each): time and EXPLAIN ANALYZE[/]")
            plan_rows = explain(lists, table, args.sql)
            _setup.table("Wall time of the list's SQL run from here, median of 7 (planning time in brackets)",
                         ["query", "superuser", "department scope", "scope as = ANY(ARRAY(...)), what-if",
                          "same answer"], plan_rows)
            console.print("[dim]What-if: mia's SQL with each outer `IN (SELECT ...)` of the scope written "
                          "`= ANY(ARRAY(SELECT ...))` (not what the product runs).[/dim]")
            console.print("[bold]Indexes of the expense table:[/]")
            for definition in existing_indexes:
                console.print(f"  [dim]{definition}[/dim]")
            console.print()

            # 2. Writes.
            writes = measure_writes(expense, users["admin"], rows, write_rounds, write_batch, write_warmup)
            writes["patch"] = measure_patches(clients[FRANK], rows, write_rounds, patch_batch_size, write_warmup // 5)
            write_rows, write_ratios = [], []
            for op, label in WRITES.items():
                audited, unaudited = writes[op][AUDITED], writes[op][UNAUDITED]
                ratio, per_round = ratio_of(audited, unaudited)
                write_ratios.append((label, ratio))
                write_rows.append([label, f"{audited.median_rate:,.0f}", f"{unaudited.median_rate:,.0f}",
                                   fmt_time(1 / audited.rate), fmt_time(1 / unaudited.rate),
                                   f"{(1 / audited.rate - 1 / unaudited.rate) * 1e6:+,.0f} µs",
                                   f"{ratio:.3f}", spread(per_round),
                                   f"{audited.cpu_per_op / unaudited.cpu_per_op:.3f}",
                                   f"{len(audited.queries)} / {len(unaudited.queries)}",
                                   f"{_setup.verdict(ratio <= TARGET_WRITE_RATIO)} <= {TARGET_WRITE_RATIO}"])
            _setup.table(f"Writes, audited against unaudited ({write_rounds} rounds; {write_batch} service writes or "
                         f"{patch_batch_size} PATCH requests per side and round)",
                         ["write", "audited ops/s", "unaudited ops/s", "audited /op", "unaudited /op",
                          "audit extra /op", "time ratio aud/unaud", "middle half", "CPU ratio", "queries", "target"],
                         write_rows)
            console.print("[dim]Service writes: records.save (audited) against validation.save_record, each in its "
                          "own transaction.atomic(), the record loaded beforehand (untimed). PATCH: the real API "
                          "as frank (rbac on), records.save against a stand-in that calls validation.save_record "
                          "(patched in this process only, the product always audits). ops/s: median over the "
                          "rounds; /op: over all rounds; ratio: median over the rounds of audited time per write "
                          "/ unaudited (same records, new values); queries: one write, SET search_path and "
                          "savepoints included.[/dim]\n")
            if args.sql:
                for op in WRITES:
                    for side in (AUDITED, UNAUDITED):
                        console.print(f"[bold]{WRITES[op]}, {side}[/]: {len(writes[op][side].queries)} queries")
                        for sql in writes[op][side].queries:
                            console.print(f"  [dim]{sql[:300]}[/dim]")

            # 3. Permission checks.
            check_rows, checks = measure_checks(users["mia"], expense)
            _setup.table(f"Permission checks of mia after a warm-up, {CHECK_CALLS:,} calls each under "
                         "CaptureQueriesContext",
                         ["call", "calls", "SQL queries", "cache reads /call", "median /call", "best batch",
                          "target"], check_rows)
            _setup.table("The first call after rbac.bump() (the tenant's permission version changes) and the next",
                         ["call", "queries, first call", "first call", "queries, next call"],
                         [[label, str(first), fmt_time(seconds), str(second)]
                          for label, (first, seconds, second) in checks["after_bump"].items()])
            console.print("[dim]Cache reads: `cache.get` of the tenant's permission version (Redis), once per "
                          "call without `request=`; with `request=` the request remembers it after the first.[/dim]\n")

            if args.profile:
                count = args.profile
                path = LISTS["list"]
                profile_pair(LIST_LABELS["list"] + " (mia against the superuser)",
                             {MIA: lambda: get_batch(clients[MIA], path, count),
                              ADMIN: lambda: get_batch(clients[ADMIN], path, count)},
                             count, ("rbac/", "dynamic_models/", "lowcode/"))
                rng = random.Random(9)
                for op in WRITES:
                    def run(side, op=op):
                        ids = rng.sample(range(1, rows + 1), count)
                        if op == "update":
                            return update_batch(expense, side, ids, users["admin"], f"profile {side}")
                        if op == "patch":
                            return patch_batch(clients[FRANK], side, ids, f"profile {side}")
                        return create_batch(expense, side, count, users["admin"], f"profile {side}")
                    profile_pair(f"{WRITES[op]} writes", {AUDITED: lambda run=run: run(AUDITED),
                                                          UNAUDITED: lambda run=run: run(UNAUDITED)},
                                 count, ("audit/", "dynamic_models/"))

    # Summary.
    summary, chart, all_ok = [], [], True
    for label, ratio in list_ratios:
        ok = ratio <= TARGET_LIST_RATIO
        all_ok &= ok
        summary.append([f"{label}: department scope / superuser time", f"{ratio:.3f}x",
                        f"<= {TARGET_LIST_RATIO}x", _setup.verdict(ok)])
        chart.append((f"scoped {label}", ratio, f"{ratio:.3f}x"))
    chart.append(("target, lists", TARGET_LIST_RATIO, f"{TARGET_LIST_RATIO:.3f}x"))
    for label, ratio in write_ratios:
        ok = ratio <= TARGET_WRITE_RATIO
        all_ok &= ok
        summary.append([f"{label}: audited / unaudited time", f"{ratio:.3f}x", f"<= {TARGET_WRITE_RATIO}x",
                        _setup.verdict(ok)])
        chart.append((f"audited {label}", ratio, f"{ratio:.3f}x"))
    chart.append(("target, writes", TARGET_WRITE_RATIO, f"{TARGET_WRITE_RATIO:.3f}x"))
    all_ok &= checks["all_zero"]
    summary.append([f"check / field_rules / scope_queryset: queries over {CHECK_CALLS:,} calls each", "0"
                    if checks["all_zero"] else "> 0", "0", _setup.verdict(checks["all_zero"])])
    first_after_bump = max(first for first, _seconds, _second in checks["after_bump"].values())
    summary.append(["first permission call after rbac.bump(): queries", str(first_after_bump), "", ""])
    _setup.table("Summary", ["measure", "result", "target", ""], summary)
    _setup.bar_chart("Time ratios (1.0 = no extra cost)", chart)
    console.print(f"RBAC scope and audit within their targets, permission checks free after the first: "
                  f"{_setup.verdict(all_ok)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
