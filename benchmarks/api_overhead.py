"""API overhead: the dynamic resource of `expense` against a hand-written DRF twin (DM-5).

In tenant `bench_api` (settings `benchmarks.bench_settings`), the scenario's `project` and
`expense` entities (tests/dynamic_models/conftest.py) are published, and the benchmark-only app
`benchmarks/static_expense` holds static models of the same columns with a hand-written
ModelSerializer + ModelViewSet (DRF's PageNumberPagination). Both get the same 100 projects and
100k expenses (COPY, same values, numbers from each table's auto-number sequence) on every run.
The caller is a scoped member with a mask (issue 16): role `bench_member` may view and add
expenses within an `own` scope on `submitted_by` (the 60% of expenses that are not drafts), with
the IBAN masked; the static twin applies the same scope and mask by hand (`--superuser`: a
superuser instead, no scope or mask). Then, in one process, with Django's test Client (no
network) and an API key, the same requests go to /api/v1/data/expense/ (dynamic) and
/api/v1/static/expense/ (static), through the same middleware, after a warm-up:
- list: `?status=submitted&page_size=50` (about 25k matching rows of a 100k table: the dynamic
  resource lists a big table with cursors by default, the static one counts them);
- list, selective: `?project=<random>&status=submitted&page_size=50` (about 250 matching rows);
- retrieve: `<random visible id>/`;
- create: POST of a valid record (creates accumulate).
Each operation runs in 60 short rounds (12 with --quick); a round sends the same requests to both
APIs, one after the other, the dynamic one first in even rounds. Printed per operation: median
requests/s of each, the median over the rounds of the dynamic/static ratio (targets: lists and
retrieve >= 2, create >= 0.9; robust to other processes' bursts), the ratio of this process's CPU
time per request (the same comparison without the database's share), time per request and SQL
queries of each, and whether both answer the same records (keys sorted; counts aside).

Run: .venv/bin/python benchmarks/api_overhead.py [--quick] [--superuser] [--sql] [--profile N] [--filterset-fields]
"""

from __future__ import annotations

import datetime
import decimal
import gc
import json
import os
import random
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import _setup
from _setup import console, fmt_time

os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.bench_settings"  # _setup names lowcode.settings.

TENANT = "bench_api"
#: Dynamic/static requests per second, by operation.
TARGETS = {"list": 2.0, "selective": 2.0, "retrieve": 2.0, "create": 0.9}
PROJECTS = 100
USERNAME = "bench_api"
MEMBER = "bench_member"
KEY_NAME = "api_overhead benchmark"
CHUNK = 10_000
DYNAMIC, STATIC = "dynamic", "static"
PREFIXES = {DYNAMIC: "/api/v1/data/", STATIC: "/api/v1/static/"}
WORDS = ["taxi", "hotel", "flight", "dinner", "lunch", "laptop", "monitor", "train", "conference", "books",
         "software", "parking", "fuel", "client", "team", "office", "supplies", "visa", "courier", "phone"]
CATEGORIES = ["travel", "meals", "equipment", "other", None]
#: Columns loaded into both expense tables, by field name (each model gives the column).
#: `number` is left to the database default (the auto number's sequence), like a record created by the API.
EXPENSE_COLUMNS = ["id", "created_at", "updated_at", "created_by", "updated_by", "title", "amount", "currency",
                   "spent_on", "category", "project", "iban", "notes", "status", "submitted_by"]
PROJECT_COLUMNS = ["id", "created_at", "updated_at", "created_by", "updated_by", "name", "code", "budget", "active"]


@dataclass
class Operation:
    key: str
    label: str
    method: str
    batch: int  # requests per side per round
    make: Callable[[random.Random, int], list[tuple[str, str]]]  # (path after the prefix, JSON body)
    status: int = 200


@dataclass
class Side:
    seconds: float = 0.0  # wall-clock time of all rounds
    cpu_seconds: float = 0.0  # this process's CPU time of all rounds (PostgreSQL's and Redis's not included)
    requests: int = 0
    rounds: list[float] = field(default_factory=list)  # requests/s of each round
    queries: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_per_request(self) -> float:
        return self.cpu_seconds / self.requests


# --- set-up ----------------------------------------------------------------------------------


def scenario_bodies() -> list[dict]:
    """The scenario's `project` and `expense` as entity bodies (stable field ids)."""
    from tests.dynamic_models.conftest import EXPENSE_FIELDS, PROJECT_FIELDS

    def body(key, label, plural, display, fields):
        return {"key": key, "label": label, "label_plural": plural, "display_field": display,
                "fields": [{"id": f"{key}{index:04d}", **spec} for index, spec in enumerate(fields)]}

    return [body("project", "Project", "Projects", "name", PROJECT_FIELDS),
            body("expense", "Expense", "Expenses", "title", EXPENSE_FIELDS)]


def publish_scenario() -> None:
    """Publish the bodies that are missing or differ from what is published (a new scenario)."""
    from dynamic_models import services
    from metadata.services import published_bodies

    published = published_bodies("entity")
    todo = [body for body in scenario_bodies()
            if body["key"] not in published or published[body["key"]].body != services.normalize_body(body)]
    if todo:
        with console.status(f"Publishing {', '.join(body['key'] for body in todo)} in {TENANT} ..."):
            for body in todo:
                services.publish_body(body, note="benchmark set-up")


def project_rows(user_id: int) -> list[tuple]:
    rng = random.Random(1)
    created = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    return [(pk, created, created, user_id, user_id, f"Project {pk:03d}", f"PRJ-{pk:03d}",
             decimal.Decimal(rng.randint(1_000, 1_000_000)), pk % 10 != 0) for pk in range(1, PROJECTS + 1)]


def expense_rows(count: int, user_id: int) -> list[tuple]:
    """Deterministic expenses (the columns of EXPENSE_COLUMNS)."""
    rng = random.Random(2)
    start = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    rows = []
    for pk in range(1, count + 1):
        created = start + datetime.timedelta(minutes=5 * pk)
        status = rng.choices(["draft", "submitted", "approved", "rejected"], [40, 25, 25, 10])[0]
        rows.append((
            pk, created, created, user_id, user_id,
            f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} {pk}",
            decimal.Decimal(rng.randint(100, 500_000)).scaleb(-2),
            rng.choices(["CNY", "USD", "EUR"], [60, 25, 15])[0],
            datetime.date(2025, 1, 1) + datetime.timedelta(days=rng.randrange(640)),
            rng.choice(CATEGORIES),
            rng.randint(1, PROJECTS),
            f"DE{rng.randrange(10**20):020d}" if rng.random() < 0.3 else None,
            f"Receipt {pk}: {' '.join(rng.choices(WORDS, k=8))}" if rng.random() < 0.5 else None,
            status,
            None if status == "draft" else user_id,
        ))
    return rows


def load(models: dict[str, dict[str, type]], rows: int, user_id: int) -> float:
    """Empty the four tables and COPY the same projects and expenses into both pairs."""
    from django.db import connection

    from benchmarks.static_expense.models import NUMBER_SEQUENCE
    from dynamic_models.field_types import AutoNumberType

    qn = connection.ops.quote_name
    projects, expenses = project_rows(user_id), expense_rows(rows, user_id)
    sequences = {DYNAMIC: AutoNumberType.sequence_name("expense", "number"), STATIC: NUMBER_SEQUENCE}
    started = time.perf_counter()
    with _setup.progress() as bar, connection.cursor() as cursor:
        task = bar.add_task(f"Loading {PROJECTS} projects and {rows:,} expenses into both APIs' tables",
                            total=2 * (PROJECTS + rows))
        for side, pair in models.items():
            tables = [pair["expense"]._meta.db_table, pair["project"]._meta.db_table]
            cursor.execute(f"TRUNCATE {', '.join(map(qn, tables))} RESTART IDENTITY")
            cursor.execute(f"ALTER SEQUENCE {qn(sequences[side])} RESTART")
            for key, columns, data in (("project", PROJECT_COLUMNS, projects), ("expense", EXPENSE_COLUMNS, expenses)):
                model = pair[key]
                names = ", ".join(qn(model._meta.get_field(name).column) for name in columns)
                for first in range(0, len(data), CHUNK):
                    with cursor.cursor.copy(f"COPY {qn(model._meta.db_table)} ({names}) FROM STDIN") as copy:
                        for row in data[first:first + CHUNK]:
                            copy.write_row(row)
                    bar.advance(task, len(data[first:first + CHUNK]))
                cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)",
                               [model._meta.db_table, len(data)])
        bar.update(task, description="VACUUM ANALYZE")
        for pair in models.values():
            for model in pair.values():
                cursor.execute(f"VACUUM ANALYZE {qn(model._meta.db_table)}")
    return time.perf_counter() - started


def superuser_and_key():
    from django.contrib.auth import get_user_model

    from lowcode.apikeys import services as apikeys
    from lowcode.apikeys.models import ApiKey

    user_model = get_user_model()
    user = user_model.objects.filter(username=USERNAME).first() or user_model.objects.create_superuser(
        USERNAME, f"{USERNAME}@example.com", password=None)
    ApiKey.objects.filter(name=KEY_NAME).delete()  # The previous run's.
    _key, secret = apikeys.create_key(user, name=KEY_NAME, scopes=["*:write"])
    return user, secret


def member_and_key():
    """`bench_member`: views and adds the expenses they submitted (`own` scope), the IBAN masked, and
    picks any project; on the static twin, Django's add permission (its viewset scopes and masks by hand)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    from lowcode.apikeys import services as apikeys
    from lowcode.apikeys.models import ApiKey
    from rbac import services as rbac
    from rbac.models import ColumnRule, DataScope, Role

    user_model = get_user_model()
    user = user_model.objects.filter(username=MEMBER).first() or user_model.objects.create_user(MEMBER, password=None)
    role = Role.objects.filter(key=MEMBER).first() or rbac.create_role(
        MEMBER, "Benchmark member", grants=["data.expense.view", "data.expense.add", "data.project.view"])
    if not role.scopes.filter(entity_key="expense").exists():
        rbac.add_scope(role, "expense", DataScope.Kind.OWN, owner_field="submitted_by")
    if not role.scopes.filter(entity_key="project").exists():  # Projects to pick on create.
        rbac.add_scope(role, "project", DataScope.Kind.ALL)
    if not role.column_rules.filter(entity_key="expense", field_key="iban").exists():
        rbac.set_column_rule(role, "expense", "iban", ColumnRule.Rule.MASKED)
    if not role.users.filter(pk=user.pk).exists():
        rbac.assign_role(user, role)
    user.user_permissions.add(Permission.objects.get(content_type__app_label="static_expense", codename="add_expense"))
    ApiKey.objects.filter(name=f"{KEY_NAME} member").delete()
    _key, secret = apikeys.create_key(user, name=f"{KEY_NAME} member", scopes=["*:write"])
    return user, secret


# --- requests ---------------------------------------------------------------------------------


def operations(quick: bool, visible_ids: list[int]) -> list[Operation]:
    scale = 0.5 if quick else 1  # Short rounds: both sides of a round see the same load from other processes.

    def listing(rng, count):
        return [("expense/?status=submitted&page_size=50", "")] * count

    def selective(rng, count):
        return [(f"expense/?project={rng.randint(1, PROJECTS)}&status=submitted&page_size=50", "")
                for _ in range(count)]

    def retrieve(rng, count):
        return [(f"expense/{rng.choice(visible_ids)}/", "") for _ in range(count)]

    def create(rng, count):
        return [("expense/", json.dumps({
            "title": f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} (API)",
            "amount": f"{rng.randint(100, 500_000) / 100:.2f}", "currency": rng.choice(["CNY", "USD", "EUR"]),
            "spent_on": (datetime.date(2026, 1, 1) + datetime.timedelta(days=rng.randrange(300))).isoformat(),
            "category": rng.choice(CATEGORIES), "project": rng.randint(1, PROJECTS), "status": "submitted",
            "notes": "Created by benchmarks/api_overhead.py"})) for _ in range(count)]

    return [
        Operation("list", "list ?status=submitted", "get", int(8 * scale), listing),
        Operation("selective", "list ?project=&status=", "get", int(16 * scale), selective),
        Operation("retrieve", "retrieve", "get", int(30 * scale), retrieve),
        Operation("create", "create", "post", int(16 * scale), create, status=201),
    ]


def send(client, side: str, operation: Operation, request: tuple[str, str]):
    path, body = request
    if operation.method == "get":
        return client.get(PREFIXES[side] + path)
    return client.post(PREFIXES[side] + path, body, content_type="application/json")


def run_batch(client, side: str, operation: Operation, requests: list[tuple[str, str]]) -> tuple[float, float]:
    """Send `requests`; return the wall-clock and CPU seconds they took (every answer's status is checked)."""
    bad = None
    cpu, started = time.process_time(), time.perf_counter()
    for request in requests:
        response = send(client, side, operation, request)
        if response.status_code != operation.status:
            bad = response
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if bad is not None:
        raise RuntimeError(f"{side} {operation.key}: HTTP {bad.status_code} {bad.content[:500]!r}")
    return seconds, cpu


def same_json(client, operation: Operation) -> str:
    """Whether both APIs answer the same records to the same GET, keys sorted (pagination aside:
    the dynamic list of a big table pages with cursors, the static one counts)."""
    if operation.method != "get":
        return "-"
    request = operation.make(random.Random(7), 1)[0]
    answers = {}
    for side in PREFIXES:
        answer = send(client, side, operation, request).json()
        records = answer.get("results", [answer])
        answers[side] = json.dumps(records, sort_keys=True)
    if answers[DYNAMIC] == answers[STATIC]:
        return "[green]same[/]"
    first, other = (json.loads(answers[side])[0] for side in (DYNAMIC, STATIC))
    keys = sorted(k for k in set(first) | set(other) if first.get(k) != other.get(k))
    return f"[red]differs: {', '.join(keys) or 'order'}[/]"


def capture_queries(client, side: str, operation: Operation) -> list[str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    request = operation.make(random.Random(11), 1)[0]
    with CaptureQueriesContext(connection) as captured:
        response = send(client, side, operation, request)
    assert response.status_code == operation.status, response.content[:500]
    return [query["sql"] for query in captured.captured_queries]


def measure(client, ops: list[Operation], rounds: int, warmup: int) -> dict[str, dict[str, Side]]:
    results = {op.key: {DYNAMIC: Side(), STATIC: Side()} for op in ops}
    total = sum(2 * op.batch * rounds + 2 * warmup for op in ops)
    with _setup.progress() as bar:
        task = bar.add_task("Measuring (rounds alternate dynamic-first and static-first)", total=total)
        for op in ops:
            bar.update(task, description=f"Measuring {op.label}")
            rng = random.Random(op.key)
            for side in PREFIXES:  # Warm-up: imports, caches, the resolver, prepared plans.
                run_batch(client, side, op, op.make(rng, warmup))
                bar.advance(task, warmup)
            for side in PREFIXES:
                results[op.key][side].queries = capture_queries(client, side, op)
            for number in range(rounds):
                requests = op.make(rng, op.batch)  # The same requests for both sides.
                order = (DYNAMIC, STATIC) if number % 2 == 0 else (STATIC, DYNAMIC)
                for side in order:
                    gc.collect()
                    seconds, cpu = run_batch(client, side, op, requests)
                    result = results[op.key][side]
                    result.seconds += seconds
                    result.cpu_seconds += cpu
                    result.requests += len(requests)
                    result.rounds.append(len(requests) / seconds)
                    bar.advance(task, len(requests))
    return results


def _label(filename: str, line: int, name: str) -> str:
    short = filename.split("site-packages/")[-1].replace(str(_setup.ROOT) + "/", "")
    return f"{name} ({short}:{line})" if line else name


def profile(client, ops: list[Operation], count: int) -> None:
    """cProfile `count` requests of each operation on each side (garbage collector off); print where the
    dynamic path spends more: per function, own time (tottime) per request on each side and its difference,
    then the project's functions on the dynamic path (dynamic_models, lowcode) by cumulative time."""
    import cProfile
    import pstats

    for op in ops:
        stats, own = {}, {}
        requests = op.make(random.Random(f"profile {op.key}"), count)
        for side in PREFIXES:
            run_batch(client, side, op, requests[:10])
            gc.collect()
            gc.disable()
            profiler = cProfile.Profile(time.process_time)  # CPU time: waits and other processes left out.
            try:
                profiler.enable()
                run_batch(client, side, op, requests)
                profiler.disable()
            finally:
                gc.enable()
            profiler.dump_stats(os.path.join(tempfile.gettempdir(), f"api_overhead_{op.key}_{side}.prof"))
            stats[side] = pstats.Stats(profiler).stats  # {(file, line, name): (cc, calls, tottime, cumtime, callers)}
            own[side] = sum(entry[2] for entry in stats[side].values()) / count
        functions: dict[str, dict[str, tuple[float, float, float]]] = {}
        for side, entries in stats.items():
            for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in entries.items():
                item = functions.setdefault(_label(filename, line, name), {DYNAMIC: (0, 0.0, 0.0), STATIC: (0, 0.0, 0.0)})
                item[side] = (calls / count, tottime / count * 1e6, cumtime / count * 1e6)
        by_own = sorted(functions.items(), key=lambda item: item[1][DYNAMIC][1] - item[1][STATIC][1], reverse=True)
        _setup.table(
            f"Profile of {op.label}, {count} requests per side: CPU time per request {own[DYNAMIC] * 1e6:,.0f} µs "
            f"dynamic, {own[STATIC] * 1e6:,.0f} µs static (under cProfile); functions by extra own CPU time",
            ["function", "dyn calls", "dyn own µs", "static calls", "static own µs", "extra µs"],
            [[label, f"{v[DYNAMIC][0]:.1f}", f"{v[DYNAMIC][1]:.0f}", f"{v[STATIC][0]:.1f}", f"{v[STATIC][1]:.0f}",
              f"{v[DYNAMIC][1] - v[STATIC][1]:+.0f}"] for label, v in by_own[:15]])
        ours = sorted(((label, v) for label, v in functions.items()
                       if label.split("(")[-1].startswith(("dynamic_models/", "lowcode/api/")) and v[DYNAMIC][0]),
                      key=lambda item: item[1][DYNAMIC][2], reverse=True)
        _setup.table(f"Profile of {op.label}: the dynamic resource's own code (dynamic_models, lowcode/api), "
                     "cumulative CPU time per request",
                     ["function", "calls", "cumulative µs", "own µs"],
                     [[label, f"{v[DYNAMIC][0]:.1f}", f"{v[DYNAMIC][2]:.0f}", f"{v[DYNAMIC][1]:.0f}"]
                      for label, v in ours[:15]])


# --- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    def extra(parser):
        parser.add_argument("--superuser", action="store_true",
                            help="call as a superuser (no scope, no mask) instead of the scoped member")
        parser.add_argument("--sql", action="store_true", help="print the SQL of one request of each kind")
        parser.add_argument("--profile", type=int, default=0, metavar="N",
                            help="afterwards, cProfile N requests of each kind on both APIs")
        parser.add_argument("--filterset-fields", action="store_true",
                            help="static API with `filterset_fields` (a FilterSet class built on every request) "
                                 "instead of its FilterSet class")

    args = _setup.parse_args(__doc__.splitlines()[0], argv, extra=extra)
    rows = 10_000 if args.quick else 100_000
    rounds = 12 if args.quick else 60
    warmup = 20 if args.quick else 50
    _setup.header("API overhead: dynamic resource against a hand-written ModelViewSet", args.quick)
    warnings.filterwarnings("ignore", message="No directory at")  # STATIC_ROOT: not served here.

    with _setup.django_environment(keep_servers=args.keep_servers):
        from django.test import Client

        from benchmarks.static_expense.api import ExpenseViewSet
        from benchmarks.static_expense.models import Expense, Project
        from dynamic_models import runtime

        if args.filterset_fields:
            ExpenseViewSet.filterset_fields = ExpenseViewSet.filterset_class._meta.fields
            ExpenseViewSet.filterset_class = None

        (tenant,) = _setup.ensure_tenants([TENANT])
        with _setup.in_tenant(tenant):
            publish_scenario()
            models = {DYNAMIC: {key: runtime.get_model(key) for key in ("project", "expense")},
                      STATIC: {"project": Project, "expense": Expense}}
            superuser, superuser_secret = superuser_and_key()
            member, member_secret = member_and_key()
            user, secret = (superuser, superuser_secret) if args.superuser else (member, member_secret)
            load_seconds = load(models, rows, member.pk)
            counts = {side: pair["expense"].objects.filter(status="submitted").count() for side, pair in models.items()}
            assert counts[DYNAMIC] == counts[STATIC] >= 50, counts
            visible_ids = list(models[DYNAMIC]["expense"].objects.filter(submitted_by=member).values_list("id", flat=True))
            console.print(f"[dim]Loaded in {load_seconds:.1f} s; {counts[DYNAMIC]:,} submitted expenses of "
                          f"{rows:,} in each table; calling as {user.username}.[/dim]")
            gc.collect()

            client = Client(HTTP_HOST=tenant.get_primary_domain().domain, HTTP_AUTHORIZATION=f"Api-Key {secret}")
            ops = operations(args.quick, visible_ids)
            same = {op.key: same_json(client, op) for op in ops}
            results = measure(client, ops, rounds, warmup)
            if args.profile:
                profile(client, ops, args.profile)

    summary, detail, cpu, chart, all_ok = [], [], [], [], True
    for op in ops:
        dynamic, static = results[op.key][DYNAMIC], results[op.key][STATIC]
        per_round = [d / s for d, s in zip(dynamic.rounds, static.rounds, strict=True)]
        ratio = _setup.median(per_round)
        quartiles = statistics.quantiles(per_round, n=4)
        cpu_ratio = static.cpu_per_request / dynamic.cpu_per_request
        ok = ratio >= TARGETS[op.key]
        all_ok &= ok
        summary.append([op.label, f"{_setup.median(dynamic.rounds):,.1f}", f"{_setup.median(static.rounds):,.1f}",
                        f"{ratio:.3f}", f"{cpu_ratio:.3f}", f"{_setup.verdict(ok)} >= {TARGETS[op.key]}"])
        detail.append([op.label, f"{dynamic.requests:,}", fmt_time(1 / dynamic.rate), fmt_time(1 / static.rate),
                       f"{(1 / dynamic.rate - 1 / static.rate) * 1e6:+,.0f} µs", f"{dynamic.rate / static.rate:.3f}",
                       f"{quartiles[0]:.2f}-{quartiles[2]:.2f}", f"{min(per_round):.2f}-{max(per_round):.2f}"])
        cpu.append([op.label, fmt_time(dynamic.cpu_per_request), fmt_time(static.cpu_per_request),
                    f"{(dynamic.cpu_per_request - static.cpu_per_request) * 1e6:+,.0f} µs", f"{cpu_ratio:.3f}",
                    f"{len(dynamic.queries)} / {len(static.queries)}", same[op.key]])
        chart.append((op.label, ratio, f"{ratio:.3f}"))
    _setup.table(f"Dynamic /api/v1/data/expense/ against static /api/v1/static/expense/ ({rows:,} rows; medians "
                 f"of {rounds} rounds)",
                 ["operation", "dynamic req/s", "static req/s", "ratio dynamic/static", "CPU ratio", "target"], summary)
    _setup.table(f"Wall clock over all rounds ({rounds} per side, alternating which side goes first)",
                 ["operation", "requests /side", "dynamic /req", "static /req", "dynamic extra /req",
                  "ratio of totals", "round ratios, middle half", "all"], detail)
    _setup.table("CPU time of this process per request (Python: PostgreSQL's and Redis's work not included) and SQL",
                 ["operation", "dynamic CPU", "static CPU", "dynamic extra", "CPU ratio static/dynamic",
                  "queries dyn / static", "JSON"], cpu)
    console.print(
        "[dim]Django test Client in process, one thread, API key, after a warm-up. req/s: median over the rounds "
        "(each round sends the same requests to both APIs, one after the other); ratio: median over the rounds of "
        "dynamic req/s / static req/s, robust to other processes' bursts, which the round ratios show; CPU ratio: "
        "static CPU time per request / dynamic, the same ratio without the database's share of the time and "
        "hardly sensitive to other processes; queries: SQL statements of one request, SET search_path included "
        "(CaptureQueriesContext); JSON: whether both answer the same body to the same GET."
        f"{' Static filters: filterset_fields (a FilterSet class per request).' if args.filterset_fields else ''}"
        "[/dim]\n")
    if args.sql:
        for op in ops:
            for side in PREFIXES:
                console.print(f"[bold]{op.label}, {side}[/]: {len(results[op.key][side].queries)} queries")
                for sql in results[op.key][side].queries:
                    console.print(f"  [dim]{sql[:400]}[/dim]")
    _setup.bar_chart("Dynamic/static ratio of requests per second (targets: reads >= 2, create >= 0.9)",
                     [*chart, ("read target", TARGETS["list"], f"{TARGETS['list']:.3f}")])
    console.print(f"Dynamic API at least {TARGETS['list']:.0f}x the hand-written one's reads and "
                  f"{TARGETS['create']:.0%} of its creates ({'superuser' if args.superuser else 'scoped member, IBAN masked'}): "
                  f"{_setup.verdict(all_ok)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
