"""Load: the product under gunicorn with a list/retrieve/create mix, against an older commit (issue 16).

For each of two checkouts, this one ("now") and the commit before issue 16 (`--old`, default
4618ca6, checked out as a git worktree under the system's temporary folder; both use this
checkout's .venv), in the same run, one after the other:
1. set-up in a child process with that checkout's own code (its `benchmarks/api_overhead.py`):
   its own embedded PostgreSQL and Redis (under LOWCODE_HOME, `load-now` / `load-old`, ports
   LOWCODE_PG_PORT/LOWCODE_REDIS_PORT + 10 and + 11), tenant `bench_api`, the scenario's
   `project` and `expense`, 100 projects and 100k expenses (COPY), a superuser's API key;
2. gunicorn on 127.0.0.1 only, settings `benchmarks.bench_settings` (the product's, with API
   throttle rates that a benchmark never reaches): "now" with its `lowcode/gunicorn_conf.py`
   (a worker per core, 4 threads), the old commit as its `make run` started it (2 workers x 4
   threads, gthread); on this 2-core machine both are 2 x 4;
3. closed loop: 50, 100 and 200 keep-alive connections, each sending its next request as soon
   as the last one answered, for `--seconds` each (after a warm-up): requests/s, p50/p95/p99
   latency, errors;
4. open loop: requests started at a fixed rate (exponential gaps), 70% of the best closed-loop
   throughput of that checkout, over up to 200 connections; latency counted from the moment a
   request was due (a request waiting for a free connection waits on the clock).
The mix: 70% list `GET /api/v1/data/expense/?status=submitted&page_size=50`, 20% retrieve of a
random id, 10% create (POST of a valid expense). Targets: the best closed-loop throughput of
"now" at least 2.5x the old commit's, and p95 under 500 ms in the open loop at 70% of it.
The load generator (asyncio, raw HTTP/1.1) runs on the same 2 cores as the server and the
database: both checkouts pay for it alike.

Run: .venv/bin/python benchmarks/load.py [--quick] [--seconds N] [--old COMMIT] [--rows N]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import _setup
from _setup import console

OLD_COMMIT = "4618ca6"
CONNECTIONS = [50, 100, 200]
MIX = [("list", 70), ("retrieve", 20), ("create", 10)]
TARGET_THROUGHPUT_RATIO = 2.5
TARGET_P95 = 0.5
OPEN_LOOP_SHARE = 0.7
HTTP_PORTS = {"now": 18610, "old": 18611}
WORDS = ["taxi", "hotel", "flight", "dinner", "lunch", "laptop", "train", "books"]

#: Set-up run in a checkout with its own code: prints the tenant's host name and an API key.
SETUP = """
import json, os, sys
sys.path.insert(0, "benchmarks")
import _setup
os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.bench_settings"
import api_overhead as bench
rows = int(sys.argv[1])
with _setup.django_environment(keep_servers=True):
    from benchmarks.static_expense.models import Expense, Project
    from dynamic_models import runtime
    (tenant,) = _setup.ensure_tenants([bench.TENANT])
    with _setup.in_tenant(tenant):
        bench.publish_scenario()
        models = {bench.DYNAMIC: {key: runtime.get_model(key) for key in ("project", "expense")},
                  bench.STATIC: {"project": Project, "expense": Expense}}
        user, secret = bench.superuser_and_key()
        if runtime.get_model("expense").objects.count() != rows:
            bench.load(models, rows, user.pk)
        host = tenant.get_primary_domain().domain
print("SETUP " + json.dumps({"host": host, "secret": secret}))
"""


@dataclass
class Checkout:
    name: str
    path: Path
    env: dict
    host: str = ""
    secret: str = ""
    server: subprocess.Popen | None = None


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    statuses: dict = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def quantile(self, share: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# --- checkouts, set-up, servers ------------------------------------------------------------------


def checkouts(old: str) -> list[Checkout]:
    home = Path(os.environ["LOWCODE_HOME"])
    pg, redis = int(os.environ["LOWCODE_PG_PORT"]), int(os.environ["LOWCODE_REDIS_PORT"])
    old_path = Path(tempfile.gettempdir()) / f"lowcode-load-{old}"
    if not old_path.exists():
        subprocess.run(["git", "-C", str(_setup.ROOT), "worktree", "add", "--detach", str(old_path), old],
                       check=True, capture_output=True)
    result = []
    for offset, (name, path) in enumerate((("now", _setup.ROOT), ("old", old_path))):
        env = {**os.environ, "LOWCODE_HOME": str(home / f"load-{name}"), "LOWCODE_PG_PORT": str(pg + 10 + offset),
               "LOWCODE_REDIS_PORT": str(redis + 10 + offset), "DJANGO_SETTINGS_MODULE": "benchmarks.bench_settings",
               "LOG_LEVEL": "WARNING", "PYTHONPATH": str(path)}
        result.append(Checkout(name, Path(path), env))
    return result


def set_up(checkout: Checkout, rows: int) -> None:
    with console.status(f"Set-up of {checkout.name} ({checkout.path}): servers, tenant, {rows:,} expenses ..."):
        done = subprocess.run([sys.executable, "-c", SETUP, str(rows)], cwd=checkout.path, env=checkout.env,
                              capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("SETUP ")]
    if done.returncode or not lines:
        raise RuntimeError(f"set-up of {checkout.name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    found = json.loads(lines[-1][len("SETUP "):])
    checkout.host, checkout.secret = found["host"], found["secret"]


def start_server(checkout: Checkout) -> None:
    port = HTTP_PORTS[checkout.name]
    python = str(_setup.ROOT / ".venv" / "bin" / "python")
    if (checkout.path / "lowcode" / "gunicorn_conf.py").exists():
        command = [python, "-m", "gunicorn", "-c", "python:lowcode.gunicorn_conf", "--bind", f"127.0.0.1:{port}"]
    else:  # What `make run` started then.
        command = [python, "-m", "gunicorn", "lowcode.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2",
                   "--threads", "4", "--worker-class", "gthread"]
    checkout.server = subprocess.Popen(command, cwd=checkout.path, env=checkout.env, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            status = asyncio.run(_one(port, checkout, "GET", "/api/v1/data/expense/?page_size=1", None))
            if status == 200:
                return
        time.sleep(0.5)
    stop_server(checkout)
    raise RuntimeError(f"gunicorn of {checkout.name} did not answer on 127.0.0.1:{port}")


def stop_server(checkout: Checkout) -> None:
    if checkout.server is not None and checkout.server.poll() is None:
        os.killpg(checkout.server.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            checkout.server.wait(timeout=30)
    checkout.server = None


def stop_databases(checkout: Checkout) -> None:
    code = "from lowcode import embedded; embedded.stop(embedded.start_missing())"  # The last user stops them.
    subprocess.run([sys.executable, "-c", code], cwd=checkout.path, env=checkout.env, capture_output=True)


# --- HTTP ---------------------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1."""

    def __init__(self, port: int, checkout: Checkout):
        self.port, self.checkout = port, checkout
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: bytes | None) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.checkout.host}\r\n"
                f"Authorization: Api-Key {self.checkout.secret}\r\nAccept: application/json\r\n")
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        try:
            status_line = await self.reader.readline()
            if not status_line:
                raise ConnectionError("closed")
            status = int(status_line.split()[1])
            length, close = 0, False
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _sep, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                elif name.lower() == "connection" and value.strip().lower() == "close":
                    close = True
            await self.reader.readexactly(length)
        except (ConnectionError, asyncio.IncompleteReadError, IndexError, ValueError):
            self.close()
            return 0
        if close:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _one(port, checkout, method, path, body) -> int:
    connection = Connection(port, checkout)
    try:
        return await connection.request(method, path, body)
    finally:
        connection.close()


def next_request(rng: random.Random, rows: int) -> tuple[str, str, bytes | None, int]:
    kind = rng.choices([name for name, _weight in MIX], [weight for _name, weight in MIX])[0]
    if kind == "list":
        return "GET", "/api/v1/data/expense/?status=submitted&page_size=50", None, 200
    if kind == "retrieve":
        return "GET", f"/api/v1/data/expense/{rng.randint(1, rows)}/", None, 200
    body = json.dumps({"title": f"{rng.choice(WORDS).title()} (load)", "amount": f"{rng.randint(100, 50_000) / 100:.2f}",
                       "currency": "CNY", "spent_on": "2026-01-05", "category": "travel",
                       "project": rng.randint(1, 100), "status": "submitted"}).encode()
    return "POST", "/api/v1/data/expense/", body, 201


async def _send(connection: Connection, rng: random.Random, rows: int, result: Result, started: float | None = None):
    method, path, body, expected = next_request(rng, rows)
    begun = time.perf_counter() if started is None else started
    status = await connection.request(method, path, body)
    result.statuses[status] = result.statuses.get(status, 0) + 1
    if status != expected:
        result.errors += 1
    else:
        result.latencies.append(time.perf_counter() - begun)


async def closed_loop(checkout: Checkout, connections: int, seconds: float, rows: int) -> Result:
    result, port = Result(), HTTP_PORTS[checkout.name]
    deadline = time.perf_counter() + seconds

    async def client(number: int):
        rng, connection = random.Random(number), Connection(port, checkout)
        while time.perf_counter() < deadline:
            await _send(connection, rng, rows, result)
        connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(number) for number in range(connections)))
    result.seconds = time.perf_counter() - started
    return result


async def open_loop(checkout: Checkout, rate: float, seconds: float, rows: int, connections: int = 200) -> Result:
    """Requests due at a fixed rate; one waiting for a free connection waits on the clock."""
    result, port, rng = Result(), HTTP_PORTS[checkout.name], random.Random(1)
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _number in range(connections):
        idle.put_nowait(Connection(port, checkout))
    tasks = []

    async def run(due: float):
        connection = await idle.get()
        try:
            await _send(connection, rng, rows, result, started=due)
        finally:
            idle.put_nowait(connection)

    started = time.perf_counter()
    due = started
    while due < started + seconds:
        due += rng.expovariate(rate)
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(run(due)))
    await asyncio.gather(*tasks)
    result.seconds = seconds  # Offered over this time; the answers may finish later.
    while not idle.empty():
        idle.get_nowait().close()
    return result


# --- main ---------------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def _errors(result: Result) -> str:
    """The count, and the statuses of the failures (0: a connection the server closed, such as a worker
    replaced after its `max_requests`)."""
    failed = {status: count for status, count in result.statuses.items() if status not in (200, 201)}
    return f"{result.errors:,}" + (f" ({', '.join(f'{s}: {c}' for s, c in sorted(failed.items()))})" if failed else "")


def main(argv: list[str] | None = None) -> int:
    def extra(parser):
        parser.add_argument("--seconds", type=float, default=0, help="seconds per load level (default 20; 8 quick)")
        parser.add_argument("--old", default=OLD_COMMIT, help=f"the commit to compare with (default {OLD_COMMIT})")
        parser.add_argument("--rows", type=int, default=0, help="expenses (default 100,000; 10,000 quick)")

    args = _setup.parse_args(__doc__.splitlines()[0], argv, extra=extra)
    seconds = args.seconds or (8 if args.quick else 20)
    rows = args.rows or (10_000 if args.quick else 100_000)
    _setup.header("Load: the product under gunicorn, closed and open loop, now against " + args.old, args.quick)
    closed: dict[str, dict[int, Result]] = {}
    opened: dict[str, tuple[float, Result]] = {}
    targets = checkouts(args.old)
    try:
        for checkout in targets:
            set_up(checkout, rows)
            start_server(checkout)
            try:
                with console.status(f"{checkout.name}: warm-up"):
                    asyncio.run(closed_loop(checkout, 20, max(3.0, seconds / 4), rows))
                closed[checkout.name] = {}
                for connections in CONNECTIONS:
                    with console.status(f"{checkout.name}: closed loop, {connections} connections, {seconds:.0f} s"):
                        closed[checkout.name][connections] = asyncio.run(
                            closed_loop(checkout, connections, seconds, rows))
                best = max(result.rate for result in closed[checkout.name].values())
                rate = OPEN_LOOP_SHARE * best
                with console.status(f"{checkout.name}: open loop at {rate:.1f} req/s, {seconds:.0f} s"):
                    opened[checkout.name] = (rate, asyncio.run(open_loop(checkout, rate, seconds, rows)))
            finally:
                stop_server(checkout)
    finally:
        if not args.keep_servers:
            for checkout in targets:
                stop_databases(checkout)

    rows_out = []
    for name, levels in closed.items():
        for connections, result in levels.items():
            rows_out.append([name, f"closed, {connections} connections", f"{result.rate:,.1f}", _ms(result.quantile(0.5)),
                             _ms(result.quantile(0.95)), _ms(result.quantile(0.99)), _errors(result)])
        rate, result = opened[name]
        rows_out.append([name, f"open, {rate:.1f} req/s offered", f"{result.rate:,.1f}", _ms(result.quantile(0.5)),
                         _ms(result.quantile(0.95)), _ms(result.quantile(0.99)), _errors(result)])
    _setup.table(f"70/20/10 list/retrieve/create over {rows:,} expenses, 127.0.0.1, {seconds:.0f} s per level",
                 ["checkout", "load", "req/s", "p50", "p95", "p99", "errors"], rows_out)
    best = {name: max(result.rate for result in levels.values()) for name, levels in closed.items()}
    ratio = best["now"] / best["old"]
    p95 = opened["now"][1].quantile(0.95)
    ratio_ok, p95_ok = ratio >= TARGET_THROUGHPUT_RATIO, p95 < TARGET_P95
    _setup.table("Targets", ["measure", "result", "target"], [
        [f"best closed-loop throughput, now / {args.old}", f"{best['now']:,.1f} / {best['old']:,.1f} = {ratio:.2f}x",
         f"{_setup.verdict(ratio_ok)} >= {TARGET_THROUGHPUT_RATIO}x"],
        [f"p95, open loop at {OPEN_LOOP_SHARE:.0%} of now's best", _ms(p95),
         f"{_setup.verdict(p95_ok)} < {_ms(TARGET_P95)}"],
    ])
    _setup.bar_chart("Best closed-loop requests/s", [(name, value, f"{value:,.1f}") for name, value in best.items()])
    console.print("[dim]Latency: from sending a request (closed loop) or from when it was due (open loop) to the "
                  "last byte of its answer; errors: answers other than 200/201 or dropped connections.[/dim]")
    return 0 if ratio_ok and p95_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
