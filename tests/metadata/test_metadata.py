"""The metadata engine on its own: lifecycle, schema validation, diffs, change events (MD-1..MD-3)."""

import pytest
from django.db import IntegrityError, transaction

from metadata import bundles, services
from metadata.exceptions import DefinitionNotFound, DefinitionValidationError
from metadata.models import Definition
from metadata.registries import DefinitionKind, definition_kind_registry
from metadata.signals import definition_published


class NoteKind(DefinitionKind):
    type = "note"
    schema = {"type": "object", "required": ["title"], "additionalProperties": False,
              "properties": {"title": {"type": "string", "maxLength": 20}, "tags": {"type": "array"}}}

    def validate(self, body):
        return [{"path": "title", "code": "shout", "message": "No shouting."}] if body["title"].isupper() else []


@pytest.fixture
def note_kind():
    kind = definition_kind_registry.register(NoteKind())
    yield kind
    definition_kind_registry.unregister(kind.type)


def test_lifecycle_draft_publish_archive_rollback(tenant, note_kind, django_capture_on_commit_callbacks):
    events = []
    definition_published.connect(lambda **kw: events.append((kw["key"], kw["version"])), weak=False,
                                 dispatch_uid="test-events")
    try:
        services.save_draft("note", "hello", {"title": "Hello"})
        services.save_draft("note", "hello", {"title": "Hello world"})  # Replaces the one draft.
        assert Definition.objects.filter(kind="note", key="hello").count() == 1
        with django_capture_on_commit_callbacks(execute=True):
            first = services.publish("note", "hello", note="first")
        services.save_draft("note", "hello", {"title": "Hello again", "tags": ["x"]})
        with django_capture_on_commit_callbacks(execute=True):
            second = services.publish("note", "hello")
    finally:
        definition_published.disconnect(dispatch_uid="test-events")
    first.refresh_from_db()
    assert (first.version, first.status, second.version, second.status) == (1, "archived", 2, "published")
    assert events == [("hello", 1), ("hello", 2)]

    diff = services.compare("note", "hello", 1, 2)
    assert {(c["op"], c["path"]) for c in diff["changes"]} == {("changed", "title"), ("added", "tags")}

    third = services.rollback("note", "hello")
    assert (third.version, third.body) == (3, {"title": "Hello world"})
    assert "Roll back to version 1" in third.change_note
    assert services.get_published("note", "hello").version == 3

    services.archive("note", "hello")
    assert services.get_published("note", "hello") is None


def test_schema_and_rules_refuse_bad_bodies(tenant, note_kind):
    with pytest.raises(DefinitionValidationError) as error:
        services.save_draft("note", "bad", {"title": "x" * 30, "extra": 1})
    assert {e["path"] for e in error.value.errors} == {"", "title"}
    with pytest.raises(DefinitionValidationError, match="No shouting"):
        services.save_draft("note", "bad", {"title": "HELLO"})
    assert not Definition.objects.exists()


def test_at_most_one_published_version_per_key(tenant, note_kind):
    services.save_draft("note", "hello", {"title": "Hello"})
    services.publish("note", "hello")
    with pytest.raises(IntegrityError), transaction.atomic():
        Definition.objects.create(kind="note", key="hello", version=9, status="published", body={}, checksum="")


def test_publishing_without_a_draft_or_rolling_back_without_history(tenant, note_kind):
    with pytest.raises(DefinitionNotFound, match="no draft"):
        services.publish("note", "ghost")
    services.save_draft("note", "solo", {"title": "Solo"})
    services.publish("note", "solo")
    with pytest.raises(DefinitionNotFound, match="no earlier version"):
        services.rollback("note", "solo")


def test_a_new_field_type_is_one_small_class(tenant):
    from django.core import validators
    from django.db import models

    from dynamic_models import runtime
    from dynamic_models import services as entities
    from dynamic_models.registries import FieldType, field_type_registry

    class ColorType(FieldType):
        type = "color"
        verbose_name = "Color"

        def model_field_class(self, spec):
            return models.CharField

        def model_field_kwargs(self, spec):
            return {"max_length": 7, "validators": [validators.RegexValidator(r"^#[0-9a-f]{6}$")]}

    field_type_registry.register(ColorType())
    try:
        entities.publish_body({"key": "label", "fields": [{"id": "color0001", "key": "color", "type": "color"}]})
        Label = runtime.get_model("label")
        Label.objects.create(color="#ff0000")
        assert Label.objects.get().color == "#ff0000"
    finally:
        field_type_registry.unregister("color")


class TaggedNoteKind(NoteKind):
    """A kind contributing its hooks once: preview, normalize, and its bundle parameter."""

    type = "tagged_note"
    bundle_parameter = "tagged_note"
    previews: list = []

    def preview(self, body, *, key, published):
        self.previews.append((key, published.version if published else None))
        conflicts = ["Frozen."] if published is not None and published.body["title"] == "Frozen" else []
        return {**super().preview(body, key=key, published=published), "conflicts": conflicts}

    def normalize(self, body):
        return {"tags": [], **body} if isinstance(body, dict) else body


@pytest.fixture
def tagged_note_kind():
    kind = definition_kind_registry.register(TaggedNoteKind())
    kind.previews.clear()
    yield kind
    definition_kind_registry.unregister(kind.type)


def _bundle(*bodies):
    return {"format": bundles.FORMAT, "format_version": bundles.FORMAT_VERSION,
            "definitions": [{"kind": "tagged_note", "key": key, "body": body} for key, body in bodies]}


def test_a_bundle_import_runs_the_kinds_preview_and_publishes_its_normalized_body(tenant, tagged_note_kind):
    report = bundles.import_bundle(_bundle(("hello", {"title": "Hello"})), dry_run=False)
    assert [row["action"] for row in report] == ["create"]
    assert services.get_published("tagged_note", "hello").body == {"title": "Hello", "tags": []}

    report = bundles.import_bundle(_bundle(("hello", {"title": "Frozen"})), dry_run=False)
    assert [row["action"] for row in report] == ["update"]
    report = bundles.import_bundle(_bundle(("hello", {"title": "Thawed"})), dry_run=True)
    assert [(row["action"], row["message"]) for row in report] == [("conflict", "Frozen.")]
    assert tagged_note_kind.previews == [("hello", None), ("hello", 1), ("hello", 2)]  # The published version, passed in.


def test_a_kinds_bundle_parameter_selects_its_definitions_in_an_export(tenant, tagged_note_kind, acme_client,
                                                                       make_user):
    from rbac import services as rbac

    for key in ("one", "two"):
        services.save_and_publish("tagged_note", key, {"title": key.title()})
    user = make_user(tenant, "dana", is_staff=True, is_superuser=True)
    assert rbac.check(user, "designer.access")
    acme_client.force_login(user)
    exported = acme_client.get("/api/v1/meta/bundles/export/?tagged_note=two")
    assert exported.status_code == 200, exported.json()
    assert [(d["kind"], d["key"]) for d in exported.json()["definitions"]] == [("tagged_note", "two")]
    schema = acme_client.get("/api/schema/").content.decode()
    assert "tagged_note" in schema  # Documented as a parameter of the export.
