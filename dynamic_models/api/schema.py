"""How the generated record resources appear in the OpenAPI schema (drf-spectacular)."""

from __future__ import annotations

import copy

from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiSerializerExtension, OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import build_basic_type, force_instance
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample
from rest_framework.exceptions import ErrorDetail, ValidationError

from dynamic_models import runtime
from dynamic_models.api.serializers import MaskedField
from dynamic_models.registries import field_type_registry


class ExpandableRelatedFieldExtension(OpenApiSerializerFieldExtension):
    """A relation is an id, or with `expand=` the related record: the schema says both."""

    target_class = "dynamic_models.api.serializers.ExpandableRelatedField"

    def map_serializer_field(self, auto_schema, direction):
        id_schema = build_basic_type(OpenApiTypes.INT)
        if direction == "request":
            return id_schema
        component = auto_schema.resolve_serializer(self.target.target_serializer, direction)
        return {"oneOf": [id_schema, component.ref]}


_FILE = {
    "type": "object", "description": "A file of the record; `download_url` and `preview_url` are short-lived signed "
                                     "URLs, `open_url` is stable and needs a signed-in user who may read the record.",
    "properties": {
        "id": {"type": "string", "format": "uuid"}, "name": {"type": "string"}, "size": {"type": "integer"},
        "content_type": {"type": "string"}, "preview_url": {"type": "string", "nullable": True},
        "download_url": {"type": "string"}, "open_url": {"type": "string"}},
    "required": ["id", "name", "size", "content_type", "preview_url", "download_url", "open_url"],
}
_FILE_ID = {"type": "string", "format": "uuid",
            "description": "The id of a file uploaded to /api/v1/files/ (or, multipart, the file itself)."}


class FilesFieldExtension(OpenApiSerializerFieldExtension):
    """A file field: ids in requests; in responses the files described (a list when `multiple`)."""

    target_class = "dynamic_models.api.serializers.FilesField"

    def map_serializer_field(self, auto_schema, direction):
        item = _FILE_ID if direction == "request" else _FILE
        if self.target.multiple:
            return {"type": "array", "items": item}
        return {**item, "nullable": True} if self.target.allow_null or direction == "response" else item


class MaskedFilesFieldExtension(OpenApiSerializerFieldExtension):
    """Masked files: their names masked, nothing else."""

    target_class = "dynamic_models.api.serializers.MaskedFilesField"

    def map_serializer_field(self, auto_schema, direction):
        item = {"type": "object", "properties": {"name": {"type": "string"}}, "readOnly": True}
        return {"type": "array", "items": item, "readOnly": True} if self.target.multiple else {**item, "nullable": True}


def example_record(body: dict) -> dict:
    """A plausible record of the entity for the schema's examples (writable fields only)."""
    example = {}
    for spec in body["fields"]:
        if spec.get("read_only"):
            continue
        value = field_type_registry.get(spec["type"]).example(spec)
        if value is not None:
            example[spec["key"]] = value
    return example


class RecordAutoSchema(AutoSchema):
    """One tag per entity, an example request built from the entity's fields, and bulk bodies as lists."""

    def get_tags(self):
        return [self.view.entity_key]

    def get_request_serializer(self):
        serializer = super().get_request_serializer()
        if self.view.action != "bulk":
            return serializer
        from dynamic_models.api.records import BULK_MAX_ROWS  # records imports this module

        if self.method == "PATCH":  # Partial rows, each naming the record it changes.
            serializer = copy.copy(serializer)
            serializer.partial = True
            row = {"allOf": [self.resolve_serializer(serializer, "request").ref, {
                "type": "object", "required": ["id"], "properties": {"id": build_basic_type(OpenApiTypes.INT)}}]}
        else:
            row = self.resolve_serializer(serializer, "request").ref
        return {"application/json": {"type": "array", "items": row, "minItems": 1, "maxItems": BULK_MAX_ROWS}}

    def get_response_serializers(self):
        serializer = super().get_response_serializers()
        if self.view.action != "bulk":
            return serializer
        records = {"type": "array", "items": self.resolve_serializer(serializer, "response").ref}
        return {201 if self.method == "POST" else 200: records}  # Not paginated.

    def _map_basic_serializer(self, serializer, direction):
        serializer = force_instance(serializer)
        shared = not serializer.context  # Given to @extend_schema (module level): drf-spectacular binds this view to it.
        try:
            return super()._map_basic_serializer(serializer, direction)
        finally:
            if shared:  # Unbound again: kept, the view would keep its tenant's replaced snapshot alive.
                serializer.context.clear()

    def get_examples(self):
        if self.method in ("POST", "PUT", "PATCH") and self.view.action in ("create", "update", "partial_update"):
            return [OpenApiExample(self.view.entity_key, value=example_record(self.view.model.lowcode_entity),
                                   request_only=True)]
        return []


class RecordSerializerExtension(OpenApiSerializerExtension):
    """Records in responses: `fields=` may leave any field out, so none is listed as required."""

    target_class = "dynamic_models.api.serializers.RecordSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_basic_serializer(self.target, direction)
        if direction == "response":
            schema.pop("required", None)
        properties = schema.get("properties", {})
        for spec in self.target.entity.get("fields", ()):
            # A masked field is text whatever its type.
            if spec["key"] in properties and not isinstance(self.target.fields.get(spec["key"]), MaskedField):
                properties[spec["key"]].update(field_type_registry.get(spec["type"]).json_schema)
        return schema


class DecimalFieldExtension(OpenApiSerializerFieldExtension):
    """Decimals come back as exact text ("12.50"); requests may also send a JSON number."""

    target_class = "rest_framework.fields.DecimalField"

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if direction == "request":
            return {"oneOf": [schema, {"type": "number"}]}
        return schema


def schema_section(request):
    """The part of /api/schema/ asked for (settings.API_SCHEMA_SECTION): `?entity=expense` the
    entity's resource, `?app=finance` its app's entities' (their `app`), else None (the whole
    schema). Returns (name, predicate on paths); an unknown entity or app answers 400."""
    entity, app = request.query_params.get("entity"), request.query_params.get("app")
    if entity is None and app is None:
        return None
    bodies = runtime.published_entity_bodies()
    if entity is not None:
        if entity not in bodies:
            raise ValidationError({"entity": [ErrorDetail(_("No published entity with this key."), code="invalid")]})
        keys = {entity}
    else:
        keys = {key for key, body in bodies.items() if body.get("app") == app}
        if not keys:
            raise ValidationError({"app": [ErrorDetail(_("No published entity belongs to this app."),
                                                       code="invalid")]})
    prefixes = tuple(f"/api/v1/data/{key}/" for key in sorted(keys))
    return f"{'entity' if entity is not None else 'app'}:{entity or app}", lambda path: path.startswith(prefixes)
