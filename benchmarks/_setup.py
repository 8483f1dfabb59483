"""Shared set-up of the benchmarks: their own servers and database, tenants, entity bodies, output.

Import this module before anything from Django or the project: it points the process at its own
embedded PostgreSQL and Redis (`.lowcode/bench`, ports 55450 and 63850 unless LOWCODE_HOME,
LOWCODE_PG_PORT or LOWCODE_REDIS_PORT say otherwise), so a benchmark never touches the
development data. DATABASE_URL, REDIS_URL and friends are ignored for the same reason.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("LOWCODE_HOME", str(ROOT / ".lowcode" / "bench"))
os.environ.setdefault("LOWCODE_PG_PORT", "55450")
os.environ.setdefault("LOWCODE_REDIS_PORT", "63850")
os.environ["DJANGO_SETTINGS_MODULE"] = "lowcode.settings"
for _name in ("DATABASE_URL", "REDIS_URL", "CACHE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
    os.environ.pop(_name, None)  # Never the development (or any other) database.
os.environ.setdefault("LOG_LEVEL", "WARNING")

from rich import box  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.table import Table  # noqa: E402

console = Console(highlight=False)
if not console.is_terminal:
    console = Console(highlight=False, width=110)  # Piped to a file: wide enough for the tables.

TARGET_WARM_LOOKUP_US = 50.0
TARGET_ADD_FIELD_RATIO = 2.0


# --- command line ---------------------------------------------------------------------------


def parse_args(description: str, argv: list[str] | None = None,
               extra: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repetitions")
    parser.add_argument("--keep-servers", action="store_true",
                        help="leave the benchmark's PostgreSQL and Redis running afterwards")
    if extra:
        extra(parser)
    return parser.parse_args(argv)


# --- servers, Django, tenants ---------------------------------------------------------------


@contextlib.contextmanager
def django_environment(*, keep_servers: bool = False, migrate: bool = True,
                       tenant_schemas: list[str] | None = None) -> Iterator[None]:
    """Start the benchmark's own servers (if not running), set Django up, migrate; stop them after.

    `tenant_schemas`: migrate the public schema and only these tenants' (a check of every schema
    takes about a second each: minutes with hundreds of tenants). The servers stop at the end
    unless another process still uses them.
    """
    from lowcode import embedded

    with console.status(f"Starting PostgreSQL :{embedded.PG_PORT} and Redis :{embedded.REDIS_PORT} "
                        f"in {embedded.HOME} ..."):
        started = embedded.start_missing()
    try:
        import django

        django.setup()
        if migrate:
            from django.core.management import call_command
            from django_tenants.utils import schema_exists

            from lowcode.tenancy import services as tenancy

            with console.status("manage.py migrate_schemas ..."):
                started_at = time.perf_counter()
                with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
                    if tenant_schemas is None:
                        call_command("migrate_schemas", interactive=False, verbosity=0)
                    else:
                        call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
                        for schema_name in tenant_schemas:
                            if schema_exists(schema_name):
                                call_command("migrate_schemas", schema_name=schema_name, interactive=False,
                                             verbosity=0)
                tenancy.ensure_public_tenant()
            console.print(f"[dim]migrate_schemas: {time.perf_counter() - started_at:.1f} s[/dim]")
        yield
    finally:
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if started and not keep_servers:
            with console.status("Stopping the benchmark's servers ..."):
                embedded.stop(started)


def tenant_name(schema_name: str) -> str:
    return f"Benchmark {schema_name}"


def tenant_domain(schema_name: str) -> str:
    return f"{schema_name.replace('_', '-')}.bench.localhost"


def ensure_tenant(schema_name: str):
    """Return `(tenant, created)` for a benchmark tenant, creating it (about 2 s) only once."""
    from lowcode.tenancy import services as tenancy

    return tenancy.ensure_tenant(schema_name=schema_name, name=tenant_name(schema_name),
                                 domain=tenant_domain(schema_name))


def ensure_tenants(schema_names: list[str]) -> list:
    """Return the tenants, creating the missing ones with a progress bar."""
    from lowcode.tenancy.models import Tenant

    existing = {t.schema_name: t for t in Tenant.objects.filter(schema_name__in=schema_names)}
    missing = [name for name in schema_names if name not in existing]
    if missing:
        with progress() as bar:
            task = bar.add_task(f"Creating {len(missing)} tenant schemas (kept for later runs)", total=len(missing))
            for name in missing:
                existing[name], _created = ensure_tenant(name)
                bar.advance(task)
    return [existing[name] for name in schema_names]


#: Tenants restored by one psql run.
CLONE_BATCH = 10


def clone_tenants(template, schema_names: list[str]) -> list:
    """Return the tenants, creating the missing ones as copies of `template`'s schema.

    A copy is the template schema's pg_dump with its name replaced, restored by the cluster's
    superuser (tables, data, owners, grants and the audit trail's functions as in the template),
    then its Tenant row, with the template's definition tokens, and Domain row. About 20x faster
    than creating a tenant and publishing its entities: the set-up of hundreds of tenants takes
    minutes, not hours. A schema left without its row by an interrupted run is replaced, and so is
    a copy whose migrations are not the template's (the template was migrated since: the copies
    are not, see `django_environment(tenant_schemas=...)`).
    """
    import re
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from lowcode import embedded
    from lowcode.tenancy.models import Domain, Tenant

    existing = {t.schema_name: t for t in Tenant.objects.filter(schema_name__in=schema_names)}
    template_migrations = applied_migrations([template.schema_name])[template.schema_name]
    stale = [name for name, migrations in applied_migrations(list(existing)).items() if migrations != template_migrations]
    if stale:
        Tenant.objects.filter(schema_name__in=stale).delete()  # The rows only: the restore replaces the schemas.
        for name in stale:
            del existing[name]
    missing = [name for name in schema_names if name not in existing]
    if missing:
        server = embedded.EmbeddedPostgres()
        admin = conninfo_to_dict(server.admin_conninfo(connection.settings_dict["NAME"]))
        # The password through the environment, not the command line (seen in `ps`).
        env = {**os.environ, "PGPASSWORD": admin.pop("password", "")}
        conninfo = make_conninfo(**admin)
        template.refresh_from_db()  # Its tokens as of the dump.
        dump = subprocess.run([str(server.bin_dir() / "pg_dump"), "--schema", template.schema_name, "-d", conninfo],
                              env=env, check=True, capture_output=True, text=True).stdout
        template_name = re.compile(rf"\b{re.escape(template.schema_name)}\b")

        def restore(batch: list[str]) -> list[str]:
            # A transaction per tenant: one for the batch would run out of locks (max_locks_per_transaction).
            script = "".join(f'BEGIN;\nDROP SCHEMA IF EXISTS "{name}" CASCADE;\n{template_name.sub(name, dump)}\nCOMMIT;\n'
                             for name in batch)
            psql = subprocess.run([str(server.bin_dir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", conninfo],
                                  input=script, env=env, capture_output=True, text=True)
            if psql.returncode:
                raise RuntimeError(f"Restoring {', '.join(batch)} failed: {psql.stderr.strip()}")
            return batch

        batches = [missing[start:start + CLONE_BATCH] for start in range(0, len(missing), CLONE_BATCH)]
        connection.set_schema_to_public()
        with progress() as bar, ThreadPoolExecutor(max_workers=2) as pool:  # One per core of this machine.
            task = bar.add_task(f"Cloning {len(missing)} tenants from {template.schema_name} (kept for later runs)",
                                total=len(missing))
            for batch in pool.map(restore, batches):
                tenants = Tenant.objects.bulk_create([
                    Tenant(schema_name=name, name=tenant_name(name), definition_versions=template.definition_versions)
                    for name in batch])
                Domain.objects.bulk_create([Domain(domain=tenant_domain(t.schema_name), tenant=t, is_primary=True)
                                            for t in tenants])
                existing.update((t.schema_name, t) for t in tenants)
                bar.advance(task, len(batch))
    return [existing[name] for name in schema_names]


def applied_migrations(schema_names: list[str]) -> dict[str, int]:
    """How many migrations each schema has applied, in one query."""
    from django.db import connection
    from psycopg import sql

    if not schema_names:
        return {}
    query = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {}, count(*) FROM {}.django_migrations").format(sql.Literal(name), sql.Identifier(name))
        for name in schema_names)
    with connection.cursor() as cursor:
        cursor.execute(query.as_string(connection.connection))
        return dict(cursor.fetchall())


@contextlib.contextmanager
def in_tenant(tenant) -> Iterator[None]:
    from django.db import connection

    connection.set_tenant(tenant)
    try:
        yield
    finally:
        connection.set_schema_to_public()


def empty_audit_trail() -> None:
    """TRUNCATE the current tenant's audit trail as the database superuser: the application's
    role cannot (README, "Audit trail: roles"), and the embedded server's superuser is at hand."""
    import psycopg
    from django.db import connection
    from psycopg import sql

    from lowcode import embedded

    conninfo = embedded.EmbeddedPostgres().admin_conninfo(connection.settings_dict["NAME"])
    with psycopg.connect(conninfo, autocommit=True) as admin, admin.transaction():
        admin.execute("SET LOCAL lowcode.audit_flush = 'on'")
        admin.execute(sql.SQL("TRUNCATE {0}.audit_auditevent, {0}.audit_auditblock").format(
            sql.Identifier(connection.schema_name)))


def published_keys() -> set[str]:
    """Entity keys published in the connection's schema."""
    from metadata.services import published_bodies

    return set(published_bodies("entity"))


def publish_missing(bodies: list[dict], *, label: str) -> int:
    """Publish the bodies not published yet in the current tenant (in order); return how many."""
    from dynamic_models import services

    done = published_keys()
    todo = [body for body in bodies if body["key"] not in done]
    if todo:
        with progress() as bar:
            task = bar.add_task(label, total=len(todo))
            for body in todo:
                services.publish_body(body, note="benchmark set-up")
                bar.advance(task)
    return len(todo)


# --- entity bodies ---------------------------------------------------------------------------

_CHOICES = {"choices": [{"value": "alpha"}, {"value": "beta"}, {"value": "gamma"}, {"value": "delta"}]}
#: (type, options) cycled through by `entity_body`: every built-in column type but auto numbers.
FIELD_MIX: list[tuple[str, dict]] = [
    ("text", {"max_length": 120}),
    ("integer", {"min": 0}),
    ("decimal", {"max_digits": 12, "decimal_places": 2}),
    ("boolean", {}),
    ("date", {}),
    ("choice", _CHOICES),
    ("long_text", {}),
    ("datetime", {}),
    ("email", {}),
    ("text", {"max_length": 40, "regex": r"^[A-Z]{3}-\d{3}$"}),
    ("url", {}),
    ("uuid", {}),
    ("json", {}),
    ("time", {}),
    ("phone", {}),
    ("multiple_choice", _CHOICES),
    ("user", {}),
    ("rich_text", {}),
]


def field_id(index: int) -> str:
    """A stable field id (the JSON Schema wants 6-32 lowercase letters and digits)."""
    return f"fld{index:05d}"


def field_spec(number: int, type_: str, options: dict | None = None, **extra) -> dict:
    return {"id": field_id(number), "key": f"{type_}_{number}", "type": type_, "label": f"{type_} {number}",
            "options": dict(options or {}), **extra}


def entity_body(key: str, n_fields: int, *, relations: list[tuple[str, str]] = (), formula: bool = False) -> dict:
    """A body of `n_fields` fields of mixed types, `relations` ((target, cardinality)) included."""
    fields = []
    for target, cardinality in relations:
        fields.append({**field_spec(len(fields), "relation", {"target": target, "cardinality": cardinality}),
                       "key": f"{target}_{len(fields)}"})
    if formula:
        fields.append(field_spec(len(fields), "integer"))
        fields.append(field_spec(len(fields), "formula", {"expression": f"integer_{len(fields) - 1} * 2"}))
    while len(fields) < n_fields:
        index = len(fields)
        type_, options = FIELD_MIX[index % len(FIELD_MIX)]
        extra = {}
        if index % 7 == 0 and type_ in ("text", "integer", "date", "choice"):
            extra["index"] = True
        fields.append(field_spec(index, type_, options, **extra))
    return {"key": key, "label": key.replace("_", " ").title(), "fields": fields[:n_fields],
            "display_field": next(f["key"] for f in fields if f["type"] == "text")}


def tenant_bodies(n_entities: int, n_fields: int, prefix: str = "ent") -> list[dict]:
    """`n_entities` bodies in publish order; some point at earlier ones (many-to-one, one-to-one, m2m)."""
    bodies = []
    for index in range(n_entities):
        relations = []
        if index >= 1 and index % 2 == 1:
            relations.append((f"{prefix}{index - 1:02d}", "many_to_one"))
        if index >= 4 and index % 4 == 0:
            relations.append((f"{prefix}{index - 4:02d}", "many_to_many"))
        if index >= 3 and index % 6 == 3:
            relations.append((f"{prefix}{index - 3:02d}", "one_to_one"))
        bodies.append(entity_body(f"{prefix}{index:02d}", n_fields, relations=relations))
    return bodies


# --- measuring -------------------------------------------------------------------------------


def timed(func: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = func()
    return time.perf_counter() - started, result


def repeat(func: Callable[[], object], times: int, *, setup: Callable[[], object] | None = None) -> list[float]:
    """Run `func` `times` times; return each run's duration in seconds (`setup` untimed)."""
    durations = []
    for _ in range(times):
        if setup:
            setup()
        durations.append(timed(func)[0])
    return durations


def per_call(func: Callable[[], object], calls: int, batch: int = 1000) -> list[float]:
    """Seconds per call of `func`, one figure per batch of `batch` calls (loop overhead included)."""
    durations = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(max(1, calls // batch)):
            started = time.perf_counter_ns()
            for _ in range(batch):
                func()
            durations.append((time.perf_counter_ns() - started) / batch / 1e9)
    finally:
        if gc_was_enabled:
            gc.enable()
    return durations


def median(values: list[float]) -> float:
    return statistics.median(values)


def rss_mb() -> float:
    """Resident set size of this process now (VmRSS), in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fmt_time(seconds: float) -> str:
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def verdict(ok: bool) -> str:
    return "[bold green]PASS[/]" if ok else "[bold red]FAIL[/]"


# --- output ----------------------------------------------------------------------------------


def progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)


def header(title: str, quick: bool) -> None:
    import platform

    console.rule(f"[bold]{title}[/]{' (--quick)' if quick else ''}")
    console.print(f"[dim]Python {platform.python_version()}, {os.cpu_count()} CPUs, "
                  f"database {os.environ['LOWCODE_HOME']} :{os.environ['LOWCODE_PG_PORT']}[/dim]")


def table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    result = Table(title=title, box=box.SIMPLE_HEAVY, title_justify="left", title_style="bold")
    for index, column in enumerate(columns):
        result.add_column(column, justify="left" if index == 0 else "right")
    for row in rows:
        result.add_row(*row)
    console.print(result)


_EIGHTHS = " ▏▎▍▌▋▊▉"


def _bar(fraction: float, width: int) -> str:
    cells = max(0.0, min(1.0, fraction)) * width
    full = int(cells)
    partial = _EIGHTHS[int((cells - full) * 8)] if full < width else ""
    return ("█" * full + partial.strip()) or "▏"


def bar_chart(title: str, items: list[tuple[str, float, str]], *, log: bool = False, width: int = 44,
              note: str = "") -> None:
    """A horizontal bar chart of (label, value, shown value); `log` for values of several magnitudes."""
    values = [value for _label, value, _shown in items]
    if log:
        low = math.log10(min(v for v in values if v > 0)) - 0.3
        high = math.log10(max(values))
        scale = [(math.log10(v) - low) / (high - low) if v > 0 else 0 for v in values]
    else:
        top = max(values) or 1
        scale = [v / top for v in values]
    chart = Table(title=title + (" (log scale)" if log else ""), box=None, show_header=False, title_justify="left",
                  title_style="bold", caption=note or None, caption_justify="left", padding=(0, 1))
    chart.add_column(justify="right", style="cyan")
    chart.add_column(justify="left", style="magenta", no_wrap=True)
    chart.add_column(justify="right")
    for (label, _value, shown), fraction in zip(items, scale, strict=True):
        chart.add_row(label, _bar(fraction, width), shown)
    console.print(chart)
    console.print()
