"""Validation of roles, departments, data scopes and column rules (the models' `clean()` and the services).

Models import this module, so it imports none of them: it reads rows through the class of the
instance it checks.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import FieldError, ValidationError
from django.utils.translation import gettext as _

from lowcode.expressions import ExpressionError, compile_expression
from rbac.registries import entity_records, operation_type_registry
from rbac.scopes import USER_ATTRIBUTE_TYPES, sample_context, scope_kind_registry


def validate_operations(operations) -> list[str]:
    """Return the operation codes if every one is registered; else raise ValidationError."""
    if not isinstance(operations, list | tuple) or not all(isinstance(o, str) for o in operations):
        raise ValidationError({"operations": _("Operations must be a list of operation codes.")})
    unknown = [o for o in operations if not operation_type_registry.is_registered(o)]
    if unknown:
        raise ValidationError({"operations": _("Unknown operations: %(codes)s.") % {"codes": ", ".join(unknown)}})
    return list(dict.fromkeys(operations))


def validate_parents(role, parents: Iterable) -> None:
    """Raise ValidationError naming the cycle if `role` would inherit from itself."""
    parents = list(parents)
    keys, edges = type(role).graph()
    if role.pk is not None:
        keys[role.pk] = role.key
        edges[role.pk] = [p.pk for p in parents]
    for parent in parents:
        keys.setdefault(parent.pk, parent.key)
        path = _path_to(parent.pk, role.pk, edges) if role.pk is not None else None
        if parent.pk == role.pk or path:
            cycle = [role.key] + [keys[r] for r in (path or [parent.pk])]
            if cycle[-1] != role.key:
                cycle.append(role.key)
            raise ValidationError({"parents": _("Role inheritance cannot form a cycle: %(cycle)s.")
                                   % {"cycle": " → ".join(cycle)}}, code="cycle")


def _path_to(start: int, target: int, edges: dict[int, list[int]]) -> list[int] | None:
    """The ancestor path from `start` to `target` (both included), if any."""
    queue, came_from = [start], {start: None}
    while queue:
        node = queue.pop(0)
        if node == target:
            path = []
            while node is not None:
                path.append(node)
                node = came_from[node]
            return path[::-1]
        for parent in edges.get(node, ()):
            if parent not in came_from:
                came_from[parent] = node
                queue.append(parent)
    return None


def validate_department_parent(department, parent) -> None:
    """Raise ValidationError naming the cycle if `parent` is the department or below it."""
    if parent is None or department.pk is None:
        return
    if parent.pk == department.pk:
        raise ValidationError({"parent": _("A department cannot be its own parent: %(cycle)s.")
                               % {"cycle": f"{department.name} → {department.name}"}}, code="cycle")
    chain, current, names = [], parent.pk, {}
    rows = {row[0]: row[1:] for row in type(department).objects.values_list("id", "parent_id", "name")}
    while current is not None and current not in chain:
        chain.append(current)
        if current == department.pk:
            names = {pk: values[1] for pk, values in rows.items()}
            names[department.pk] = department.name
            cycle = [department.name] + [names.get(pk, str(pk)) for pk in chain]
            raise ValidationError({"parent": _("The department tree cannot form a cycle: %(cycle)s.")
                                   % {"cycle": " → ".join(cycle)}}, code="cycle")
        current = rows.get(current, (None,))[0]


def validate_scope(scope) -> None:
    """Raise ValidationError unless the `DataScope` can run on its entity."""
    errors = {}
    if scope.action not in type(scope).Action.values:
        errors["action"] = _("Unknown action %(action)s.") % {"action": scope.action}
    resources = entity_records()
    resource = resources.published().get(scope.entity_key)
    if scope_kind_registry.is_registered(scope.kind):
        # The fields that can own a record: the system owner columns and the entity's user fields.
        owner_fields = [*resources.system_owner_fields, *(resource.owner_field_keys() if resource else ())]
        errors.update(scope_kind_registry.get(scope.kind).validate(scope, resource, owner_fields))
    else:
        errors["kind"] = _("Unknown scope %(kind)s.") % {"kind": scope.kind}
    if (scope.expression or "").strip() and "expression" not in errors:
        try:
            expression = compile_expression(scope.expression)
            if resource is not None:
                # Fields by type, formulas too; the user's attributes that scopes.user_context() gives.
                expression.check(resources.expression_fields(scope.entity_key), user=USER_ATTRIBUTE_TYPES,
                                 condition=True)
            condition = expression.to_q(sample_context())
            if resource is not None:
                str(resources.get_model(scope.entity_key).objects.filter(condition).query)  # Compiles, runs nothing.
        except (ExpressionError, FieldError, LookupError, TypeError, ValueError) as error:
            errors["expression"] = _("The expression cannot run: %(error)s") % {"error": error}
    if errors:
        raise ValidationError(errors)


def validate_column_rule(rule) -> None:
    """Raise ValidationError unless the `ColumnRule`'s rule is known and its entity (if published) has the field."""
    resource = entity_records().published().get(rule.entity_key)
    if rule.rule not in type(rule).Rule.values:
        raise ValidationError({"rule": _("Unknown rule %(rule)s.") % {"rule": rule.rule}})
    if resource is not None and rule.field_key not in resource.field_keys():
        raise ValidationError({"field_key": _("%(entity)s has no field %(field)s.")
                               % {"entity": rule.entity_key, "field": rule.field_key}})
