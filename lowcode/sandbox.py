"""Run untrusted Python handlers in a separate, limited process (PL-5).

`run("module:function", payload, paths=[...], api={...})` starts `python -I sandbox_child.py`
with CPU-time, address-space, file-size and open-file limits and an environment without the
platform's secrets, sends it the payload and answers the calls it makes to the allow-listed
`api` (functions the caller chose, run here, in the caller's request and permissions), until
the handler's result comes back or the wall-clock limit kills the process group. A crash, a
timeout or a memory bomb is an `Outcome` with an error code, never an exception here: the web or
Celery process that called keeps serving. What the child locks down itself is in
`lowcode/sandbox_child.py`.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from lowcode.sandbox_child import ApiGroup

CHILD = Path(__file__).with_name("sandbox_child.py")
MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Limits of one run; the defaults come from the SANDBOX_* settings."""

    cpu_seconds: int = 5
    wall_seconds: float = 10.0
    memory_mb: int = 256
    file_size_mb: int = 16
    open_files: int = 64

    @classmethod
    def default(cls) -> Limits:
        return cls(**getattr(settings, "SANDBOX_LIMITS", {}))


@dataclass
class Outcome:
    """What a run gave: `ok` and the handler's `value`, or an `error` code and a `message`.

    Error codes: timeout (wall clock), cpu (CPU time), memory, forbidden (the sandbox refused
    something), failed (the handler raised), crashed (the process died without a result).
    """

    ok: bool
    value: Any = None
    error: str = ""
    message: str = ""
    duration_ms: float = 0.0
    logs: list[str] = field(default_factory=list)
    calls: int = 0
    seccomp: bool = False


def project_packages() -> list[str]:
    """Top-level packages of the project, which sandboxed code may not import."""
    base = Path(settings.BASE_DIR)
    return sorted(path.parent.name for path in base.glob("*/__init__.py")) + ["django", "celery", "psycopg"]


def _limit(limits: Limits) -> Callable[[], None]:
    def apply() -> None:
        os.setsid()  # Its own process group: a timeout kills whatever it managed to start.
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * MIB,) * 2)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size_mb * MIB,) * 2)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files,) * 2)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def run(target: str, payload: Any, *, paths: list[str] | tuple = (), limits: Limits | None = None,
        api: Mapping[str, Callable] | None = None, user: dict | None = None) -> Outcome:
    """Call `target` ("package.module:function") as `function(payload, context)` in a sandbox."""
    limits = limits or Limits.default()
    api = dict(api or {})
    started = time.monotonic()
    scratch = tempfile.mkdtemp(prefix="lowcode-sandbox-")
    request = {"target": target, "payload": payload, "paths": [str(path) for path in paths], "api": sorted(api),
               "user": user or {}, "scratch": scratch, "forbidden": project_packages()}
    environment = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
    process = subprocess.Popen([sys.executable, "-I", str(CHILD)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, env=environment, cwd=scratch, preexec_fn=_limit(limits))
    outcome = None
    calls = 0
    try:
        process.stdin.write(json.dumps(request, default=str).encode() + b"\n")
        process.stdin.flush()
        for message in _messages(process, started + limits.wall_seconds):
            if "call" not in message:
                outcome = Outcome(ok=message.get("ok", False), value=message.get("value"),
                                  error=message.get("error", ""), message=message.get("message", ""),
                                  logs=message.get("logs", []), seccomp=message.get("seccomp", False))
                break
            calls += 1
            process.stdin.write(json.dumps(_answer(api, message), default=str).encode() + b"\n")
            process.stdin.flush()
    except TimeoutError:
        outcome = Outcome(ok=False, error="timeout",
                          message=_("The handler did not finish within %(seconds)s s.") % {"seconds": limits.wall_seconds})
    except (BrokenPipeError, ValueError):
        pass  # The child died or wrote garbage: reported from its exit status below.
    finally:
        _end(process)
        shutil.rmtree(scratch, ignore_errors=True)
    if outcome is None:
        outcome = _died(process.returncode, limits)
    outcome.duration_ms = (time.monotonic() - started) * 1000
    outcome.calls = calls
    return outcome


class TrustedContext:
    """The `context` of a trusted handler run in this process: the same API as in the sandbox."""

    def __init__(self, api: Mapping[str, Callable], user: dict):
        self._api, self.user, self.logs = api, user, []

    def call(self, name: str, *args, **kwargs):
        if name not in self._api:
            raise PermissionError(_("%(name)s is not in the sandbox's API.") % {"name": name})
        return self._api[name](*args, **kwargs)

    def log(self, message) -> None:
        self.logs.append(str(message))

    def __getattr__(self, group: str):
        if group.startswith("_"):
            raise AttributeError(group)
        return ApiGroup(self, group)


def run_trusted(target: str, payload: Any, *, api: Mapping[str, Callable] | None = None,
                user: dict | None = None) -> Outcome:
    """Call `target` in this process, as `run` would in the sandbox: for code the platform trusts."""
    started = time.monotonic()
    context = TrustedContext(dict(api or {}), user or {})
    try:
        value = import_string(target.replace(":", "."))(payload, context)
        outcome = Outcome(ok=True, value=value)
    except Exception as error:  # noqa: BLE001 - a handler's failure is its result.
        outcome = Outcome(ok=False, error="failed", message=f"{type(error).__name__}: {error}")
    outcome.logs, outcome.duration_ms = context.logs, (time.monotonic() - started) * 1000
    return outcome


def _messages(process: subprocess.Popen, deadline: float):
    """Yield the child's JSON lines until it closes its end or the deadline passes."""
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    buffer = b""
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(timeout=remaining):
                raise TimeoutError
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                yield json.loads(line)
    finally:
        selector.close()


def _answer(api: Mapping[str, Callable], message: dict) -> dict:
    function = api.get(message["call"])
    if function is None:
        return {"error": _("%(name)s is not in the sandbox's API.") % {"name": message["call"]}}
    try:
        return {"value": function(*message.get("args", ()), **message.get("kwargs", {}))}
    except Exception as error:  # noqa: BLE001 - the handler gets the refusal, the caller keeps running.
        return {"error": str(getattr(error, "detail", None) or error) or error.__class__.__name__}


def _end(process: subprocess.Popen) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    for stream in (process.stdin, process.stdout):
        with contextlib.suppress(BrokenPipeError):
            stream.close()


def _died(returncode: int, limits: Limits) -> Outcome:
    if returncode == -signal.SIGXCPU:
        return Outcome(ok=False, error="cpu", message=_("The handler used more than %(seconds)s s of CPU time.")
                       % {"seconds": limits.cpu_seconds})
    return Outcome(ok=False, error="crashed",
                   message=_("The handler's process ended without a result (exit status %(status)s).")
                   % {"status": returncode})
