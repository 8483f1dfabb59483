"""The sandbox for untrusted handlers (PL-5): every attack ends as an error result within its limits,
and the process that ran it (and the tenants it serves) keeps answering."""

import threading
import time
from pathlib import Path

import pytest

from lowcode import sandbox

HANDLERS = [str(Path(__file__).parent / "sandbox_handlers")]
LIMITS = sandbox.Limits(cpu_seconds=2, wall_seconds=5, memory_mb=256, file_size_mb=8)


def run(name: str, **options):
    options.setdefault("limits", LIMITS)
    return sandbox.run(f"attacks:{name}", {"n": 21}, paths=HANDLERS, **options)


def test_a_handler_gets_its_input_the_api_it_was_given_and_its_log():
    created = []

    def create(entity, data):
        created.append((entity, data))
        return {"id": 7}

    outcome = run("double", api={"records.create": create}, user={"username": "alice"})

    assert outcome.ok, outcome.message
    assert outcome.value == {"double": 42, "created": {"id": 7}}
    assert created == [("expense", {"amount": "1.00"})]
    assert outcome.logs == ["asked the API", "doubling 21"]
    assert outcome.calls == 1
    assert outcome.duration_ms > 0


def test_an_api_refusal_reaches_the_handler_as_an_error():
    def create(entity, data):
        raise ValueError("amount: Ensure this value is greater than 0.")

    outcome = run("refused_call", api={"records.create": create})

    assert not outcome.ok and outcome.error == "failed"
    assert "greater than 0" in outcome.message


def test_a_call_outside_the_allow_list_is_refused():
    outcome = run("unlisted_call", api={"records.create": lambda *args: None})

    assert (outcome.ok, outcome.error) == (False, "forbidden")
    assert "users.delete_all is not in the sandbox's API" in outcome.message


@pytest.mark.parametrize(("handler", "error", "message"), [
    ("loop", "cpu", "CPU time"),
    ("sleep", "timeout", "did not finish within 5"),
    ("allocate_2_gb", "memory", "out of memory"),
    ("fork", "forbidden", "os.fork"),
    ("run_a_program", "forbidden", "subprocess.Popen"),
    ("read_environment", "forbidden", "no environment"),
    ("read_passwd", "forbidden", "may not read /etc/passwd"),
    ("open_socket", "forbidden", "socket"),
    ("write_1_gb", "failed", "File too large"),
    ("write_outside", "forbidden", "may not write /tmp/lowcode-sandbox-escape.txt"),
    ("import_settings", "forbidden", "may not import lowcode"),
    ("load_a_library", "forbidden", "ctypes"),
    ("segfault", "crashed", "exit status -11"),
    ("not_json", "failed", "not JSON"),
])
def test_an_attack_ends_as_an_error_result_within_its_limits(handler, error, message):
    started = time.monotonic()
    outcome = run(handler)

    assert (outcome.ok, outcome.error) == (False, error), outcome.message
    assert message in outcome.message
    assert time.monotonic() - started < LIMITS.wall_seconds + 2
    assert not Path("/tmp/lowcode-sandbox-escape.txt").exists()  # noqa: S108 - the escape it must not make


def test_the_kernel_denies_what_the_audit_hook_would_miss():
    """seccomp loads here (libseccomp is on every machine we run on): a new process or a socket
    is refused by the kernel too, not only by the Python-level hook."""
    outcome = run("double", api={"records.create": lambda *args: {}})

    assert outcome.seccomp


def test_other_tenants_keep_answering_during_an_attack(globex, globex_client):
    assert globex_client.get("/accounts/login/").status_code == 200  # Built globex's site before timing.
    attack = threading.Thread(target=run, args=("loop",))
    attack.start()
    time.sleep(0.3)
    try:
        timings = []
        for _request in range(5):
            started = time.monotonic()
            response = globex_client.get("/accounts/login/")
            timings.append(time.monotonic() - started)
            assert response.status_code == 200
        assert max(timings) < 0.5, timings
    finally:
        attack.join()
