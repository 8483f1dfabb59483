"""gunicorn's settings for the machine (issue 16, finding 6): lowcode/gunicorn_conf.py."""

import gc
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

from django.conf import settings

from lowcode import gunicorn_conf
from lowcode.gunicorn_conf import available_cores

SETTINGS = ("bind", "workers", "threads", "worker_class", "max_requests", "max_requests_jitter")


def gunicorn_settings(**environment) -> dict:
    """The settings gunicorn reads from the config file, with `environment` set (and no LOWCODE_* else)."""
    clean = {name: value for name, value in os.environ.items() if not name.startswith("LOWCODE_")}
    output = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "python:lowcode.gunicorn_conf", "--print-config"],
        env={**clean, **environment}, cwd=settings.BASE_DIR, capture_output=True, text=True, check=True).stdout
    found = dict(re.findall(r"^(\w+)\s+= (.*)$", output, re.MULTILINE))
    return {name: found[name] for name in SETTINGS}


def test_by_default_it_listens_on_this_machine_only_with_workers_per_core_and_restarts():
    assert gunicorn_settings() == {
        "bind": "['127.0.0.1:8000']", "workers": str(max(2, available_cores())), "threads": "4",
        "worker_class": "gthread", "max_requests": "2000", "max_requests_jitter": "200"}


def test_the_environment_sets_the_address_workers_threads_and_restarts():
    assert gunicorn_settings(LOWCODE_PORT="9001")["bind"] == "['127.0.0.1:9001']"
    assert gunicorn_settings(LOWCODE_BIND="0.0.0.0:8000", LOWCODE_WEB_WORKERS="5", LOWCODE_WEB_THREADS="8",
                             LOWCODE_MAX_REQUESTS="500") == {
        "bind": "['0.0.0.0:8000']", "workers": "5", "threads": "8", "worker_class": "gthread",
        "max_requests": "500", "max_requests_jitter": "50"}


def test_available_cores_is_at_most_the_affinity():
    assert 1 <= available_cores() <= len(os.sched_getaffinity(0))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_server_runs_with_these_settings(db, test_database_url):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:lowcode.gunicorn_conf"],
        env={**os.environ, "DATABASE_URL": test_database_url, "LOG_LEVEL": "WARNING", "LOWCODE_PORT": str(port),
             "LOWCODE_WEB_WORKERS": "1", "LOWCODE_WEB_THREADS": "2"},
        cwd=settings.BASE_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:  # noqa: S310
                    assert response.status == 200
                    break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_each_worker_freezes_what_it_loaded(db):
    gc.unfreeze()
    try:
        gunicorn_conf.post_worker_init(worker=None)
        assert gc.get_freeze_count() > 100_000  # Django, the apps and the modules of the site's URLs.
        assert "lowcode.api.urls" in sys.modules and "dynamic_models.admin" in sys.modules
    finally:
        gc.unfreeze()
