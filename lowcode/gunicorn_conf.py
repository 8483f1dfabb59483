"""gunicorn's settings for this machine: `gunicorn lowcode.wsgi -c python:lowcode.gunicorn_conf`.

What `make run`, the Dockerfile and docker-compose run (README, "Web server"). Each value can be
set through the environment; a command-line option given after `-c` wins over this file.

- `bind`: `LOWCODE_BIND` (e.g. ``0.0.0.0:8000`` to serve the network, as the container does),
  else ``127.0.0.1:$LOWCODE_PORT`` (8000): reachable from this machine only.
- `workers`: one per core the process may use (at least 2, so one worker's restart or a slow
  request never leaves nobody to serve), `LOWCODE_WEB_WORKERS`. Each worker holds its tenants'
  state (models, admin, API), so more workers cost memory, not only CPU.
- `threads`: 4 per worker (`LOWCODE_WEB_THREADS`): a request spends about half its time waiting
  for PostgreSQL, when another thread of the worker can run Python.
- `max_requests` 2000 with a jitter of up to 200 (`LOWCODE_MAX_REQUESTS`, 0 turns it off): each
  worker is replaced after that many requests, which returns whatever memory it accumulated, and
  the jitter keeps the workers from restarting all at once.
- `post_worker_init`: once a worker has loaded the app, `prepare_process()` imports what a first
  request would and moves every object so far out of the garbage collector's scans (`gc.freeze()`):
  a worker holding hundreds of tenants' models otherwise spends a large share of a cold tenant's
  first request collecting (benchmarks/README.md, "Tenant state at scale"). The collector's
  thresholds stay Python's: fewer collections leave the state of tenants the LRU dropped
  uncollected (a run with 50,000 allocations between young collections grew past 1.3 GiB).
"""

import gc
import math
import os


def available_cores() -> int:
    """The cores this process may run on: its CPU affinity, bounded by a cgroup (container) CPU quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max") as limit:
            quota, period = limit.read().split()[:2]
    except (OSError, ValueError):
        return cores
    if quota == "max":
        return cores
    return max(1, min(cores, math.ceil(int(quota) / int(period))))


def _int_setting(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


wsgi_app = "lowcode.wsgi"
bind = [os.environ.get("LOWCODE_BIND") or f"127.0.0.1:{_int_setting('LOWCODE_PORT', 8000)}"]
worker_class = "gthread"
workers = _int_setting("LOWCODE_WEB_WORKERS", max(2, available_cores()))
threads = _int_setting("LOWCODE_WEB_THREADS", 4)
max_requests = _int_setting("LOWCODE_MAX_REQUESTS", 2000)
max_requests_jitter = max_requests // 10
# Requests finish or are cut after this long when a worker is replaced or the server stops.
graceful_timeout = _int_setting("LOWCODE_GRACEFUL_TIMEOUT", 30)

def prepare_process() -> None:
    """Ready a process that serves tenants, once the app is loaded: import what a tenant's first
    request would, then freeze what exists (the framework, the apps, their modules: never garbage)
    so that the collections a tenant's build triggers scan only the tenants' state."""
    from lowcode import site

    site.warm_up()
    gc.collect()
    gc.freeze()


def post_worker_init(worker) -> None:
    """gunicorn's hook, in each worker after it loaded the app (post_fork runs before: the arbiter
    loads nothing, as `preload_app` is off, so freezing there would cover almost nothing)."""
    prepare_process()
