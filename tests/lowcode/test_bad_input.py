"""Bad input is a 4xx that names the field and rule, in the documented format, never a 500 (issue 9).

Bodies nested too deep, filter values and cursors PostgreSQL would refuse, error bodies against
the operation's documented schema, bulk bodies as lists, and the security headers of answers
that middleware give before any view (health checks, unknown hosts, static files).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from jsonschema import Draft202012Validator

from dynamic_models import runtime, services
from lowcode.api.parsers import MAX_JSON_DEPTH
from tests.dynamic_models.conftest import design

THING_FIELDS = [
    {"key": "title", "type": "text", "searchable": True, "options": {"max_length": 100}},
    {"key": "count", "type": "integer"},
    {"key": "amount", "type": "decimal", "options": {"max_digits": 12, "decimal_places": 2}},
    {"key": "data", "type": "json"},
    {"key": "parent", "type": "relation", "options": {"target": "thing", "on_delete": "set_null"}},
    {"key": "tags", "type": "multiple_choice", "options": {"choices": [{"value": "red"}, {"value": "blue"}]}},
]


@pytest.fixture
def client(tenant, make_user, acme_client):
    """A superuser's session in acme, which has a published entity `thing`."""
    services.publish(design("thing", THING_FIELDS, label="Thing", label_plural="Things", display_field="title"))
    user = make_user(tenant, "root", is_superuser=True, is_staff=True)
    connection.set_tenant(tenant)
    acme_client.force_login(user)
    return acme_client


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def post_json(client, url: str, body: str):
    return client.post(url, body, content_type="application/json")


def documented_400(client, path: str, method: str) -> Draft202012Validator:
    """A validator of the operation's documented 400 body (refs resolve in the whole document)."""
    document = client.get("/api/schema/?format=json").json()
    schema = document["paths"][path][method]["responses"]["400"]["content"]["application/json"]["schema"]
    return Draft202012Validator({**document, **schema})


# --- JSON nesting ------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["/api/v1/data/thing/", "/api/v1/data/thing/bulk/", "/api/v1/data/thing/import/",
                                 "/api/v1/data/thing/bulk-delete/", "/api/v1/meta/entities/",
                                 "/api/v1/meta/bundles/import/"])
def test_json_nested_1000_levels_is_a_400_naming_the_limit(client, url):
    response = post_json(client, url, nested(1000))
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": [
        {"code": "parse_error", "message": f"JSON parse error - JSON nested deeper than {MAX_JSON_DEPTH} levels."}]}


def test_json_depth_limit_is_exact(client):
    # The body is one level, its `data` the rest.
    fits = json.dumps({"title": "fits", "data": json.loads(nested(MAX_JSON_DEPTH - 1))})
    assert post_json(client, "/api/v1/data/thing/", fits).status_code == 201
    too_deep = json.dumps({"title": "too deep", "data": json.loads(nested(MAX_JSON_DEPTH))})
    assert post_json(client, "/api/v1/data/thing/", too_deep).json()["non_field_errors"][0]["code"] == "parse_error"
    assert list(runtime.get_model("thing").objects.values_list("title", flat=True)) == ["fits"]


def test_imported_json_files_keep_the_depth_limit(client):
    bundle = SimpleUploadedFile("bundle.json", nested(1000).encode(), content_type="application/json")
    response = client.post("/api/v1/meta/bundles/import/", {"file": bundle})
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": [{
        "code": "invalid_bundle", "message": f"Not valid JSON: JSON nested deeper than {MAX_JSON_DEPTH} levels."}]}
    rows = SimpleUploadedFile("rows.csv", f'title,data\nDeep,"{nested(1000)}"\n'.encode(), content_type="text/csv")
    response = client.post("/api/v1/data/thing/import/", {"file": rows})
    assert response.status_code == 400
    assert response.json() == {"file": [{"code": "too_deep", "message": (
        f"Row 1, column data: JSON nested deeper than {MAX_JSON_DEPTH} levels.")}]}


def test_admin_json_boxes_keep_the_depth_limit(client):
    response = client.post("/admin/data/thing/add/", {"title": "deep", "data": nested(1000)})
    assert response.status_code == 200  # The form again, with the error under the field.
    assert f"JSON nested deeper than {MAX_JSON_DEPTH} levels." in response.content.decode()
    assert client.post("/admin/data/thing/add/", {"title": "flat", "data": "[[1]]"}).status_code == 302
    assert list(runtime.get_model("thing").objects.values_list("title", "data")) == [("flat", [[1]])]


# --- filter values and cursors --------------------------------------------------------------

@pytest.mark.parametrize(("query", "code"), [
    ("updated_at__gte=2020-01-01T00:00:00-18:42", "utc_offset"),
    ("created_at__range=2020-01-01T00:00:00%2B16:00,2020-01-02T00:00:00Z", "utc_offset"),
    ("id=99999999999999999999", "max_value"),
    ("id__in=1,-99999999999999999999", "min_value"),
    ("count__gte=9223372036854775808", "max_value"),
    ("amount=1e-1000000", "max_digits"),
    ("amount__lt=12345678901.5", "max_whole_digits"),
    ("amount__gt=0.001", "max_decimal_places"),
])
def test_filter_values_postgresql_refuses_are_400_naming_the_parameter(client, query, code):
    runtime.get_model("thing").objects.create(title="one")
    response = client.get(f"/api/v1/data/thing/?{query}")
    assert response.status_code == 400
    name = query.split("=", 1)[0]
    assert list(response.json()) == [name] and response.json()[name][0]["code"] == code


def test_filter_values_within_postgresql_limits_still_filter(client):
    runtime.get_model("thing").objects.create(title="one", count=9223372036854775807, amount="9999999999.99")
    for query in ("updated_at__gte=2020-01-01T00:00:00%2B15:59", "count=9223372036854775807",
                  "amount=9999999999.99", "id__gt=-9223372036854775808"):
        response = client.get(f"/api/v1/data/thing/?{query}")
        assert response.status_code == 200 and response.json()["count"] == 1, query


def cursor(position: str) -> str:
    return base64.b64encode(f"p={position}".encode()).decode()


@pytest.mark.parametrize(("ordering", "position"), [
    ("-id", "abc"), ("created_at", "2020-01-01T00:00:00-18:42"), ("count", "99999999999999999999"),
    ("title", "a\x00b"), ("parent", "Apollo"),
])
def test_forged_cursor_positions_are_404(client, ordering, position):
    response = client.get(f"/api/v1/data/thing/?ordering={ordering}&cursor={cursor(position)}")
    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid cursor", "code": "not_found"}


def test_cursors_page_through_a_relation_ordering(client):
    model = runtime.get_model("thing")
    first = model.objects.create(title="first")
    second = model.objects.create(title="second", parent=first)
    model.objects.create(title="third", parent=second)
    url, titles = "/api/v1/data/thing/?pagination=cursor&ordering=-parent&parent__isnull=false&page_size=1", []
    while url:
        page = client.get(url)
        assert page.status_code == 200, page.json()
        titles += [row["title"] for row in page.json()["results"]]
        url = page.json()["next"]
    assert titles == ["third", "second"]  # By the parent's id: the position a cursor holds.


# --- error bodies as documented -------------------------------------------------------------

def test_parse_errors_match_the_documented_400(client):
    for path in ("/api/v1/meta/entities/", "/api/v1/data/thing/", "/api/v1/data/thing/import/"):
        response = post_json(client, path, "{not json")
        assert response.status_code == 400
        body = response.json()
        assert body["non_field_errors"][0]["code"] == "parse_error"
        assert not list(documented_400(client, path, "post").iter_errors(body)), (path, body)


def test_bundle_export_errors_match_the_documented_400(client):
    response = client.get("/api/v1/meta/bundles/export/?entity=thing&entity=")
    assert response.status_code == 400
    assert response.json() == {"entity": [{"code": "blank", "message": "Item 2: This field may not be blank."}]}
    validator = documented_400(client, "/api/v1/meta/bundles/export/", "get")
    assert not list(validator.iter_errors(response.json()))


def test_list_item_errors_match_the_documented_400(client):
    """A multiple choice's bad items are listed under the field, not nested by index (schemathesis)."""
    response = post_json(client, "/api/v1/data/thing/", json.dumps({"title": "a", "tags": ["red", None, "pink"]}))
    assert response.status_code == 400
    assert [error["message"] for error in response.json()["tags"]] == [
        "Item 2: This field may not be null.", 'Item 3: "pink" is not a valid choice.']
    assert not list(documented_400(client, "/api/v1/data/thing/", "post").iter_errors(response.json()))
    response = post_json(client, "/api/v1/data/thing/bulk/", json.dumps([{"title": "a", "tags": [None]}]))
    assert response.status_code == 400 and response.json()["0"]["tags"][0]["code"] == "null"
    assert not list(documented_400(client, "/api/v1/data/thing/bulk/", "post").iter_errors(response.json()))


@pytest.mark.parametrize("url", ["/api/v1/data/thing/1%0A/", "/api/v1/data/thing/export.csv%0A/",
                                 "/api/v1/data/%0A/", "/api/v1/%0A"])
def test_api_urls_with_a_newline_are_404_in_json(client, url):
    """Django's `.` stops at a newline, so such paths missed the API's catch-all and got HTML (schemathesis)."""
    response = client.delete(url)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_page_sizes_that_are_no_ascii_number_are_400(client):
    """"²" is a digit to Python's isdigit() but no number to int(): it was a 500 (schemathesis)."""
    for query in ("page_size=%C2%B2", "page_size=%C2%B2&pagination=cursor", "page_size=0"):
        response = client.get(f"/api/v1/data/thing/?{query}")
        assert response.status_code == 400 and list(response.json()) == ["page_size"], query


def test_search_errors_name_the_search_parameter(client):
    response = client.get("/api/v1/data/thing/?search=a%00b")
    assert response.status_code == 400
    assert response.json()["search"][0]["code"] == "null_characters_not_allowed"


def test_a_bundle_import_checks_its_body_dry_run_flag_even_when_the_query_sets_one(client):
    response = post_json(client, "/api/v1/meta/bundles/import/?dry_run=true", json.dumps({"dry_run": {}}))
    assert response.status_code == 400 and response.json()["dry_run"][0]["code"] == "invalid"


def test_admin_publish_with_a_bad_expected_version_is_a_400(client):
    from dynamic_models.models import Entity

    entity = Entity.objects.get(key="thing")
    response = client.post(f"/admin/dynamic_models/entity/{entity.pk}/preview/", {"expected_version": "x"})
    assert response.status_code == 400


def test_bulk_endpoints_are_documented_as_lists(client):
    operations = client.get("/api/schema/?format=json").json()["paths"]["/api/v1/data/thing/bulk/"]
    create, update = operations["post"], operations["patch"]
    rows = create["requestBody"]["content"]["application/json"]["schema"]
    assert (rows["type"], rows["items"], rows["minItems"], rows["maxItems"]) == (
        "array", {"$ref": "#/components/schemas/ThingRequest"}, 1, 1000)
    rows = update["requestBody"]["content"]["application/json"]["schema"]
    assert rows["type"] == "array" and rows["items"]["allOf"][0] == {"$ref": "#/components/schemas/PatchedThingRequest"}
    assert rows["items"]["allOf"][1]["required"] == ["id"]
    records = {"type": "array", "items": {"$ref": "#/components/schemas/Thing"}}
    assert create["responses"]["201"]["content"]["application/json"]["schema"] == records
    assert update["responses"]["200"]["content"]["application/json"]["schema"] == records
    created = post_json(client, "/api/v1/data/thing/bulk/", json.dumps([{"title": "a"}, {"title": "b"}]))
    assert created.status_code == 201 and [row["title"] for row in created.json()] == ["a", "b"]


def test_form_bodies_keep_drfs_conversions_and_json_bodies_their_types(client):
    form = client.post("/api/v1/data/thing/", {"title": "by form", "count": "3", "amount": "1.50"})
    assert form.status_code == 201, form.json()
    assert (form.json()["count"], form.json()["amount"]) == (3, "1.50")
    refused = post_json(client, "/api/v1/data/thing/", json.dumps({"title": "x", "count": "3"}))
    assert refused.status_code == 400 and refused.json()["count"][0]["code"] == "incorrect_type"


def test_bulk_ids_must_be_whole_numbers(client):
    runtime.get_model("thing").objects.create(title="one")  # Record 1: JSON true is not its id.
    response = client.patch("/api/v1/data/thing/bulk/", json.dumps([{"id": {}}, {"id": True, "title": "x"}]),
                            content_type="application/json")
    assert response.status_code == 400
    assert {row: errors["id"][0]["code"] for row, errors in response.json().items()} == {
        "0": "not_found", "1": "not_found"}
    response = post_json(client, "/api/v1/data/thing/bulk-delete/", json.dumps({"ids": [True]}))
    assert response.status_code == 400
    assert runtime.get_model("thing").objects.filter(title="one").exists()


# --- security headers -----------------------------------------------------------------------

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def assert_security_headers(headers) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, (name, dict(headers))
    assert "default-src 'self'" in headers.get("Content-Security-Policy", ""), dict(headers)


@pytest.mark.parametrize(("host", "path", "status"), [
    ("acme.localhost", "/static/lowcode/favicon.svg", 200),
    ("acme.localhost", "/readyz", 200),
    ("10.0.0.7", "/healthz", 200),
    ("nobody.localhost", "/", 404),
    ("nobody.localhost", "/static/lowcode/favicon.svg", 404),
    ("acme.localhost", "/api/v1/nothing/", 404),
])
def test_every_answer_carries_the_security_headers(db, host, path, status):
    response = Client(HTTP_HOST=host).get(path)
    assert response.status_code == status
    assert_security_headers(response.headers)


def test_suspended_tenants_answer_carries_the_security_headers(acme):
    acme.status = acme.Status.SUSPENDED
    acme.save(update_fields=["status"])
    response = Client(HTTP_HOST="acme.localhost").get("/")
    assert response.status_code == 403
    assert_security_headers(response.headers)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_security_headers_live_from_gunicorn(committed_acme, test_database_url):
    """The production server (gunicorn and WhiteNoise, not the test client) sends them too."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "lowcode.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        env={**os.environ, "DATABASE_URL": test_database_url, "LOG_LEVEL": "WARNING"}, cwd=settings.BASE_DIR,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def fetch(path: str, host: str):
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (a local URL)
                return response.status, response.headers
        except urllib.error.HTTPError as error:
            return error.code, error.headers

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                fetch("/healthz", "localhost")
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        for host, path, status in [("acme.localhost", "/static/lowcode/favicon.svg", 200),
                                   ("acme.localhost", "/readyz", 200), ("nobody.localhost", "/", 404)]:
            answer_status, headers = fetch(path, host)
            assert answer_status == status, (path, host)
            assert_security_headers(headers)
    finally:
        process.terminate()
        process.wait(timeout=30)

