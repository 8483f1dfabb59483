import socket

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from lowcode.embedded import EmbeddedRedis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthz_answers_for_any_host():
    response = Client(HTTP_HOST="10.0.0.7").get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_reports_database_redis_and_storage(db):
    response = Client(HTTP_HOST="acme.localhost").get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "redis": "ok", "storage": "ok"}}


def test_readyz_reports_a_stopped_redis_as_not_ready(db, settings, tmp_path):
    server = EmbeddedRedis(home=tmp_path, port=free_port())
    server.start()
    settings.REDIS_URL = f"redis://127.0.0.1:{server.port}/0"
    try:
        assert Client().get("/readyz").status_code == 200
    finally:
        server.stop()
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "not ready"
    assert response.json()["checks"] == {"database": "ok", "redis": "fail", "storage": "ok"}


def test_doctor_prints_ok_for_every_check(db, celery_worker, capsys):
    call_command("lowcode", "doctor")
    lines = capsys.readouterr().out.splitlines()
    checks = [line.split()[1] for line in lines if line.startswith(("OK", "FAIL"))]
    assert checks == ["database", "redis", "celery", "storage", "migrations"]
    assert all(line.startswith("OK") for line in lines if line.strip()), lines


def test_doctor_fails_with_a_hint_and_exit_code(db, settings, capsys):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(CommandError) as failure:
        call_command("lowcode", "doctor")
    assert failure.value.returncode == 1
    out = capsys.readouterr().out
    assert "FAIL  redis" in out and "hint: Is Redis running and REDIS_URL right?" in out
    assert "OK    database" in out
