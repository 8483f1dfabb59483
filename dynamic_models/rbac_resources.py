"""Entity records as an rbac resource type: what rbac asks of the published entities.

Registered from `DynamicModelsConfig.ready()`; rbac reaches entities only through it, so it
imports nothing of this app.
"""

from __future__ import annotations

from django.db import connection
from django.utils.translation import gettext_lazy as _

from dynamic_models import formulas, runtime
from dynamic_models.field_types import ComputedType, FormulaType
from dynamic_models.registries import field_type_registry
from lowcode.expressions import ExpressionError, compile_expression
from rbac.registries import ENTITY_PREFIX, Resource, ResourceField, ResourceType


def _reads(body: dict, spec: dict) -> frozenset[str] | None:
    """The fields a formula, lookup, rollup or count reads (None if it cannot run), those of other
    entities as `entity.field`; nothing for a stored field."""
    if isinstance(field_type_registry.get(spec["type"]), ComputedType):
        found = formulas.related_path(body, spec, runtime.published_entity_bodies())
        if isinstance(found, str):
            return None
        relation = found["relation"] if found["way"] != "reverse" else f"{found['entity']}.{found['relation']}"
        target = found.get("target")
        return frozenset({relation, *([f"{found['entity']}.{target['key']}"] if target else [])})
    if spec["type"] != FormulaType.type:
        return frozenset()
    try:
        references = compile_expression(spec["options"]["expression"]).references
    except ExpressionError:
        return None
    targets = {item["key"]: (item.get("options") or {}).get("target") for item in body["fields"]}
    result = set()
    for name in references:  # `project.budget`: the relation, and the field of the entity it points to.
        relation, _dot, field = name.partition(".")
        result |= {relation, f"{targets.get(relation)}.{field}"} if field else {name}
    return frozenset(result)


def _resource(body: dict) -> Resource:
    return Resource(key=body["key"], label=body.get("label") or body["key"], fields=tuple(
        ResourceField(key=spec["key"], label=spec.get("label") or spec["key"],
                      owner=field_type_registry.get(spec["type"]).links_user, reads=_reads(body, spec))
        for spec in body.get("fields", ())))


class EntityRecords(ResourceType):
    """The records of the tenant's published entities (runtime models of the app label "data")."""

    type = ENTITY_PREFIX
    label = _("Entity records")
    design_app_labels = ("metadata", "dynamic_models")
    system_owner_fields = ("created_by", "updated_by")

    def published(self) -> dict[str, Resource]:
        try:
            bodies = runtime.published_entity_bodies()
        except Exception:  # noqa: BLE001 - no tenant snapshot (public schema, migrations): nothing published.
            return {}
        return {key: _resource(body) for key, body in bodies.items()}

    def get_model(self, key: str):
        return runtime.get_model(key)

    def models(self) -> dict:
        tenant = getattr(connection, "tenant", None)
        if tenant is None or not hasattr(tenant, "definition_versions"):
            return {}
        snapshot = runtime.current()
        return {key: snapshot.get_model(key) for key in snapshot.bodies}

    def key_of(self, model) -> str:
        return (getattr(model, "lowcode_entity", None) or {}).get("key") or model._meta.model_name

    def describe(self, model) -> Resource:
        return _resource(model.lowcode_entity)

    def records(self, model):
        manager = getattr(model, "all_objects", None) or model._base_manager
        queryset = manager.all()
        formula_fields = getattr(model, "lowcode_formulas", None) or {}
        if formula_fields:
            queryset = queryset.annotate(**{key: expression.to_orm() for key, expression in formula_fields.items()})
        return queryset

    def record_values(self, record) -> dict:
        values = {field.name: getattr(record, field.attname) for field in record._meta.concrete_fields}
        for key in getattr(record, "lowcode_formulas", None) or {}:
            values[key] = record.formula_value(key)
        return values

    def expression_fields(self, key: str) -> dict:
        body = runtime.published_entity_bodies().get(key)
        if body is None:
            raise LookupError(f"No entity {key} is published.")
        return formulas.expression_fields(body, database=True, formulas=True)
