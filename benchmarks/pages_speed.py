"""End-user pages (PG-6): server time of the generated list and detail pages as a scoped member.

In tenant `bench_pages` (settings `benchmarks.bench_settings`), the scenario's `project` and
`expense` are published and loaded as rbac_audit.py does: 100 projects and 100k expenses spread over
200 users in 20 departments, mia the manager of Sales with a department scope on expenses (about
5,000 visible, the IBAN masked), and here also a view of every project. Measured in process with
the Django test Client signed in as mia, after a warm-up, over interleaved rounds:

- the list page `/data/expense/` (50 rows of her 100k-row entity; cursor pagination, as the table
  is large), and the same sorted by amount and filtered by status;
- the detail page of a project with its related expenses (the 20 newest she may see).

Printed: the median time per request against the 200 ms target, and the SQL queries per request.
"Boards" adds its pages (kanban) to PAGES.

Run: .venv/bin/python benchmarks/pages_speed.py [--quick]
"""

from __future__ import annotations

import gc
import os
import time
import warnings

import _setup
import rbac_audit
from _setup import console, fmt_time

os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.bench_settings"

TENANT = "bench_pages"
TARGET_SECONDS = 0.200
PROJECT_ROLE = "bench_pages_projects"


def pages(project_id: int, rows: int) -> dict[str, str]:
    """What is measured: label -> path."""
    return {
        f"list, 50 of {rows:,} rows": "/data/expense/",
        "list sorted and filtered": "/data/expense/?status=submitted&sort=-amount",
        "detail with 20 related records": f"/data/project/{project_id}/",
        # Four categories and "no value", 20 cards each, counted and fetched from all her rows.
        "kanban, 5 columns": "/data/expense/kanban/?group=category",
        "calendar, one month": "/data/expense/calendar/?date=spent_on&month=2025-06",
    }


def project_view_for(user) -> None:
    """mia may view every project (the detail page's record)."""
    from rbac import services as rbac
    from rbac.models import DataScope, Role

    role = Role.objects.filter(key=PROJECT_ROLE).first() or rbac.create_role(
        PROJECT_ROLE, "Projects", grants=["data.project.view"])
    if not role.scopes.filter(entity_key="project", kind=DataScope.Kind.ALL).exists():
        rbac.add_scope(role, "project", DataScope.Kind.ALL)
    if not role.users.filter(pk=user.pk).exists():
        rbac.assign_role(user, role)


def timed_get(client, path: str) -> float:
    started = time.perf_counter()
    response = client.get(path)
    seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"GET {path}: HTTP {response.status_code} {response.content[:500]!r}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    args = _setup.parse_args(__doc__.splitlines()[0], argv)
    rows = 10_000 if args.quick else 100_000
    rounds, warmup = (10, 5) if args.quick else (40, 10)
    _setup.header("End-user pages: list and detail as a scoped member", args.quick)
    warnings.filterwarnings("ignore", message="No directory at")

    with _setup.django_environment(keep_servers=args.keep_servers):
        from django.test import Client

        from dynamic_models import runtime
        from rbac import services as rbac

        (tenant,) = _setup.ensure_tenants([TENANT])
        with _setup.in_tenant(tenant):
            rbac_audit.publish_scenario()
            _setup.empty_audit_trail()
            users = rbac_audit.people()
            rbac_audit.roles_and_departments(users)
            mia = users["mia"]
            project_view_for(mia)
            models = {key: runtime.get_model(key) for key in ("project", "expense")}
            owners = [user.pk for user in users["department_users"]]
            load_seconds = rbac_audit.load(models, rows, users["admin"].pk, owners)
            rbac.clear_local_cache()
            visible = rbac.scope_queryset(mia, models["expense"].objects.all())
            project_id = visible.values_list("project_id", flat=True).first()
            related = visible.filter(project_id=project_id).count()
            console.print(f"[dim]Loaded in {load_seconds:.1f} s: {rows:,} expenses; mia sees {visible.count():,}, "
                          f"{related} of them on project {project_id}.[/dim]")
            client = Client(HTTP_HOST=tenant.get_primary_domain().domain)
            client.force_login(mia)
            measured = pages(project_id, rows)
            times = {label: [] for label in measured}
            queries = {}
            for label, path in measured.items():
                for _ in range(warmup):
                    timed_get(client, path)
                queries[label] = len(rbac_audit.captured(lambda path=path: client.get(path)))
            with _setup.progress() as bar:
                task = bar.add_task("Requests as mia, pages interleaved", total=rounds * len(measured))
                for _round in range(rounds):
                    gc.collect()
                    for label, path in measured.items():
                        times[label].append(timed_get(client, path))
                        bar.advance(task)
            table = []
            for label, path in measured.items():
                median = _setup.median(times[label])
                table.append([label, path, fmt_time(median), fmt_time(min(times[label])), str(queries[label]),
                              f"{_setup.verdict(median < TARGET_SECONDS)} < {fmt_time(TARGET_SECONDS)}"])
            _setup.table(f"Server time per page as mia (department scope), {rows:,} expenses, median of {rounds}",
                         ["page", "path", "median", "best", "queries", "target"], table)
            console.print("[dim]Django test Client in process (middleware, views, templates; no network), "
                          "signed in by session, after a warm-up. Queries: one request, SET search_path "
                          "included.[/dim]")
            return 0 if all(_setup.median(values) < TARGET_SECONDS for values in times.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
