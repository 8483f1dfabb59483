"""The records API's read path from rows (issue 16): the same output as the record serializer for
every field type, column rule and expansion; counts that stop at a limit; cursors for big tables."""

from __future__ import annotations

import datetime
import decimal
import json
import re
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from rest_framework.renderers import JSONRenderer

from dynamic_models import runtime, services
from files import services as files
from lowcode.api import pagination
from rbac import services as rbac
from rbac.models import Role
from tests.scenario import client_for

from .conftest import design
from .test_file_fields import jpeg

EVERY_FIELD = [
    {"key": "number", "type": "auto_number", "options": {"prefix": "E-"}},
    {"key": "name", "type": "text", "searchable": True},
    {"key": "secret", "type": "text", "encrypted": True},
    {"key": "notes", "type": "long_text"},
    {"key": "body", "type": "rich_text"},
    {"key": "qty", "type": "integer"},
    {"key": "price", "type": "decimal", "options": {"max_digits": 10, "decimal_places": 2}},
    {"key": "twice", "type": "formula", "options": {"expression": "qty * 2"}},
    {"key": "gross", "type": "formula", "options": {"expression": "price * 2"}},
    {"key": "done", "type": "boolean"},
    {"key": "due", "type": "date"},
    {"key": "seen_at", "type": "datetime"},
    {"key": "at", "type": "time"},
    {"key": "contact", "type": "email"},
    {"key": "site", "type": "url"},
    {"key": "phone", "type": "phone"},
    {"key": "size", "type": "choice", "options": {"choices": [{"value": "s"}, {"value": "l"}]}},
    {"key": "colours", "type": "multiple_choice", "options": {"choices": [{"value": "red"}, {"value": "blue"}]}},
    {"key": "data", "type": "json"},
    {"key": "ref", "type": "uuid"},
    {"key": "owner", "type": "user"},
    {"key": "tag", "type": "relation", "options": {"target": "tag"}},
    {"key": "main_tag", "type": "relation", "options": {"target": "tag", "cardinality": "one_to_one"}},
    {"key": "tags", "type": "relation", "options": {"target": "tag", "cardinality": "many_to_many"}},
    {"key": "receipt", "type": "file"},
    {"key": "photos", "type": "image", "options": {"multiple": True}},
]
_TOKEN = re.compile(r"/files/[a-z/-]*?/([^/?]+)/")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def every(tenant, acme, make_user):
    services.publish(design("tag", [{"key": "label", "type": "text"},
                                    {"key": "parent", "type": "relation", "options": {"target": "tag"}}],
                            label="Tag", display_field="label"))
    services.publish(design("every", EVERY_FIELD, label="Every", label_plural="Everything", display_field="name"))
    frank = make_user(acme, "frank", is_superuser=True, is_staff=True)
    bob = make_user(acme, "bob", is_staff=True)
    connection.set_tenant(acme)
    member = Role.objects.get(key=Role.MEMBER)
    rbac.grant(member, "data.view_every", "data.view_tag")
    rbac.add_scope(member, "every", "all")
    rbac.add_scope(member, "tag", "all")
    tag_model, every_model = runtime.get_model("tag"), runtime.get_model("every")
    tags = [tag_model.objects.create(label=f"Tag {index}") for index in range(3)]
    frank_client = client_for(frank)
    upload = frank_client.post("/api/v1/files/", {"file": SimpleUploadedFile("hotel-invoice.jpg", jpeg())})
    photo = frank_client.post("/api/v1/files/", {"file": SimpleUploadedFile("photo.jpg", jpeg("blue"))})
    for index in range(4):
        record = every_model.objects.create(
            name=f"Thing {index} ☃", secret="DE89370400440532013000", notes="line\nbreak" if index else "",
            body="<p>Hi</p>", qty=index or None, price=decimal.Decimal("12.50") * index, done=bool(index % 2),
            due=datetime.date(2026, 1, index + 1), at=datetime.time(9, 30, index),
            seen_at=datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC) if index else None,
            contact="a@example.com", site="https://example.com/x", phone="+8613800138000", size="s",
            colours=["red", "blue"][:index], data={"n": index, "list": [1.5, None, "\u2028"]}, ref=uuid.uuid4(),
            owner=bob if index % 2 else None, tag=tags[index % 3] if index < 3 else None,
            main_tag=tags[index] if index < 3 else None)
        record.tags.set(tags[:index])
    first = every_model.objects.order_by("id").first()
    payload = {"receipt": upload.json()["id"], "photos": [photo.json()["id"]]}
    assert frank_client.patch(f"/api/v1/data/every/{first.pk}/", json.dumps(payload),
                              content_type="application/json").status_code == 200
    tags[1].parent = tags[0]
    tags[1].save()
    return {"frank": frank_client, "bob": client_for(bob), "member": member, "first": first}


def _stable(value):
    """Signed download URLs carry their signing time: compare what they sign instead."""
    if isinstance(value, dict):
        return {key: _stable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_stable(item) for item in value]
    if isinstance(value, str) and (match := _TOKEN.search(value)) and "/open/" not in value:
        return files.read_token(match.group(1))
    return value


def served_and_serialized(client, path: str):
    """The API's answer (from rows) and what the record serializer gives for the same records."""
    response = client.get(path)
    assert response.status_code == 200, response.content
    view = response.renderer_context["view"]
    queryset = view.filter_queryset(view.get_queryset())
    assert view.row_reader(queryset) is not None, "the row path answered"
    answer = response.json()
    if view.action == "retrieve":
        expected = view.get_serializer(queryset.get(pk=view.kwargs["pk"])).data
        return _stable(answer), _stable(json.loads(JSONRenderer().render(expected)))
    expected = view.get_serializer(list(queryset)[:len(answer["results"])], many=True).data  # One page.
    return _stable(answer["results"]), _stable(json.loads(JSONRenderer().render(expected)))


QUERIES = ["", "?expand=tag,main_tag,tags,owner", "?fields=id,name,tag,tags&expand=tag,tags",
           "?fields=price,gross,receipt", "?ordering=-due", "?search=Thing"]


@pytest.mark.parametrize("query", QUERIES)
def test_rows_show_what_the_serializer_shows_for_every_field_type(every, query):
    served, serialized = served_and_serialized(every["frank"], f"/api/v1/data/every/{query}")
    assert served == serialized
    assert len(served) == 4
    if not query:
        assert served[-1]["receipt"]["name"] == "hotel-invoice.jpg" and served[-1]["photos"][0]["name"] == "photo.jpg"
        assert served[-1]["secret"] == "DE89370400440532013000"
    one, expected = served_and_serialized(every["frank"], f"/api/v1/data/every/{every['first'].pk}/{query}")
    assert one == expected


@pytest.mark.parametrize("query", QUERIES)
def test_rows_apply_a_members_column_rules_as_the_serializer_does(every, query):
    member = every["member"]
    for field_key, rule in (("secret", "masked"), ("price", "masked"), ("notes", "hidden"), ("receipt", "masked"),
                            ("photos", "hidden"), ("qty", "read_only")):
        rbac.set_column_rule(member, "every", field_key, rule)
    rbac.set_column_rule(member, "tag", "label", "masked")
    bob = every["bob"]
    rbac.assign_role(_user("bob"), member)
    served, serialized = served_and_serialized(bob, f"/api/v1/data/every/{query}")
    assert served == serialized
    if not query:
        assert served[-1]["secret"] == "****3000" and served[-1]["gross"] == "****"
        assert served[-1]["receipt"] == {"name": "****.jpg"} and "notes" not in served[-1] and "photos" not in served[-1]
    if query.startswith("?expand="):
        assert {row["tag"]["label"] for row in served if row["tag"]} == {"****"}
    one, expected = served_and_serialized(bob, f"/api/v1/data/every/{every['first'].pk}/{query}")
    assert one == expected


def _user(username):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username=username)


def test_output_bytes_are_drf_json(every):
    response = every["frank"].get("/api/v1/data/every/?fields=data,name")
    assert b"\\u2028" in response.content and "☃".encode() in response.content
    assert json.loads(response.content) == response.json()


def test_counts_stop_at_the_limit_and_estimate_above_it(every, settings):
    settings.API_EXACT_COUNT_LIMIT = 2
    client = every["frank"]
    page = client.get("/api/v1/data/every/?page=1&page_size=3").json()
    assert page["count_is_estimate"] is True and page["count"] >= 3
    assert len(page["results"]) == 3 and "page=2" in page["next"]
    last = client.get("/api/v1/data/every/?page=2&page_size=3").json()
    assert len(last["results"]) == 1 and last["next"] is None and "page_size=3" in last["previous"]
    assert client.get("/api/v1/data/every/?page=3&page_size=3").status_code == 404
    assert client.get("/api/v1/data/every/?page=last").json()["page"][0]["code"] == "invalid"
    uncounted = client.get("/api/v1/data/every/?page=1&count=false&page_size=3").json()
    assert "count" not in uncounted and "count_is_estimate" not in uncounted and uncounted["next"]
    assert client.get("/api/v1/data/every/?count=maybe").json()["count"][0]["code"] == "invalid"
    settings.API_EXACT_COUNT_LIMIT = 10
    exact = client.get("/api/v1/data/every/").json()
    assert exact["count"] == 4 and "count_is_estimate" not in exact


def test_big_tables_list_with_cursors_unless_a_page_is_asked_for(every, settings):
    settings.API_EXACT_COUNT_LIMIT = 2
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {runtime.get_model('every')._meta.db_table}")
    pagination._table_sizes.clear()
    client = every["frank"]
    default = client.get("/api/v1/data/every/?page_size=3").json()
    assert "count" not in default and "cursor=" in default["next"]
    paged = client.get("/api/v1/data/every/?pagination=page&page_size=3").json()
    assert paged["count_is_estimate"] is True


def test_a_field_called_count_stays_a_filter(tenant, acme, make_user):
    services.publish(design("tally", [{"key": "count", "type": "integer", "filterable": True}], label="Tally"))
    runtime.get_model("tally").objects.create(count=3)
    client = client_for(make_user(acme, "frank", is_superuser=True))
    assert client.get("/api/v1/data/tally/?count=3").json()["count"] == 1
    assert client.get("/api/v1/data/tally/?count=false").status_code == 400


def test_openapi_documents_the_count(every):
    schema = every["frank"].get("/api/schema/?format=json").json()
    listing = schema["paths"]["/api/v1/data/every/"]["get"]
    assert "count" in {parameter["name"] for parameter in listing["parameters"]}
    page = next(iter(listing["responses"]["200"]["content"].values()))["schema"]
    page = schema["components"]["schemas"][page["$ref"].rsplit("/", 1)[-1]] if "$ref" in page else page
    assert page["properties"]["count_is_estimate"]["type"] == "boolean"
