"""Audited writes without a tenant-wide lock (issue 16): bare service writes, and concurrent writers in one tenant.

In tenant `bench_audit_write`, the scenario's `project` and `expense` are published (rbac_audit.py's
set-up) and 2,000 expenses loaded on every run; its audit trail is emptied first.

Three ways to write, each in its own `transaction.atomic()` (rbac_audit.write_functions):
- unaudited: `dynamic_models.validation.save_record`, the record's save alone;
- event only: the same and the audit event `records.save` writes (`audit.services.record`), nothing
  else: the bare audited write, what the audit adds to a write;
- records.save: the product's full service (also permission checks, file fields, and the workflow
  trigger that runs after each commit), for reference.

1. Bare service writes: rbac_audit.py's update (new title and amount) and create, the three ways
   in many short interleaved rounds (the order rotates): ops/s and the median over the rounds of
   each one's time / unaudited time (target for the event only: <= 1.3).
2. Concurrent writers: 1, 2, 4 and 8 processes (forked after set-up, each with its own connection),
   started together, each creating expenses for a fixed time in the same tenant, the three ways.
   Printed: total creates/s (median over the rounds) and the ratio of 8 writers to 1 (target >= 4
   for the event only). The unaudited ratio is what the machine's CPUs allow: where it is below 4
   (2 CPUs), the event only passes if it reaches 90% of it, i.e. the audit makes writers wait for
   nothing more than the CPUs do; step 3 measures the 4x where the CPUs are not the limit.
3. The same with each transaction kept open 50 ms after its save (`pg_sleep`, as a request's other
   work keeps it), 1 and 8 writers: unaudited, event only, and the event with the tenant's lock held
   until the commit, as the insert trigger took it before issue 16 (writers then took turns).
4. Then `audit.services.seal_events()` and `verify()`: every event written is in a block, and the
   trail verifies.

Run: .venv/bin/python benchmarks/audit_write.py [--quick]
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import random
import time

import _setup
import rbac_audit
from _setup import console, fmt_time

os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.bench_settings"  # As rbac_audit.py: kept connections.

TENANT = "bench_audit_write"
ROWS = 2000
TARGET_WRITE_RATIO = rbac_audit.TARGET_WRITE_RATIO
TARGET_CONCURRENCY = 4.0
#: Where the unaudited writers cannot reach TARGET_CONCURRENCY (too few CPUs): the share of their ratio to reach.
MACHINE_LIMIT_SHARE = 0.9
WRITERS = (1, 2, 4, 8)
UNAUDITED, EVENT_ONLY, FULL = rbac_audit.UNAUDITED, rbac_audit.EVENT_ONLY, rbac_audit.AUDITED
LOCKED = rbac_audit.EVENT_LOCKED
SIDES = (UNAUDITED, EVENT_ONLY, FULL)
HOLD_SIDES = (UNAUDITED, EVENT_ONLY, LOCKED)
LABELS = {UNAUDITED: "unaudited", EVENT_ONLY: "event only", FULL: "records.save",
          LOCKED: "event, lock until commit (before issue 16)"}
HOLD = 0.05
HOLD_WRITERS = (1, 8)


def bench_user():
    from django.contrib.auth import get_user_model

    user, _created = get_user_model().objects.get_or_create(
        username=TENANT, defaults={"is_superuser": True, "is_staff": True})
    return user


def write_for(tenant, side: str, seconds: float, hold: float, start, results, writer: int) -> None:
    """A forked writer: create expenses through `side`'s save in `tenant` until `seconds` after the start."""
    from django.db import connection

    from dynamic_models import runtime

    count = 0
    try:
        connection.set_tenant(tenant)
        model, user = runtime.get_model("expense"), bench_user()
        start.wait()
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            rbac_audit.create_batch(model, side, 1, user, f"w{writer} {count} {os.getpid()}", hold=hold)
            count += 1
        results.put((count, time.perf_counter() - started))
    except Exception as error:  # Reported by the parent, which counts the writers that answered.
        results.put(error)
        raise
    finally:
        connection.close()


def concurrent_rate(tenant, side: str, writers: int, seconds: float, hold: float = 0.0) -> float:
    """Creates per second of `writers` processes writing together for `seconds`, each transaction held `hold` s."""
    from django.core.cache import caches
    from django.db import connections

    connections.close_all()  # Never share a connection with the children.
    caches.close_all()
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(writers + 1), context.Queue()
    processes = [context.Process(target=write_for, args=(tenant, side, seconds, hold, start, results, n))
                 for n in range(writers)]
    for process in processes:
        process.start()
    start.wait(timeout=120)
    answers = [results.get(timeout=seconds + 120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    errors = [answer for answer in answers if isinstance(answer, Exception)]
    if errors:
        raise RuntimeError(f"a writer failed: {errors[0]!r}")
    # Until the last writer's last create ended: a create started before the end counts in full.
    return sum(count for count, _elapsed in answers) / max(elapsed for _count, elapsed in answers)


def rotated(number: int, sides: tuple[str, ...] = SIDES) -> tuple[str, ...]:
    """The sides in the order of round `number`: each goes first as often as the others."""
    shift = number % len(sides)
    return sides[shift:] + sides[:shift]


def measure_writes(model, user, rounds: int, batch: int, warmup: int) -> dict[str, dict[str, rbac_audit.Side]]:
    results = {op: {side: rbac_audit.Side() for side in SIDES} for op in ("update", "create")}
    rng = random.Random(5)
    with _setup.progress() as bar:
        task = bar.add_task("Bare writes: unaudited, event only, records.save",
                            total=2 * len(SIDES) * (rounds * batch + warmup))
        for op in ("update", "create"):
            for side in SIDES:
                if op == "update":
                    rbac_audit.update_batch(model, side, rng.sample(range(1, ROWS + 1), warmup), user, f"warm {side}")
                    ids = [rng.randint(1, ROWS)]
                    results[op][side].queries = rbac_audit.captured(
                        lambda side=side, ids=ids: rbac_audit.update_batch(model, side, ids, user, f"sql {side}"))
                else:
                    rbac_audit.create_batch(model, side, warmup, user, f"warm {side}")
                    results[op][side].queries = rbac_audit.captured(
                        lambda side=side: rbac_audit.create_batch(model, side, 1, user, f"sql {side}"))
                bar.advance(task, warmup)
            for number in range(rounds):
                ids = rng.sample(range(1, ROWS + 1), batch)  # The same records for each side, new values each.
                for side in rotated(number):
                    gc.collect()
                    tag = f"r{number} {side}"
                    if op == "update":
                        seconds, cpu = rbac_audit.update_batch(model, side, ids, user, tag)
                    else:
                        seconds, cpu = rbac_audit.create_batch(model, side, batch, user, tag)
                    results[op][side].add(seconds, cpu, batch)
                    bar.advance(task, batch)
    return results


def main(argv: list[str] | None = None) -> int:
    args = _setup.parse_args(__doc__.splitlines()[0], argv)
    # Many short rounds: the three ways take turns every few milliseconds, so that the other jobs of a
    # shared machine slow each of them alike (long rounds made the ratios swing from 1.0 to 3.9).
    rounds, batch, warmup = (25, 8, 20) if args.quick else (61, 16, 50)
    concurrency_rounds, seconds = (2, 3.0) if args.quick else (3, 6.0)
    _setup.header("Audited writes: bare service calls and concurrent writers in one tenant", args.quick)
    with _setup.django_environment(keep_servers=args.keep_servers):
        from audit import services as audit
        from audit.models import AuditEvent
        from dynamic_models import runtime

        (tenant,) = _setup.ensure_tenants([TENANT])
        with _setup.in_tenant(tenant):
            rbac_audit.publish_scenario()
            _setup.empty_audit_trail()
            user = bench_user()
            models = {key: runtime.get_model(key) for key in ("project", "expense")}
            rbac_audit.load(models, ROWS, user.pk, [user.pk])
            writes = measure_writes(models["expense"], user, rounds, batch, warmup)

        rates = {(side, writers): [] for side in SIDES for writers in WRITERS}
        with _setup.progress() as bar:
            task = bar.add_task(f"Concurrent writers ({', '.join(map(str, WRITERS))}) x 3 ways, {seconds:.0f} s each",
                                total=concurrency_rounds * len(WRITERS) * len(SIDES))
            for number in range(concurrency_rounds):
                for writers in WRITERS:
                    for side in rotated(number):
                        rates[side, writers].append(concurrent_rate(tenant, side, writers, seconds))
                        bar.advance(task)
        held = {(side, writers): [] for side in HOLD_SIDES for writers in HOLD_WRITERS}
        with _setup.progress() as bar:
            task = bar.add_task(f"Concurrent writers, each transaction open {HOLD * 1000:.0f} ms longer",
                                total=concurrency_rounds * len(HOLD_WRITERS) * len(HOLD_SIDES))
            for number in range(concurrency_rounds):
                for writers in HOLD_WRITERS:
                    for side in rotated(number, HOLD_SIDES):
                        held[side, writers].append(concurrent_rate(tenant, side, writers, seconds, HOLD))
                        bar.advance(task)

        with _setup.in_tenant(tenant):
            written = AuditEvent.objects.count()
            sealed_started = time.perf_counter()
            audit.seal_events()
            seal_seconds = time.perf_counter() - sealed_started
            verified = audit.verify()

    console.print()
    rows, ratios = [], {}
    for op in ("update", "create"):
        sides = writes[op]
        for side in (EVENT_ONLY, FULL):
            ratios[op, side], per_round = rbac_audit.ratio_of(sides[side], sides[UNAUDITED])
        rows.append([rbac_audit.WRITES[op], *(f"{sides[side].median_rate:,.0f} ({len(sides[side].queries)})"
                                              for side in SIDES),
                     f"{ratios[op, EVENT_ONLY]:.3f}", f"{ratios[op, FULL]:.3f}",
                     f"{_setup.verdict(ratios[op, EVENT_ONLY] <= TARGET_WRITE_RATIO)} <= {TARGET_WRITE_RATIO}"])
    bare_ok = all(ratios[op, EVENT_ONLY] <= TARGET_WRITE_RATIO for op in ("update", "create"))
    _setup.table(f"Bare service writes, each in its own transaction: ops/s (median of {rounds} rounds of {batch}) "
                 "(statements sent per write) and time ratios to unaudited (median over the rounds)",
                 ["write", *(f"{LABELS[side]} ops/s" for side in SIDES), "event only / unaudited",
                  "records.save / unaudited", "target"], rows)

    medians = {key: _setup.median(values) for key, values in rates.items()}
    scaling = {side: medians[side, WRITERS[-1]] / medians[side, 1] for side in SIDES}
    _setup.table(f"Concurrent writers creating expenses in one tenant: creates/s in total (median of "
                 f"{concurrency_rounds} rounds of {seconds:.0f} s)",
                 ["writers", *(LABELS[side] for side in SIDES)],
                 [[str(writers), *(f"{medians[side, writers]:,.0f}" for side in SIDES)] for writers in WRITERS]
                 + [[f"{WRITERS[-1]} / 1", *(f"{scaling[side]:.2f}x" for side in SIDES)]])
    cpu_bound = scaling[UNAUDITED] < TARGET_CONCURRENCY
    busy_target = MACHINE_LIMIT_SHARE * scaling[UNAUDITED] if cpu_bound else TARGET_CONCURRENCY
    busy_ok = scaling[EVENT_ONLY] >= busy_target
    console.print(f"{WRITERS[-1]} writers / 1 writer, event only: {scaling[EVENT_ONLY]:.2f}x "
                  f"({_setup.verdict(busy_ok)} >= {busy_target:.2f}); unaudited {scaling[UNAUDITED]:.2f}x "
                  f"(what this machine allows: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the "
                  f"end" + (f"; below {TARGET_CONCURRENCY}, so the target is {MACHINE_LIMIT_SHARE:.0%} of it)"
                            if cpu_bound else ")"))
    medians = {key: _setup.median(values) for key, values in held.items()}
    held_scaling = {side: medians[side, HOLD_WRITERS[-1]] / medians[side, 1] for side in HOLD_SIDES}
    _setup.table(f"The same, each transaction open {HOLD * 1000:.0f} ms longer (a request's other work): creates/s",
                 ["writers", *(LABELS[side] for side in HOLD_SIDES)],
                 [[str(writers), *(f"{medians[side, writers]:,.0f}" for side in HOLD_SIDES)]
                  for writers in HOLD_WRITERS]
                 + [[f"{HOLD_WRITERS[-1]} / 1", *(f"{held_scaling[side]:.2f}x" for side in HOLD_SIDES)]])
    held_ok = held_scaling[EVENT_ONLY] >= TARGET_CONCURRENCY
    console.print(f"{HOLD_WRITERS[-1]} writers / 1 writer, transactions open {HOLD * 1000:.0f} ms longer, event only: "
                  f"{held_scaling[EVENT_ONLY]:.2f}x ({_setup.verdict(held_ok)} >= {TARGET_CONCURRENCY}); with the "
                  f"lock held until commit: {held_scaling[LOCKED]:.2f}x")
    concurrency_ok = busy_ok and held_ok
    _setup.table("Sealing and verify", ["events written", "sealed in", "blocks", "not sealed", "verify"], [
        [f"{written:,}", fmt_time(seal_seconds), f"{verified.blocks:,}", f"{verified.unsealed:,}",
         "OK" if verified.ok else verified.message]])
    all_sealed = verified.ok and verified.unsealed == 0 and verified.count == written
    console.print(f"Bare writes: {_setup.verdict(bare_ok)}; concurrency: {_setup.verdict(concurrency_ok)}; "
                  f"every event sealed and verified: {_setup.verdict(all_sealed)}")
    return 0 if bare_ok and concurrency_ok and all_sealed else 1


if __name__ == "__main__":
    raise SystemExit(main())
