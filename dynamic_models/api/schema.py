"""How the generated record resources appear in the OpenAPI schema (drf-spectacular)."""

from __future__ import annotations

import copy
import datetime

from drf_spectacular.extensions import OpenApiSerializerExtension, OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import build_basic_type
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample


class ExpandableRelatedFieldExtension(OpenApiSerializerFieldExtension):
    """A relation is an id, or with `expand=` the related record: the schema says both."""

    target_class = "dynamic_models.api.serializers.ExpandableRelatedField"

    def map_serializer_field(self, auto_schema, direction):
        id_schema = build_basic_type(OpenApiTypes.INT)
        if direction == "request":
            return id_schema
        component = auto_schema.resolve_serializer(self.target.target_serializer, direction)
        return {"oneOf": [id_schema, component.ref]}


_EXAMPLES = {
    "text": "Taxi to the airport", "long_text": "Notes", "rich_text": "<p>Notes</p>", "integer": 3,
    "decimal": "120.50", "boolean": True, "date": datetime.date(2026, 3, 1).isoformat(),
    "datetime": "2026-03-01T09:30:00Z", "time": "09:30:00", "email": "alice@example.com",
    "url": "https://example.com/", "phone": "+86 10 1234 5678", "json": {"any": "value"},
    "uuid": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "user": 1, "relation": 1,
}


def example_record(body: dict) -> dict:
    """A plausible record of the entity for the schema's examples (writable fields only)."""
    example = {}
    for spec in body["fields"]:
        kind, options = spec["type"], spec.get("options", {})
        if kind in ("auto_number", "formula") or spec.get("read_only"):
            continue
        if kind == "choice":
            value = spec.get("default") or options["choices"][0]["value"]
        elif kind == "multiple_choice":
            value = [options["choices"][0]["value"]]
        elif kind == "relation" and options.get("cardinality") == "many_to_many":
            value = [1]
        elif kind == "text" and options.get("regex"):
            continue  # No honest example for an arbitrary pattern.
        else:
            value = _EXAMPLES.get(kind)
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
        return schema


class DecimalFieldExtension(OpenApiSerializerFieldExtension):
    """Decimals come back as exact text ("12.50"); requests may also send a JSON number."""

    target_class = "rest_framework.fields.DecimalField"

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if direction == "request":
            return {"oneOf": [schema, {"type": "number"}]}
        return schema
