"""Many tenants in one process: memory, cold first requests, build time, lookups, one tenant's rebuild (DM-2, issue 16).

Set-up (once; kept for later runs): 400 tenants `bench_t001`..`bench_t400` (`--tenants N`), each
with the same 20 entities of 30 fields of mixed types, relations between some of them included
(many-to-one, one-to-one, many-to-many, to users), and a superuser `bench`. The first tenant is set
up through the product (`dynamic_models.services.publish_body`); the others are copies of its
schema (`_setup.clone_tenants`: its pg_dump restored under their names, about 1-3 s a tenant
against about 10 s to publish 20 entities; 400 tenants in 7-17 minutes on this machine).

The measurements then run in a fresh child process, prepared as a gunicorn web worker is
(`lowcode.gunicorn_conf.prepare_process`: imports, then `gc.freeze()`):
- after a restart, each tenant's first list request (`GET /api/v1/data/ent03/?page_size=20` as its
  superuser, Django's test client), in every tenant in turn: median, 95th percentile and worst
  (target: median under 100 ms); RSS after 100, 200 and all of them against `--rss-bound-mb`
  (default 1024), the tenants the LRU of snapshots holds and evicted (settings.TENANT_STATE_MEMORY_MB),
  and the garbage collector's share of those requests;
- the first 50 tenants asked again: those the LRU evicted build their state again (median, p95);
- in 20 tenants, each piece of a tenant's state timed on its own: snapshot (models), URLconf
  (API and pages), the admin on its first use;
- warm lookups across tenants: `connection.set_tenant(t)` + `runtime.get_model(key)`
  round-robin over tenants and keys, `set_tenant` alone, and `get_model` alone;
- a republish of one entity in one tenant: which tenants rebuild on their next
  `runtime.current()` (only that one should), how long that takes, whether the replaced
  snapshot is freed, and how many times the publish and that next `current()` built the
  tenant's models (`runtime.build_apps`; at most once).

Run: .venv/bin/python benchmarks/many_tenants.py [--quick] [--tenants N] [--rss-bound-mb MB]
(--quick: 5 tenants)."""

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
#: Tenants whose snapshots the republish check holds (all of them would defeat the memory bound),
#: the same ones whose pieces are timed one by one.
REPUBLISH_TENANTS = 20
#: Tenants of the walk's beginning asked again after it (those the LRU dropped are timed).
EVICTED_SAMPLE = 50


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


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


class GcPauses:
    """The collector's pauses while in the block: their total and the full (oldest generation) ones."""

    def __init__(self):
        self.total = 0.0
        self.full: list[float] = []
        self._started = 0.0

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = time.perf_counter() - self._started
        self.total += pause
        if info["generation"] == 2:
            self.full.append(pause)

    def __enter__(self):
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc):
        gc.callbacks.remove(self._callback)


def measure(names: list[str], quick: bool, rss_bound_mb: int) -> None:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from dynamic_models import runtime, services
    from lowcode import gunicorn_conf, site
    from lowcode.tenancy.models import Tenant

    lookups = 20_000 if quick else 100_000
    tenants = sorted(Tenant.objects.filter(schema_name__in=names), key=lambda t: t.schema_name)
    keys = [f"ent{index:02d}" for index in range(ENTITIES)]
    client = Client()
    user_model = get_user_model()

    def sign_in(tenant):
        client.defaults["HTTP_HOST"] = tenant.get_primary_domain().domain
        with _setup.in_tenant(tenant):
            client.force_login(user_model.objects.get(username="bench"))

    def first_list(tenant) -> float:
        sign_in(tenant)
        seconds, response = _setup.timed(lambda: client.get(COLD_LIST))
        assert response.status_code == 200, response.content[:200]
        return seconds

    # As a web worker after loading the app (gunicorn's post_worker_init), then one request that
    # loads the test client's middleware; its tenant's state is dropped again.
    gunicorn_conf.prepare_process()
    first_list(tenants[0])
    runtime._snapshots.clear()
    gc.collect()
    rss = [("after start-up (prepare_process) and a first request", _setup.rss_mb())]

    # After a restart: each tenant's first list request, in a process that has not seen it.
    walked = tenants[1:]
    checkpoints = {count for count in (100, 200) if count < len(walked)} | {len(walked)}
    never_seen = []
    with _setup.progress() as bar, GcPauses() as walk_gc:
        task = bar.add_task(f"First list request in {len(walked)} tenants never seen", total=len(walked))
        for count, tenant in enumerate(walked, 1):
            never_seen.append(first_list(tenant))
            if count in checkpoints:
                rss.append((f"after {count} tenants' first requests", _setup.rss_mb()))
            bar.advance(task)
    evictions = len(walked) - len(runtime._snapshots)
    held = len(runtime._snapshots)
    # Tenants the LRU dropped: their next request builds their state again.
    evicted = [tenant for tenant in walked[:EVICTED_SAMPLE] if tenant.schema_name not in runtime._snapshots]
    again = [first_list(tenant) for tenant in evicted]
    connection.set_schema_to_public()
    rss.append((f"after {len(evicted)} evicted tenants again", _setup.rss_mb()))
    per_tenant_mb = (rss[1][1] - rss[0][1]) / min(checkpoints)

    # One tenant's pieces, each timed on its own: snapshot, URLconf (API, pages), admin on first use.
    sample = tenants[:REPUBLISH_TENANTS]
    runtime._snapshots.clear()
    gc.collect()
    builds, urlconf_builds, admin_builds = {}, {}, {}
    for tenant in sample:
        connection.set_tenant(tenant)
        builds[tenant.schema_name] = _setup.timed(runtime.current)[0]
        urlconf_builds[tenant.schema_name], urlconf = _setup.timed(site.urlconf)
        admin_urls = next(p for p in urlconf.urlpatterns if str(p.pattern) == "admin/").urlconf_module
        admin_builds[tenant.schema_name] = _setup.timed(lambda urls=admin_urls: urls.urlpatterns)[0]
    assert len(runtime.current().bodies) == ENTITIES

    # Warm lookups.
    pairs = itertools.cycle([(tenant, key) for key in keys for tenant in sample])
    set_tenant = connection.set_tenant

    def switch_and_get():
        tenant, key = next(pairs)
        set_tenant(tenant)
        runtime.get_model(key)

    def switch_only():
        set_tenant(next(pairs)[0])

    key_cycle = itertools.cycle(keys)
    connection.set_tenant(sample[0])
    get_only = _setup.per_call(lambda: runtime.get_model(next(key_cycle)), lookups)
    switch_get = _setup.per_call(switch_and_get, lookups)
    switch = _setup.per_call(switch_only, lookups)
    next_only = _setup.per_call(lambda: next(pairs), lookups)

    # Republish one entity in one tenant; who rebuilds?
    target = sample[0]
    connection.set_tenant(target)
    body = dict(runtime.current().bodies["ent05"])
    body["label"] = f"Ent05 republished {time.strftime('%H:%M:%S')}"
    before = {}
    for tenant in sample:
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
        for tenant in sample:
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

    # Output.
    build_values = list(builds.values())
    base = rss[0][1]
    peak = max(value for _label, value in rss)
    cold_ok = _setup.median(never_seen) * 1000 < TARGET_COLD_LIST_MS
    _setup.table(f"{len(tenants)} tenants x {ENTITIES} entities x {FIELDS} fields, one process", ["measure", "value"], [
        ["RSS after start-up", f"{base:.1f} MiB"],
        *[[f"RSS {label}", f"{value:.1f} MiB (+{value - base:.1f} MiB)"] for label, value in rss[1:]],
        [f"RSS per tenant held (first {min(checkpoints)})", f"{per_tenant_mb:.2f} MiB"],
        ["tenants held / evicted by the LRU (settings.TENANT_STATE_MEMORY_MB)",
         f"{held} / {evictions} ({settings.TENANT_STATE_MEMORY_MB} MiB estimated state, "
         f"{runtime._snapshots.total_bytes / 2**20:.0f} MiB now)"],
        [f"first list request, {len(never_seen)} tenants never seen: median / p95 / worst",
         f"{fmt_time(_setup.median(never_seen))} / {fmt_time(percentile(never_seen, 0.95))} / "
         f"{fmt_time(max(never_seen))}"],
        [f"first list request, {len(again)} evicted tenants again: median / p95 / worst",
         f"{fmt_time(_setup.median(again))} / {fmt_time(percentile(again, 0.95))} / {fmt_time(max(again))}"
         if again else "none evicted"],
        ["garbage collection during those first requests: total (share) / full collections",
         f"{fmt_time(walk_gc.total)} ({walk_gc.total / sum(never_seen):.0%}) / {len(walk_gc.full)} "
         f"(longest {fmt_time(max(walk_gc.full, default=0.0))})"],
        [f"snapshot build per tenant, median of {len(sample)} (best / worst)",
         f"{fmt_time(_setup.median(build_values))} ({fmt_time(min(build_values))} / {fmt_time(max(build_values))})"],
        ["URLconf (API, pages) per tenant, median", fmt_time(_setup.median(list(urlconf_builds.values())))],
        ["admin site on its first use per tenant, median", fmt_time(_setup.median(list(admin_builds.values())))],
        ["warm get_model(), one tenant, keys round-robin", fmt_time(_setup.median(get_only))],
        ["warm set_tenant() + get_model(), tenants and keys round-robin", fmt_time(_setup.median(switch_get))],
        ["  of which set_tenant() alone", fmt_time(_setup.median(switch) - _setup.median(next_only))],
        [f"republish {target.schema_name}.ent05 (label only): publish_body wall / duration_ms",
         f"{fmt_time(publish_wall)} / {migration.duration_ms} ms"],
        ["model builds of that republish, its next current() included (target <= 1)",
         f"{len(model_builds)} ({', '.join(f'{count} entities' for count in model_builds)})"],
        ["tenants rebuilt on their next current()", f"{len(rebuilt)} of {len(sample)}: {', '.join(rebuilt)}"],
        [f"current() in {target.schema_name} after the republish (rebuild)", fmt_time(after[target.schema_name])],
        ["current() in the other tenants, median",
         fmt_time(_setup.median([v for k, v in after.items() if k != target.schema_name] or [0.0]))],
        ["replaced snapshot freed (weakref, after gc.collect())", "yes" if freed else "[bold red]no[/]"],
    ])
    lookup_ok = _setup.median(switch_get) * 1e6 < _setup.TARGET_WARM_LOOKUP_US
    only_one = rebuilt == [target.schema_name]
    built_once = len(model_builds) <= 1
    console.print(f"[dim]Warm figures are per call over {len(get_only) * 1000:,} calls (batches of 1,000, loop "
                  "overhead included); set_tenant() alone is net of the loop.[/dim]\n")
    _setup.bar_chart("Resident memory (MiB)", [(label, value, f"{value:.1f}") for label, value in rss],
                     note=f"bound {rss_bound_mb} MiB")
    cold_bars = [("never seen, median", _setup.median(never_seen)), ("never seen, p95", percentile(never_seen, 0.95))]
    if again:
        cold_bars += [("evicted, median", _setup.median(again)), ("evicted, p95", percentile(again, 0.95))]
    _setup.bar_chart("A tenant's first list request", [(label, value, fmt_time(value)) for label, value in cold_bars],
                     note=f"target: median < {TARGET_COLD_LIST_MS} ms")
    _setup.bar_chart("One tenant's state, built piece by piece (median)", [
        (label, _setup.median(list(values.values())), fmt_time(_setup.median(list(values.values()))))
        for label, values in (("snapshot (models)", builds), ("URLconf", urlconf_builds),
                              ("admin (first use)", admin_builds))])
    console.print(f"Warm lookup across tenants: {fmt_time(_setup.median(switch_get))} -> {_setup.verdict(lookup_ok)} "
                  f"(target < {_setup.TARGET_WARM_LOOKUP_US:.0f} µs); only the republished tenant rebuilt: "
                  f"{_setup.verdict(only_one)}; replaced snapshot freed: {_setup.verdict(freed)}; models built at "
                  f"most once by the label-only republish ({len(model_builds)}): {_setup.verdict(built_once)}")
    console.print(f"Cold first list request, median {fmt_time(_setup.median(never_seen))} -> "
                  f"{_setup.verdict(cold_ok)} (target < {TARGET_COLD_LIST_MS} ms); "
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
    with _setup.django_environment(keep_servers=args.keep_servers, tenant_schemas=names[:1]):
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
