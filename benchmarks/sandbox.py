"""Sandboxed handlers and scripts (PL-5, SC-1): what isolation costs per call.

- a data-factory handler called in this process (`lowcode.sandbox.run_trusted`) against the same
  handler in the sandbox (`lowcode.sandbox.run`: a new `python -I` process with rlimits, seccomp
  and the audit hook, the payload and result over pipes): median and p95 of the round trip;
- the same with 10 calls of the allow-listed API (each a round trip to this process);
- a script's start-up: `scripts.engine.run("return 1")` (the sandbox process, QuickJS imported, a
  context with its memory limit, the prelude, the script) against a bare QuickJS context and eval
  in this process, which is what the sandbox adds to.
No database is needed: the API answers from memory.

Run: .venv/bin/python benchmarks/sandbox.py [--quick]
"""

from __future__ import annotations

import statistics
from pathlib import Path

import _setup
from _setup import console, fmt_time

HANDLERS = [str(Path(__file__).with_name("sandbox_handlers"))]
PAYLOAD = {"count": 10, "department": 3, "spent_from": "2026-10-01", "spent_until": "2026-10-31"}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> int:
    args = _setup.parse_args(__doc__.splitlines()[0])
    _setup.header("Sandboxed handlers and scripts", args.quick)
    import django

    django.setup()
    import quickjs

    from lowcode import sandbox
    from scripts import engine

    api = {"records.get": lambda entity, pk: {"id": pk, "entity": entity, "amount": "12.50"}}
    sandboxed_runs, in_process_runs = (20, 200) if args.quick else (100, 2000)
    cases = [
        ("handler in this process", in_process_runs,
         lambda: sandbox.run_trusted("bench_handlers:echo", PAYLOAD, api=api)),
        ("handler in the sandbox", sandboxed_runs,
         lambda: sandbox.run("bench_handlers:echo", PAYLOAD, paths=HANDLERS, api=api)),
        ("handler + 10 API calls, this process", in_process_runs,
         lambda: sandbox.run_trusted("bench_handlers:ten_calls", PAYLOAD, api=api)),
        ("handler + 10 API calls, sandbox", sandboxed_runs,
         lambda: sandbox.run("bench_handlers:ten_calls", PAYLOAD, paths=HANDLERS, api=api)),
        ("QuickJS context + eval, this process", in_process_runs, lambda: quickjs.Context().eval("1 + 1")),
        ("script start-up (sandbox + QuickJS)", sandboxed_runs,
         lambda: engine.run("return 1;", {"params": {}, "record": None, "user": None}, api=api,
                            time_limit=5, memory_mb=64)),
    ]
    import sys

    sys.path[:0] = HANDLERS  # run_trusted imports the handler module by name, as a trusted plugin's.
    rows, medians = [], []
    with _setup.progress() as bar:
        for label, runs, call in cases:
            task = bar.add_task(label, total=runs)
            first = call()
            assert getattr(first, "ok", True), getattr(first, "message", first)
            timings = []
            for _run in range(runs):
                seconds, _result = _setup.timed(call)
                timings.append(seconds)
                bar.advance(task)
            median = statistics.median(timings)
            medians.append((label, median, fmt_time(median)))
            rows.append([label, str(runs), fmt_time(median), fmt_time(percentile(timings, 0.95)),
                         fmt_time(max(timings))])
    _setup.table("Round trip per call", ["case", "runs", "median", "p95", "max"], rows)
    _setup.bar_chart("Median round trip", medians, log=True)
    ratio = medians[1][1] / medians[0][1]
    console.print(f"The sandbox costs {fmt_time(medians[1][1] - medians[0][1])} a call "
                  f"({ratio:,.0f}x the in-process call): a new interpreter, its imports and the lock-down; "
                  f"API calls are pipe round trips, small beside it.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
