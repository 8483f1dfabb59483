import io
import json
import logging

from django.conf import settings
from pythonjsonlogger.json import JsonFormatter

from lowcode.logs import RequestContextFilter


def test_json_log_lines_carry_request_id_tenant_and_user(acme, make_user, acme_client):
    make_user(acme, "alice")
    acme_client.post("/accounts/login/", {"username": "alice", "password": "correct-horse-battery"})

    config = {k: v for k, v in settings.LOGGING["formatters"]["json"].items() if k != "()"}
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(fmt=config["format"], rename_fields=config["rename_fields"]))
    handler.addFilter(RequestContextFilter())
    logger = logging.getLogger("lowcode.request")
    logger.addHandler(handler)
    try:
        response = acme_client.get("/", HTTP_X_REQUEST_ID="req-1234abcd")
    finally:
        logger.removeHandler(handler)

    line = json.loads(stream.getvalue().splitlines()[-1])
    assert response["X-Request-ID"] == "req-1234abcd"
    assert line["request_id"] == "req-1234abcd"
    assert line["tenant"] == "acme"
    assert line["user"] == "alice"
    assert line["status"] == 200 and line["path"] == "/" and line["duration_ms"] >= 0
    assert line["level"] == "INFO" and line["logger"] == "lowcode.request"


def test_a_malformed_request_id_is_replaced(acme, acme_client):
    response = acme_client.get("/", HTTP_X_REQUEST_ID="<script>")
    assert response["X-Request-ID"] != "<script>" and len(response["X-Request-ID"]) == 32
