"""Auto numbers with date patterns (issue 17): `HR-EXP-.YYYY.-.####`, a counter per period."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from dynamic_models import runtime, services
from dynamic_models.models import Entity

from .conftest import design


def claims():
    return runtime.get_model("claim").objects


@pytest.fixture
def claim_entity(tenant):
    entity = design("claim", [
        {"key": "number", "type": "auto_number", "options": {"pattern": "HR-EXP-.YYYY.-.####"}},
        {"key": "title", "type": "text", "required": True},
    ], label="Claim", display_field="title")
    services.publish(entity)
    return entity


def test_numbers_follow_the_pattern_and_count_per_year(claim_entity, api_client_for_claims):
    year = timezone.now().year  # The server's time zone is UTC in tests.
    first = claims().create(title="Taxi")
    second = claims().create(title="Hotel")
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.number, second.number) == (f"HR-EXP-{year}-0001", f"HR-EXP-{year}-0002")
    field_id = claim_entity.fields.get(key="number").uid
    with connection.cursor() as cursor:
        cursor.execute("SELECT series, value FROM dynamic_models_auto_number_counter ORDER BY series")
        assert cursor.fetchall() == [(f"{field_id}:{year}", 2)]
        # Another year's counter is another series: it does not move this year's numbers.
        cursor.execute("INSERT INTO dynamic_models_auto_number_counter VALUES (%s, 500)", [f"{field_id}:{year - 1}"])
        # Past its digits the number grows instead of being cut.
        cursor.execute("UPDATE dynamic_models_auto_number_counter SET value = 9999 WHERE series = %s", [f"{field_id}:{year}"])
    response = api_client_for_claims.post("/api/v1/data/claim/", {"title": "Train"}, content_type="application/json")
    assert response.status_code == 201, response.json()
    assert response.json()["number"] == f"HR-EXP-{year}-10000"
    # Read-only and filterable as the prefix kind.
    assert api_client_for_claims.get(f"/api/v1/data/claim/?number__istartswith=HR-EXP-{year}-1").json()["count"] == 1


def test_rows_present_when_the_field_is_added_get_numbers(tenant):
    entity = design("claim", [{"key": "title", "type": "text", "required": True}], label="Claim")
    services.publish(entity)
    claims().create(title="Old one")
    claims().create(title="Old two")
    entity.fields.create(key="number", type="auto_number", position=1, options={"pattern": "C.MM.-.###"})
    services.publish(entity)
    month = timezone.now().strftime("%m")
    assert sorted(claims().values_list("number", flat=True)) == [f"C{month}-001", f"C{month}-002"]


@pytest.mark.parametrize(("options", "message"), [
    ({"pattern": "HR-.YYYY."}, "The pattern needs one counter"),
    ({"pattern": "A.##.B.##"}, "The pattern needs one counter"),
    ({"pattern": "HR-.####", "prefix": "HR-"}, "A pattern replaces the prefix and digits"),
    ({"pattern": "VERY-LONG-PREFIX-OF-NUMBERS-.####"}, "too long"),
])
def test_bad_patterns_are_refused_naming_the_field(tenant, options, message):
    entity = Entity.objects.create(key="claim")
    entity.fields.create(key="number", type="auto_number", position=0, options=options)
    with pytest.raises(services.DefinitionValidationError) as refused:
        services.publish(entity)
    assert any(error["message"].startswith("Field “number”: ") and message in error["message"]
               for error in refused.value.errors), refused.value.errors


@pytest.fixture
def api_client_for_claims(claim_entity, acme, make_user, acme_client):
    from lowcode.apikeys import services as apikeys

    user = make_user(acme, "frank", is_superuser=True, is_staff=True)
    connection.set_tenant(acme)
    _key, secret = apikeys.create_key(user, name="integration", scopes=["*:write"])
    acme_client.defaults["HTTP_AUTHORIZATION"] = f"Api-Key {secret}"
    return acme_client
