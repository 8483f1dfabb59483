import io
import json
import logging

from django.conf import settings
from pythonjsonlogger.json import JsonFormatter

from lowcode.logs import RequestContextFilter


def _logged_line(client, path: str, **headers) -> tuple:
    config = {k: v for k, v in settings.LOGGING["formatters"]["json"].items() if k != "()"}
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(fmt=config["format"], rename_fields=config["rename_fields"]))
    handler.addFilter(RequestContextFilter())
    logger = logging.getLogger("lowcode.request")
    logger.addHandler(handler)
    try:
        response = client.get(path, **headers)
    finally:
        logger.removeHandler(handler)
    return response, json.loads(stream.getvalue().splitlines()[-1])


def test_json_log_lines_carry_request_id_tenant_and_user(acme, make_user, acme_client):
    make_user(acme, "alice")
    acme_client.post("/accounts/login/", {"username": "alice", "password": "correct-horse-battery"})
    response, line = _logged_line(acme_client, "/", HTTP_X_REQUEST_ID="req-1234abcd")
    assert response["X-Request-ID"] == "req-1234abcd"
    assert line["request_id"] == "req-1234abcd"
    assert line["tenant"] == "acme"
    assert line["user"] == "alice"
    assert line["status"] == 200 and line["path"] == "/" and line["duration_ms"] >= 0
    assert line["level"] == "INFO" and line["logger"] == "lowcode.request"


def test_a_malformed_request_id_is_replaced(acme, acme_client):
    response = acme_client.get("/", HTTP_X_REQUEST_ID="<script>")
    assert response["X-Request-ID"] != "<script>" and len(response["X-Request-ID"]) == 32


def test_api_key_requests_log_the_key_user(acme, make_user, acme_client):
    from django_tenants.utils import tenant_context

    from lowcode.apikeys import services as apikeys

    alice = make_user(acme, "alice")
    with tenant_context(acme):
        _key, secret = apikeys.create_key(alice, name="logs", scopes=["*:read"])
    response, line = _logged_line(acme_client, "/api/v1/me/", HTTP_AUTHORIZATION=f"Api-Key {secret}")
    assert response.status_code == 200
    assert line["user"] == "alice"
