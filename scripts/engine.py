"""Running a script's JavaScript on QuickJS with memory and time limits (SC-1).

The script runs in lowcode.sandbox's separate process (scripts/runner/quickjs_runner.py there):
a looping or exploding script costs that process, never the web or Celery process that asked,
and its time limit is the sandbox's CPU-time and wall-clock limit. QuickJS has its own memory
limit and no file system, network, timers or modules: `require`, `fetch`, `std` and `os` do not
exist. The script sees only its input (`params`, `record`, `user`), `log(...)` and the records
API it is given, answered here as the user it runs for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path

from django.utils.translation import gettext as _

from lowcode import sandbox

RUNNER = str(Path(__file__).with_name("runner"))
#: The sandbox's own memory besides QuickJS's (the interpreter and its imports).
PROCESS_MB = 96
#: Wall-clock time a run gets besides the script's CPU time (starting the process, API calls).
START_SECONDS = 3


def run(code: str, inputs: dict, *, api: Mapping[str, Callable], time_limit: float, memory_mb: int) -> sandbox.Outcome:
    """Run `code` as the body of `function (params, record, user)`; the Outcome's value is what it returns."""
    limits = sandbox.Limits(cpu_seconds=max(1, math.ceil(time_limit)), wall_seconds=time_limit + START_SECONDS,
                            memory_mb=memory_mb + PROCESS_MB, file_size_mb=1, open_files=32)
    outcome = sandbox.run("quickjs_runner:run", {"code": code, "inputs": inputs, "memory_mb": memory_mb},
                          paths=[RUNNER], api=api, user=inputs.get("user"), limits=limits)
    if not outcome.ok:
        if outcome.error in ("cpu", "timeout"):
            outcome.error = "timeout"
            outcome.message = _("The script ran longer than its time limit of %(seconds)s s.") % {"seconds": time_limit}
        return outcome
    result = outcome.value
    outcome.ok, outcome.logs = result["ok"], result["logs"]
    outcome.value = result.get("value")
    outcome.error, outcome.message = result.get("error", ""), result.get("message", "")
    return outcome
