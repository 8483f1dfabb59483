"""Every design error is a validation message naming the field, found before SQL runs (issue 17, finding 4)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from dynamic_models import runtime, services, validation
from metadata.exceptions import DefinitionValidationError


def fid(n: int) -> str:
    return f"field{n:04d}"


def body(key: str, *fields: dict, **entity) -> dict:
    return {"key": key, "fields": [{"id": fid(index), **spec} for index, spec in enumerate(fields)], **entity}


def refused(entity_body: dict) -> list[dict]:
    with pytest.raises(DefinitionValidationError) as raised:
        services.publish_body(entity_body)
    return raised.value.errors


def tables() -> set[str]:
    with connection.cursor() as cursor:
        return set(connection.introspection.table_names(cursor))


NAME = {"key": "name", "type": "text"}


def test_a_relation_and_a_field_named_as_its_column(tenant):
    services.publish_body(body("project", NAME))
    errors = refused(body("task", NAME, {"key": "project", "type": "relation", "options": {"target": "project"}},
                          {"key": "project_id", "type": "integer"}))
    assert [(e["path"], e["code"]) for e in errors] == [("fields/2/key", "duplicate")]
    assert "project_id" in errors[0]["message"] and "project" in errors[0]["message"]
    assert "dm_task" not in tables()


def test_a_many_to_many_table_that_is_an_entity_table(tenant):
    services.publish_body(body("tag", NAME))
    services.publish_body(body("project_tags", NAME))
    errors = refused(body("project", NAME, {"key": "tags", "type": "relation",
                                            "options": {"target": "tag", "cardinality": "many_to_many"}}))
    assert [(e["path"], e["code"]) for e in errors] == [("fields/1/key", "table_taken")]
    assert "tags" in errors[0]["message"] and "dm_project_tags" in errors[0]["message"]
    assert "dm_project" not in tables()


def test_an_entity_whose_table_is_a_many_to_many_table(tenant):
    services.publish_body(body("tag", NAME))
    services.publish_body(body("project", NAME, {"key": "tags", "type": "relation",
                                                 "options": {"target": "tag", "cardinality": "many_to_many"}}))
    errors = refused(body("project_tags", NAME))
    assert [(e["path"], e["code"]) for e in errors] == [("key", "table_taken")]


def test_two_many_to_many_tables_sharing_their_first_63_characters(tenant):
    services.publish_body(body("tag", NAME))
    long_key = "a" * 40
    first, second = "b" * 30 + "_one", "b" * 30 + "_two"
    errors = refused(body(long_key, NAME,
                          {"key": first, "type": "relation", "options": {"target": "tag", "cardinality": "many_to_many"}},
                          {"key": second, "type": "relation",
                           "options": {"target": "tag", "cardinality": "many_to_many"}}))
    assert ("fields/2/key", "too_long") in [(e["path"], e["code"]) for e in errors]
    assert f"dm_{long_key}" not in tables()


M2M = {"type": "relation", "options": {"target": "tag", "cardinality": "many_to_many"}}


@pytest.mark.parametrize("kind", [M2M, {"type": "auto_number"}], ids=["link tables", "sequences"])
def test_swapping_two_field_keys_named_in_the_database(tenant, kind):
    services.publish_body(body("tag", NAME))
    services.publish_body(body("project", {"key": "name", **kind}, {"key": "code", **kind}))
    errors = refused(body("project", {"key": "code", **kind}, {"key": "name", **kind}))
    assert [(e["path"], e["code"]) for e in errors] == [("fields/0/key", "swapped_keys"),
                                                        ("fields/1/key", "swapped_keys")]
    assert "code" in errors[0]["message"] and "name" in errors[0]["message"]


def test_swapping_two_plain_columns_is_still_a_publish(tenant):
    services.publish_body(body("project", {"key": "name", "type": "text"}, {"key": "code", "type": "text"}))
    services.publish_body(body("project", {"key": "code", "type": "text"}, {"key": "name", "type": "text"}))
    assert [f.column for f in runtime.get_model("project")._meta.concrete_fields if f.column in ("name", "code")] \
        == ["code", "name"]


def test_many_to_one_becoming_many_to_many(tenant):
    services.publish_body(body("tag", NAME))
    services.publish_body(body("project", NAME, {"key": "tag", "type": "relation", "options": {"target": "tag"}}))
    errors = refused(body("project", NAME, {"key": "tag", "type": "relation",
                                            "options": {"target": "tag", "cardinality": "many_to_many"}}))
    assert [(e["path"], e["code"]) for e in errors] == [("fields/1/options/cardinality", "cardinality")]
    assert "tag" in errors[0]["message"]


def test_required_and_read_only(tenant):
    errors = refused(body("project", {"key": "name", "type": "text", "required": True, "read_only": True}))
    assert [(e["path"], e["code"]) for e in errors] == [("fields/0/read_only", "required_read_only")]
    assert "name" in errors[0]["message"]


def test_a_not_null_violation_names_its_field(tenant):
    services.publish_body(body("project", {"key": "name", "type": "text", "required": True}))
    record = runtime.get_model("project")(name=None)
    with pytest.raises(ValidationError) as raised, transaction.atomic():
        validation.save_record(record)
    assert [(name, [e.code for e in errors]) for name, errors in raised.value.error_dict.items()] == \
        [("name", ["required"])]
    assert "()" not in str(raised.value)


def test_required_read_only_with_a_default_is_accepted(tenant):
    services.publish_body(body("project", {"key": "name", "type": "text", "required": True, "read_only": True,
                                           "default": "x"}))
    assert runtime.get_model("project")


@pytest.mark.parametrize("entity_key", ["e" * 40])
def test_names_account_for_63_byte_identifiers(tenant, entity_key):
    # dm_<entity>_<field>_seq of an auto number must fit in 63 bytes, like every name built from keys.
    errors = refused(body(entity_key, NAME, {"key": "n" * 30, "type": "auto_number"}))
    assert [(e["path"], e["code"]) for e in errors] == [("fields/1/key", "too_long")]
