"""Runtime model build and lookup times (DM-2).

Measures, in one process:
- cold build of one 50-field entity model: `runtime.build_apps({key: body})`, median of 20;
- warm lookup: `runtime.get_model(key)` with the tenant's snapshot cached, per call over 100k
  calls (batches of 1,000; median, best and worst batch), against the 50 µs target;
- cold build of a whole tenant snapshot of 20 entities x 30 fields: `runtime.build_apps(bodies)`
  in memory, and `runtime.current()` after `runtime.forget()` (reads the published bodies too).

Run: .venv/bin/python benchmarks/model_build.py [--quick]
"""

from __future__ import annotations

import gc

import _setup
from _setup import console, fmt_time

TENANT = "bench_model"
WIDE = "wide"


def main(argv: list[str] | None = None) -> int:
    args = _setup.parse_args(__doc__.splitlines()[0], argv)
    builds = 5 if args.quick else 20
    lookups = 20_000 if args.quick else 100_000
    snapshot_builds = 5 if args.quick else 10
    _setup.header("Runtime model build and lookup", args.quick)

    with _setup.django_environment(keep_servers=args.keep_servers):
        from django.db import connection

        from dynamic_models import runtime

        wide = _setup.entity_body(WIDE, 50, relations=[(WIDE, "many_to_one")], formula=True)
        bodies = _setup.tenant_bodies(20, 30)
        (tenant,) = _setup.ensure_tenants([TENANT])
        with _setup.in_tenant(tenant):
            _setup.publish_missing([wide, *bodies], label=f"Publishing {WIDE} and 20 entities in {TENANT} (once)")

            # 1. Cold build of one entity (a new private registry each time).
            runtime.build_apps({WIDE: wide})  # Imports and expression parsing are not what we measure.
            one = _setup.repeat(lambda: runtime.build_apps({WIDE: wide}), builds)

            # 2. Warm lookup through the cached snapshot of the connection's tenant.
            model = runtime.get_model(WIDE)
            assert len(model._meta.concrete_fields) == 6 + 49  # System columns + 49 (the formula has none).
            warm = _setup.per_call(lambda: runtime.get_model(WIDE), lookups)

            # 3. Cold build of the tenant's 20 x 30 snapshot.
            by_key = {body["key"]: body for body in bodies}
            memory = _setup.repeat(lambda: runtime.build_apps(by_key), snapshot_builds, setup=gc.collect)
            schema = connection.schema_name

            def forget():
                runtime.forget(schema)
                gc.collect()

            loaded = _setup.repeat(runtime.current, snapshot_builds, setup=forget)
            entities = len(runtime.current().bodies)

    warm_median = _setup.median(warm)
    ok = warm_median * 1e6 < _setup.TARGET_WARM_LOOKUP_US
    rows = [
        ["cold build 1 x 50 fields", f"{builds}", fmt_time(_setup.median(one)), fmt_time(min(one)),
         fmt_time(max(one)), ""],
        ["warm get_model()", f"{len(warm) * 1000:,}", fmt_time(warm_median), fmt_time(min(warm)),
         fmt_time(max(warm)), f"{_setup.verdict(ok)} <{_setup.TARGET_WARM_LOOKUP_US:.0f} µs"],
        ["cold build 20 x 30 fields", f"{snapshot_builds}", fmt_time(_setup.median(memory)),
         fmt_time(min(memory)), fmt_time(max(memory)), ""],
        [f"cold current(), {entities} entities", f"{snapshot_builds}", fmt_time(_setup.median(loaded)),
         fmt_time(min(loaded)), fmt_time(max(loaded)), ""],
    ]
    _setup.table("Runtime models", ["measure", "runs", "median", "best", "worst", "target"], rows)
    console.print("[dim]cold build: runtime.build_apps() into a new private registry, in memory; warm "
                  "get_model(): per call, batches of 1,000 calls with the snapshot cached (loop overhead "
                  "included); cold current(): runtime.forget() then runtime.current() (reads the published "
                  f"bodies of {TENANT} and builds them).[/dim]\n")
    _setup.bar_chart("Median time per operation", [
        ("warm get_model()", warm_median, fmt_time(warm_median)),
        ("build 1 x 50 fields", _setup.median(one), fmt_time(_setup.median(one))),
        ("build 20 x 30 fields", _setup.median(memory), fmt_time(_setup.median(memory))),
        (f"current() {entities} entities", _setup.median(loaded), fmt_time(_setup.median(loaded))),
    ], log=True)
    console.print(f"Warm lookup: {fmt_time(warm_median)} per call -> {_setup.verdict(ok)} "
                  f"(target < {_setup.TARGET_WARM_LOOKUP_US:.0f} µs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
