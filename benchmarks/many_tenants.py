"""Many tenants in one process: memory, build time, lookups, one tenant's rebuild (DM-2).

Set-up (once; kept for later runs): 20 tenants `bench_t01`..`bench_t20`, each with the same 20
entities of 30 fields of mixed types, relations between some of them included (many-to-one,
one-to-one, many-to-many, to users), published through `dynamic_models.services.publish_body`.

The measurements then run in a fresh child process, so that neither set-up nor imports of the
publish path count in the memory figures:
- RSS (VmRSS) before and after building every tenant's snapshot (`runtime.current()` in each
  tenant), and after building their admin sites and URLconfs too;
- build time per tenant and in total;
- warm lookups across tenants: `connection.set_tenant(t)` + `runtime.get_model(key)`
  round-robin over tenants and keys, `set_tenant` alone, and `get_model` alone;
- a republish of one entity in one tenant: which tenants rebuild on their next
  `runtime.current()` (only that one should), how long that takes, whether the replaced
  snapshot is freed, and how many times the publish and that next `current()` built the
  tenant's models (`runtime.build_apps`; at most once: the snapshot adopts the publish's models).

Run: .venv/bin/python benchmarks/many_tenants.py [--quick]   (--quick: 5 tenants)
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


def tenant_names(quick: bool) -> list[str]:
    return [f"bench_t{index:02d}" for index in range(1, (5 if quick else 20) + 1)]


def set_up(names: list[str]) -> None:
    bodies = _setup.tenant_bodies(ENTITIES, FIELDS)
    tenants = _setup.ensure_tenants(names)
    for tenant in tenants:
        with _setup.in_tenant(tenant):
            _setup.publish_missing(bodies, label=f"Publishing {ENTITIES} entities x {FIELDS} fields "
                                                 f"in {tenant.schema_name} (once)")


def measure(names: list[str], quick: bool) -> None:
    from django.db import connection

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
    before = {}
    for tenant in tenants:
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
        for tenant in tenants:
            connection.set_tenant(tenant)
            seconds, snapshot = _setup.timed(runtime.current)
            after[tenant.schema_name] = seconds
            if snapshot is not before[tenant.schema_name]:
                rebuilt.append(tenant.schema_name)
    finally:
        runtime.build_apps = build_apps
    connection.set_tenant(target)
    assert runtime.current().bodies["ent05"]["label"] == body["label"]
    connection.set_schema_to_public()
    before.clear()
    del snapshot
    gc.collect()
    freed = old() is None
    rss.append(("after the republish", _setup.rss_mb()))

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
        ["RSS at the end", f"{rss[-1][1]:.1f} MiB"],
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


def main(argv: list[str] | None = None) -> int:
    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--phase", choices=["all", "measure"], default="all", help=argparse.SUPPRESS)

    args = _setup.parse_args(__doc__.splitlines()[0], argv, extra=extra)
    names = tenant_names(args.quick)
    if args.phase == "measure":
        with _setup.django_environment(keep_servers=True, migrate=False):
            measure(names, args.quick)
        return 0
    _setup.header(f"Many tenants: {len(names)} x {ENTITIES} entities x {FIELDS} fields", args.quick)
    with _setup.django_environment(keep_servers=args.keep_servers):
        started = time.perf_counter()
        set_up(names)
        console.print(f"[dim]set-up checked in {time.perf_counter() - started:.1f} s; measuring in a fresh "
                      "process ...[/dim]")
        from django.db import connections

        connections.close_all()
        child = subprocess.run([sys.executable, __file__, "--phase", "measure", *(["--quick"] if args.quick else [])],
                               check=False)
    return child.returncode


if __name__ == "__main__":
    raise SystemExit(main())
