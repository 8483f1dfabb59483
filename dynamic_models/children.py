"""Ordered child rows edited inline in their parent (issue 17, Frappe's child tables).

An entity whose body says `"child_of": {"relation": "claim", "order_field": "position"}` is the
ordered child of the entity its many-to-one relation `claim` points at; its integer field
`position` holds the order. The parent's admin page edits the children inline and the parent's
API record holds them as a list (definitions.py validates the option). Every write goes through
records.save and records.delete as the caller: the child entity's permissions, scope and audit.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models, transaction

from dynamic_models import records
from rbac import services as rbac


@dataclass(frozen=True)
class ChildRows:
    """The children of a parent entity: their model, the relation to the parent, the order field."""

    model: type[models.Model]
    relation: str
    order_field: str

    @property
    def key(self) -> str:
        """The name of the children in the parent's API records: the child entity's key (`claim_line`)."""
        return self.model.lowcode_entity["key"]


def child_option(model: type[models.Model]) -> dict:
    """The entity's `child_of` option, or {} if it is no child entity."""
    return getattr(model, "lowcode_entity", {}).get("child_of") or {}


def child_rows_of(parent_model: type[models.Model]) -> list[ChildRows]:
    """The child entities of `parent_model`, by the relations that point at it."""
    result = []
    for related in parent_model._meta.related_objects:
        option = child_option(related.related_model)
        if related.one_to_many and option.get("relation") == related.field.name:
            result.append(ChildRows(related.related_model, option["relation"], option["order_field"]))
    return sorted(result, key=lambda rows: rows.key)


def is_child_relation(model: type[models.Model], field_name: str) -> bool:
    return child_option(model).get("relation") == field_name


def rows(parent: models.Model, children: ChildRows, *, user, request=None) -> models.QuerySet:
    """The children of `parent` that `user` may see, in order."""
    queryset = children.model.objects.filter(**{children.relation: parent})
    return rbac.scope_queryset(user, queryset, request=request).order_by(children.order_field, "pk")


def replace(parent: models.Model, children: ChildRows, new_rows: list[tuple[models.Model, dict, dict]], *,
            user, request=None) -> None:
    """Make `new_rows` the children of `parent`, in their order: each saved as `user` (its position in
    the list is its order), those of the parent's children that are not among them deleted.

    :param new_rows: (record, files, many-to-many values) per child, validated; a record that is
        not new must be a child of `parent` (the API looks them up among them).
    :raises PermissionDenied, ValidationError: from records.save and records.delete; nothing is kept.
    """
    with transaction.atomic():
        kept = {record.pk for record, _files, _many in new_rows if record.pk is not None}
        for record in rows(parent, children, user=user, request=request).exclude(pk__in=kept):
            records.delete(record, user=user, request=request)
        for position, (record, files, many) in enumerate(new_rows, start=1):
            setattr(record, children.relation, parent)
            setattr(record, children.order_field, position)
            records.save(record, user=user, request=request, files=files)
            for name, values in many.items():
                getattr(record, name).set(values)
