"""Many tenants in one process: memory, build time, lookups, one tenant's rebuild (DM-2, issue 16).

Set-up (once; kept for later runs): 400 tenants `bench_t001`..`bench_t400` (`--tenants N`), each
with the same 20 entities of 30 fields of mixed types, relations between some of them included
(many-to-one, one-to-one, many-to-many, to users), published through
`dynamic_models.services.publish_body`, and a superuser `bench`.

The measurements then run in a fresh child process, so that neither set-up nor imports of the
publish path count in the memory figures:
- RSS (VmRSS) before and after building every tenant's snapshot (`runtime.current()` in each
  tenant), and after building their admin sites and URLconfs too (the process keeps the least
  recently used within settings.TENANT_STATE_MEMORY_MB);
- build time per tenant and in total;
- warm lookups across tenants: `connection.set_tenant(t)` + `runtime.get_model(key)`
  round-robin over tenants and keys, `set_tenant` alone, and `get_model` alone;
- a republish of one entity in one tenant: which tenants rebuild on their next
  `runtime.current()` (only that one should), how long that takes, whether the replaced
  snapshot is freed, and how many times the publish and that next `current()` built the
  tenant's models (`runtime.build_apps`; at most once: the snapshot adopts the publish's models);
- after a restart (every snapshot and site dropped): each tenant's first list request
  (`GET /api/v1/data/ent03/?page_size=20` as its superuser, Django's test client), cold: median,
  95th percentile and worst (target: under 100 ms), and the process's RSS after all of them
  against `--rss-bound-mb` (default 1024).

Run: .venv/bin/python benchmarks/many_tenants.py [--quick] [--tenants N] [--rss-bound-mb MB]
(--quick: 5 tenants). Creating a tenant with its 20 entities takes about 10 s on this machine.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import subprocess
import sys
import time
import weakref

import _setup
from _setup import console, fmt_time

ENTITIES = 20
FIELDS = 30


TARGET_COLD_LIST_MS = 100
COLD_LIST = "/api/v1/data/ent03/?page_size=20"
#: Tenants whose snapshots the republish check holds (all of them would defeat the memory bound).
REPUBLISH_TENANTS = 20


def tenant_names(count: int) -> list[str]:
    return [f"bench_t{index:03d}" for index in range(1, count + 1)]


def set_up(names: list[str]) -> None:
    """The first tenant set up through the product (its entities published), the others its clones."""
    from django.contrib.auth import get_user_model

    template = _setup.ensure_tenants(names[:1])[0]
    with _setup.in_tenant(template):
        _setup.publish_missing(_setup.tenant_bodies(ENTITIES, FIELDS),
                               label=f"Publishing {ENTITIES} entities x {FIELDS} fields in {template.schema_name} (once)")
        if not get_user_model().objects.filter(username="bench").exists():
            get_user_model().objects.create_superuser("bench", "bench@example.com", "bench-password-1")
    _setup.clone_tenants(template, names[1:])


def measure(names: list[str], quick: bool, rss_bound_mb: int) -> None:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from dynamic_models import runtime, services
    from lowcode import site
    from lowcode.tenancy.models import Tenant

    lookups = 20_000 if quick else 100_000
    tenants = sorted(Tenant.objects.filter(schema_name__in=names), key=lambda t: t.schema_name)
    keys = [f"ent{index:02d}" for index in range(ENTITIES)]
    gc.collect()
    rss = [("after django.setup()", _setup.rss_mb())]

    # Build every tenant's snapshot.
    builds = {}
    with _setup.progress() as bar:
        task = bar.add_task(f"Building {len(tenants)} snapshots", total=len(tenants))
        for tenant in tenants:
            connection.set_tenant(tenant)
            builds[tenant.schema_name] = _setup.timed(runtime.current)[0]
            bar.advance(task)
    assert len(runtime.current().bodies) == ENTITIES
    gc.collect()
    rss.append(("+ all snapshots", _setup.rss_mb()))

    admin_builds = {}
    for tenant in tenants:
        connection.set_tenant(tenant)
        admin_builds[tenant.schema_name] = _setup.timed(site.urlconf)[0]
    gc.collect()
    rss.append(("+ admin sites and URLconfs", _setup.rss_mb()))

    # Warm lookups.
    pairs = itertools.cycle([(tenant, key) for key in keys for tenant in tenants])
    set_tenant = connection.set_tenant

    def switch_and_get():
        tenant, key = next(pairs)
        set_tenant(tenant)
        runtime.get_model(key)

    def switch_only():
        set_tenant(next(pairs)[0])

    key_cycle = itertools.cycle(keys)
    connection.set_tenant(tenants[0])
    get_only = _setup.per_call(lambda: runtime.get_model(next(key_cycle)), lookups)
    switch_get = _setup.per_call(switch_and_get, lookups)
    switch = _setup.per_call(switch_only, lookups)
    next_only = _setup.per_call(lambda: next(pairs), lookups)

    # Republish one entity in one tenant; who rebuilds?
    target = tenants[0]
    connection.set_tenant(target)
    body = dict(runtime.current().bodies["ent05"])
    body["label"] = f"Ent05 republished {time.strftime('%H:%M:%S')}"
    checked = tenants[:REPUBLISH_TENANTS]
    before = {}
    for tenant in checked:
        connection.set_tenant(tenant)
        before[tenant.schema_name] = runtime.current()
    old = weakref.ref(before[target.schema_name])
    connection.set_tenant(target)
    model_builds = []  # Every runtime.build_apps() of the republish and of the next current() calls.
    build_apps = runtime.build_apps
    runtime.build_apps = lambda bodies: model_builds.append(len(bodies)) or build_apps(bodies)
    try:
        publish_wall, migration = _setup.timed(lambda: services.publish_body(body, note="benchmark: republish"))
        after, rebuilt = {}, []
        for tenant in checked:
            connection.set_tenant(tenant)
            seconds, snapshot = _setup.timed(runtime.current)
            after[tenant.schema_name] = seconds
            if snapshot is not before[tenant.schema_name]:
                rebuilt.append(tenant.schema_name)
    finally:
        runtime.build_apps = build_apps
    connection.set_tenant(target)
    assert runtime.current().bodies["ent05"]["label"] == body["label"]
    site.urlconf()  # As the tenant's next request: its site, built from the replaced snapshot, is rebuilt.
    connection.set_schema_to_public()
    before.clear()
    del snapshot
    gc.collect()
    freed = old() is None
    rss.append(("after the republish", _setup.rss_mb()))

    # After a restart: each tenant's first list request, cold.
    client = Client()
    user_model = get_user_model()

    def sign_in(tenant):
        client.defaults["HTTP_HOST"] = tenant.get_primary_domain().domain
        with _setup.in_tenant(tenant):
            client.force_login(user_model.objects.get(username="bench"))

    sign_in(tenants[0])
    assert client.get(COLD_LIST).status_code == 200  # Loads the client's middleware once.
    runtime._snapshots.clear()
    gc.collect()
    cold = []
    with _setup.progress() as bar:
        task = bar.add_task(f"First list request in {len(tenants)} cold tenants", total=len(tenants))
        for tenant in tenants:
            sign_in(tenant)
            seconds, response = _setup.timed(lambda: client.get(COLD_LIST))
            assert response.status_code == 200, response.content[:200]
            cold.append(seconds)
            bar.advance(task)
    connection.set_schema_to_public()
    gc.collect()
    rss.append((f"after {len(tenants)} cold first lists", _setup.rss_mb()))
    cold_sorted = sorted(cold)
    cold_p95 = cold_sorted[min(len(cold) - 1, int(len(cold) * 0.95))]

    # Output.
    build_values = list(builds.values())
    admin_values = list(admin_builds.values())
    base = rss[0][1]
    _setup.table(f"{len(tenants)} tenants x {ENTITIES} entities x {FIELDS} fields, one process", ["measure", "value"], [
        ["RSS after django.setup()", f"{base:.1f} MiB"],
        ["RSS + all snapshots", f"{rss[1][1]:.1f} MiB (+{rss[1][1] - base:.1f} MiB, "
                                f"{(rss[1][1] - base) / len(tenants):.2f} MiB per tenant)"],
        ["RSS + admin sites and URLconfs", f"{rss[2][1]:.1f} MiB (+{rss[2][1] - rss[1][1]:.1f} MiB)"],
        ["snapshot build, total", fmt_time(sum(build_values))],
        ["snapshot build per tenant, median (first / best / worst)",
         f"{fmt_time(_setup.median(build_values))} ({fmt_time(build_values[0])} / {fmt_time(min(build_values))} / "
         f"{fmt_time(max(build_values))})"],
        ["admin site + URLconf per tenant, median (total)",
         f"{fmt_time(_setup.median(admin_values))} ({fmt_time(sum(admin_values))})"],
        ["warm get_model(), one tenant, keys round-robin", fmt_time(_setup.median(get_only))],
        ["warm set_tenant() + get_model(), tenants and keys round-robin", fmt_time(_setup.median(switch_get))],
        ["  of which set_tenant() alone", fmt_time(_setup.median(switch) - _setup.median(next_only))],
        [f"republish {target.schema_name}.ent05 (label only): publish_body wall / duration_ms",
         f"{fmt_time(publish_wall)} / {migration.duration_ms} ms"],
        ["model builds of that republish, its next current() included (target <= 1)",
         f"{len(model_builds)} ({', '.join(f'{count} entities' for count in model_builds)})"],
        ["tenants rebuilt on their next current()", f"{len(rebuilt)} of {len(tenants)}: {', '.join(rebuilt)}"],
        [f"current() in {target.schema_name} after the republish (rebuild)", fmt_time(after[target.schema_name])],
        ["current() in the other tenants, median",
         fmt_time(_setup.median([v for k, v in after.items() if k != target.schema_name] or [0.0]))],
        ["replaced snapshot freed (weakref, after gc.collect())", "yes" if freed else "[bold red]no[/]"],
        ["cold first list request per tenant: median / p95 / worst",
         f"{fmt_time(_setup.median(cold))} / {fmt_time(cold_p95)} / {fmt_time(cold_sorted[-1])}"],
        ["RSS at the end (settings.TENANT_STATE_MEMORY_MB)",
         f"{rss[-1][1]:.1f} MiB ({settings.TENANT_STATE_MEMORY_MB} MiB estimated state; bound {rss_bound_mb} MiB)"],
    ])
    lookup_ok = _setup.median(switch_get) * 1e6 < _setup.TARGET_WARM_LOOKUP_US
    only_one = rebuilt == [target.schema_name]
    built_once = len(model_builds) <= 1
    console.print(f"[dim]Warm figures are per call over {len(get_only) * 1000:,} calls (batches of 1,000, loop "
                  "overhead included); set_tenant() alone is net of the loop.[/dim]\n")
    _setup.bar_chart("Resident memory (MiB)", [(label, value, f"{value:.1f}") for label, value in rss])
    _setup.bar_chart("Snapshot build time per tenant", [(name, builds[name], fmt_time(builds[name]))
                                                        for name in sorted(builds)])
    _setup.bar_chart(f"current() per tenant after republishing {target.schema_name}.ent05",
                     [(name, after[name], fmt_time(after[name])) for name in sorted(after)], log=True)
    console.print(f"Warm lookup across tenants: {fmt_time(_setup.median(switch_get))} -> {_setup.verdict(lookup_ok)} "
                  f"(target < {_setup.TARGET_WARM_LOOKUP_US:.0f} µs); only the republished tenant rebuilt: "
                  f"{_setup.verdict(only_one)}; replaced snapshot freed: {_setup.verdict(freed)}; models built at "
                  f"most once by the label-only republish ({len(model_builds)}): {_setup.verdict(built_once)}")
    peak = max(value for _label, value in rss)
    console.print(f"Cold first list request, median {fmt_time(_setup.median(cold))} -> "
                  f"{_setup.verdict(_setup.median(cold) * 1000 < TARGET_COLD_LIST_MS)} (target < {TARGET_COLD_LIST_MS} ms); "
                  f"RSS peak {peak:.0f} MiB for {len(tenants)} tenants -> {_setup.verdict(peak < rss_bound_mb)} "
                  f"(bound {rss_bound_mb} MiB)")


def main(argv: list[str] | None = None) -> int:
    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--tenants", type=int, default=None,
                            help="how many tenants (default 400; 5 with --quick)")
        parser.add_argument("--rss-bound-mb", type=int, default=1024, help="RSS a web process must stay under")
        parser.add_argument("--phase", choices=["all", "measure"], default="all", help=argparse.SUPPRESS)

    args = _setup.parse_args(__doc__.splitlines()[0], argv, extra=extra)
    names = tenant_names(args.tenants or (5 if args.quick else 400))
    if args.phase == "measure":
        with _setup.django_environment(keep_servers=True, migrate=False):
            measure(names, args.quick, args.rss_bound_mb)
        return 0
    _setup.header(f"Many tenants: {len(names)} x {ENTITIES} entities x {FIELDS} fields", args.quick)
    with _setup.django_environment(keep_servers=args.keep_servers):
        started = time.perf_counter()
        set_up(names)
        console.print(f"[dim]set-up checked in {time.perf_counter() - started:.1f} s; measuring in a fresh "
                      "process ...[/dim]")
        from django.db import connections

        connections.close_all()
        child = subprocess.run([sys.executable, __file__, "--phase", "measure", "--tenants", str(len(names)),
                                "--rss-bound-mb", str(args.rss_bound_mb), *(["--quick"] if args.quick else [])],
                               check=False)
    return child.returncode


if __name__ == "__main__":
    raise SystemExit(main())
