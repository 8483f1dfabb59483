"""Tenants with many entities: publish cost by tenant size, memory over publishes, OpenAPI schema (issue 17).

Set-up (once; kept for later runs): tenants `bench_big10`, `bench_big100`, `bench_big500` and
`bench_big200` with that many entities of 10 fields of mixed types (the size of real-world tables:
Baserow's templates average 9.7 fields), some related to earlier ones (many-to-one, one-to-one,
many-to-many), published through `dynamic_models.services.publish_body`.

Then, in a fresh child process:
- publish time of one entity (a label change of `ent05`, median of 3) in tenants of 10, 100 and
  500 entities: `publish_body` (validation, migration, commit), then what the next request of the
  tenant pays (`runtime.current()` and the tenant's URLconf), and both together, with the entity
  model classes both built (`runtime.build_model` calls); target: 500 within 2x of 10;
- RSS of the process over 20 publishes in the 200-entity tenant, each followed by a list request
  of the republished entity (builds the snapshot, site and the entity's API classes again);
  target: flat within 10% (the last publish's RSS against the fifth's);
- the OpenAPI schema of the 200-entity tenant: cold (first request after a publish), cached
  (the same request again) and one entity's (`?entity=ent05`, cold).

Run: .venv/bin/python benchmarks/big_tenant.py [--quick]   (--quick: 10/50/100 entities, 100 for RSS, 10 publishes)
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import time

import _setup
from _setup import console, fmt_time

FIELDS = 10
REPEATS = 3


def sizes(quick: bool) -> tuple[list[int], int, int]:
    """(publish sizes, RSS tenant size, publishes in it)."""
    return ([10, 50, 100], 100, 10) if quick else ([10, 100, 500], 200, 20)


def schema_of(size: int) -> str:
    return f"bench_big{size}"


def set_up(all_sizes: list[int]) -> None:
    tenants = _setup.ensure_tenants([schema_of(size) for size in all_sizes])
    for size, tenant in zip(all_sizes, tenants, strict=True):
        with _setup.in_tenant(tenant):
            started = time.perf_counter()
            done = _setup.publish_missing(_setup.tenant_bodies(size, FIELDS),
                                          label=f"Publishing {size} entities x {FIELDS} fields in {tenant.schema_name} (once)")
            if done:
                console.print(f"[dim]{tenant.schema_name}: {done} publishes in {time.perf_counter() - started:.0f} s[/dim]")


def _superuser_client(tenant):
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client(HTTP_HOST=tenant.get_primary_domain().domain)
    with _setup.in_tenant(tenant):
        user = get_user_model().objects.filter(username="bench").first() \
            or get_user_model().objects.create_superuser("bench", "bench@example.com", "bench-password-1")
        client.force_login(user)
    return client


def _republish(tenant, number: int):
    """Publish ent05 with a new label; return (publish seconds, next-request rebuild seconds,
    entity model classes built by both)."""
    from django.db import connection

    from dynamic_models import runtime, services
    from lowcode import site

    connection.set_tenant(tenant)
    body = dict(runtime.current().bodies["ent05"])
    body["label"] = f"Ent05 v{number} {time.strftime('%H:%M:%S')}"
    built, build_model = [], runtime.build_model
    runtime.build_model = lambda apps, body: built.append(body["key"]) or build_model(apps, body)
    try:
        publish_seconds, _migration = _setup.timed(lambda: services.publish_body(body, note="benchmark: republish"))
        connection.set_tenant(type(tenant).objects.get(pk=tenant.pk))  # As the next request loads the row.
        rebuild_seconds, _urlconf = _setup.timed(lambda: (runtime.current(), site.urlconf()))
    finally:
        runtime.build_model = build_model
    connection.set_schema_to_public()
    return publish_seconds, rebuild_seconds, len(built)


def measure(quick: bool) -> None:
    from lowcode.tenancy.models import Tenant

    publish_sizes, rss_size, publishes = sizes(quick)
    tenants = {size: Tenant.objects.get(schema_name=schema_of(size)) for size in [*publish_sizes, rss_size]}

    # Publish time by tenant size.
    publish_rows, totals = [], {}
    for size in publish_sizes:
        runs = [_republish(tenants[size], number) for number in range(REPEATS + 1)][1:]  # The first warms up.
        publish, rebuild = _setup.median([r[0] for r in runs]), _setup.median([r[1] for r in runs])
        totals[size] = publish + rebuild
        publish_rows.append([f"{size} entities", fmt_time(publish), fmt_time(rebuild), fmt_time(totals[size]),
                             str(max(r[2] for r in runs))])
    smallest, largest = publish_sizes[0], publish_sizes[-1]
    ratio = totals[largest] / totals[smallest]

    # RSS over publishes in one tenant, each followed by a request.
    tenant = tenants[rss_size]
    client = _superuser_client(tenant)
    gc.collect()
    rss = [_setup.rss_mb()]
    for number in range(publishes):
        _republish(tenant, 100 + number)
        assert client.get("/api/v1/data/ent05/?page_size=5").status_code == 200
        gc.collect()
        rss.append(_setup.rss_mb())
    reference = rss[min(5, len(rss) - 1)]
    growth = rss[-1] / reference - 1

    # OpenAPI schema of the whole tenant, cold and cached, and of one entity.
    _republish(tenant, 999)  # A new site: nothing cached.
    cold, response = _setup.timed(lambda: client.get("/api/schema/?format=json"))
    assert response.status_code == 200, response.content[:300]
    size_mb = len(response.content) / 1024 / 1024
    cached, _response = _setup.timed(lambda: client.get("/api/schema/?format=json"))
    one, response = _setup.timed(lambda: client.get("/api/schema/?format=json&entity=ent05"))
    assert response.status_code == 200

    _setup.table(f"Tenants of {', '.join(map(str, publish_sizes))} entities x {FIELDS} fields: republish one entity "
                 f"(label), median of {REPEATS}", ["tenant", "publish_body", "next request's rebuild", "total", "models built"],
                 publish_rows)
    _setup.table(f"{rss_size} entities: RSS and OpenAPI", ["measure", "value"], [
        ["RSS before the publishes", f"{rss[0]:.1f} MiB"],
        [f"RSS after publish 5 / {publishes}", f"{reference:.1f} / {rss[-1]:.1f} MiB ({growth:+.1%})"],
        ["OpenAPI schema, whole tenant: cold / cached", f"{fmt_time(cold)} / {fmt_time(cached)} ({size_mb:.1f} MiB)"],
        ["OpenAPI schema, one entity (?entity=ent05), cold", fmt_time(one)],
    ])
    _setup.bar_chart(f"RSS (MiB) after each publish in {rss_size} entities",
                     [(str(index), value, f"{value:.1f}") for index, value in enumerate(rss)])
    console.print(f"Publish in {largest} entities vs {smallest}: {ratio:.2f}x -> {_setup.verdict(ratio <= 2)} "
                  f"(target <= 2x); RSS over {publishes} publishes: {growth:+.1%} -> "
                  f"{_setup.verdict(abs(growth) <= 0.10)} (target flat within 10%)")


def main(argv: list[str] | None = None) -> int:
    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--phase", choices=["all", "measure"], default="all", help=argparse.SUPPRESS)

    args = _setup.parse_args(__doc__.splitlines()[0], argv, extra=extra)
    publish_sizes, rss_size, _publishes = sizes(args.quick)
    if args.phase == "measure":
        with _setup.django_environment(keep_servers=True, migrate=False):
            measure(args.quick)
        return 0
    _setup.header(f"Big tenants: {', '.join(map(str, publish_sizes))} and {rss_size} entities x {FIELDS} fields",
                  args.quick)
    with _setup.django_environment(keep_servers=args.keep_servers):
        started = time.perf_counter()
        set_up(sorted({*publish_sizes, rss_size}))
        console.print(f"[dim]set-up checked in {time.perf_counter() - started:.1f} s; measuring in a fresh "
                      "process ...[/dim]")
        from django.db import connections

        connections.close_all()
        child = subprocess.run([sys.executable, __file__, "--phase", "measure", *(["--quick"] if args.quick else [])],
                               check=False)
    return child.returncode


if __name__ == "__main__":
    raise SystemExit(main())
