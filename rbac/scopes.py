"""Data scope kinds (RB-4): which records of an entity a scope covers.

Each kind is one class with its SQL filter (`q`), its in-memory test of one record (`holds`,
the same rule without a query), its explanation (`describe`) and its validation (`validate`).
rbac registers the built-in kinds in `scope_kind_registry` from its `ready()`; an app may
register more. Any kind may add an expression, which must hold too ("own records while
status == 'draft'"). This module imports no model: `rbac.models` takes the kinds' choices from it.
"""

from __future__ import annotations

import logging

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from lowcode.expressions import ExpressionError, compile_expression, types
from lowcode.registry import Instance, NotRegistered, Registry
from rbac.registries import ENTITY_ACTIONS, UnknownOperation

logger = logging.getLogger(__name__)

#: A filter no record passes.
NOTHING = Q(pk__in=[])
#: The actions that have scopes of their own; the others (add, export, import) read like view.
SCOPE_ACTIONS = ("view", "change", "delete")
#: The types of what `user_context()` offers scope expressions as `user.<attribute>`.
USER_ATTRIBUTE_TYPES = {
    "id": types.BIGINT, "username": types.TEXT, "email": types.TEXT, "is_staff": types.BOOLEAN,
    "roles": types.list_of(types.TEXT), "department_ids": types.list_of(types.BIGINT),
    "department_tree_ids": types.list_of(types.BIGINT), "managed_department_ids": types.list_of(types.BIGINT),
}


def scope_action(action: str) -> str:
    """The scope an entity action is decided by: export, import and add read like view."""
    if action not in ENTITY_ACTIONS:
        raise UnknownOperation(_("Unknown entity action %(action)r; use one of %(actions)s.")
                               % {"action": action, "actions": ", ".join(ENTITY_ACTIONS)})
    return action if action in SCOPE_ACTIONS else "view"


def user_context(user, eff) -> dict:
    """`user.<attribute>` in scope expressions, from the user and its effective permissions."""
    return {
        "id": user.pk,
        "username": user.get_username(),
        "email": getattr(user, "email", "") or "",
        "is_staff": bool(getattr(user, "is_staff", False)),
        "roles": sorted(eff.roles),
        "department_ids": sorted(eff.department_ids),
        "department_tree_ids": sorted(eff.tree_department_ids),
        "managed_department_ids": sorted(eff.managed_department_ids),
    }


def sample_context() -> dict:
    """A `user_context()` of nobody: compiles an expression without a user."""
    return {"user": {"id": 0, "username": "", "email": "", "is_staff": False, "roles": [], "department_ids": [],
                     "department_tree_ids": [], "managed_department_ids": []}}


def _owner_value(record, owner_field: str):
    try:
        return getattr(record, record._meta.get_field(owner_field).attname)
    except FieldDoesNotExist:
        return None


class ScopeKind(Instance):
    """One kind of data scope; `spec` arguments are `ScopeSpec`s, `eff` the user's `Effective`."""

    label = ""
    owner_based = False
    """The kind decides by the record's owner field (a user field)."""
    unconditional = False
    """Without an expression, the kind covers every record (no filter at all)."""
    expression_required = False

    def condition(self, spec, user, eff) -> Q | None:
        """The kind's own filter, without the scope's expression; None: no record."""
        return Q()

    def covers(self, spec, user, eff, owner) -> bool:
        """The kind's own test of a record whose owner field holds `owner` (the same rule as `condition`)."""
        return True

    def q(self, spec, user, eff) -> Q:
        """The filter of the scope: the kind's and, when the scope has one, its expression's."""
        condition = self.condition(spec, user, eff)
        if condition is None:
            return NOTHING
        if spec.expression or self.expression_required:
            try:
                condition &= compile_expression(spec.expression or "false").to_q({"user": user_context(user, eff)})
            except ExpressionError as error:
                # A scope that cannot run grants nothing (its design was validated; data may have changed).
                logger.warning("rbac scope %s of role %s cannot run: %s", spec.id, spec.role, error)
                return NOTHING
        return condition

    def holds(self, spec, user, eff, record, resource_type) -> bool:
        """Whether the scope covers `record`, in memory: the same rules `q` gives SQL."""
        owner = _owner_value(record, spec.owner_field) if self.owner_based else None
        if not self.covers(spec, user, eff, owner):
            return False
        if spec.expression or self.expression_required:
            try:
                return compile_expression(spec.expression or "false").is_true(
                    {"record": resource_type.record_values(record), "user": user_context(user, eff)})
            except ExpressionError as error:
                logger.warning("rbac scope %s of role %s cannot run: %s", spec.id, spec.role, error)
                return False
        return True

    def summary(self, spec) -> str:
        """The kind's part of `describe()`."""
        return str(self.label)

    def describe(self, spec) -> str:
        """The scope in words, for `explain()`."""
        text = self.summary(spec)
        if spec.expression:
            text += " " + _("where %(expression)s") % {"expression": spec.expression}
        return _("%(scope)s (role %(role)s, %(action)s scope)") % {"scope": text, "role": spec.role,
                                                                    "action": spec.action}

    def validate(self, scope, resource, owner_fields: list[str]) -> dict[str, str]:
        """The kind's errors of a `DataScope` by field name; `resource` None: the entity is not published."""
        return {}


class AllRecords(ScopeKind):
    type = "all"
    label = gettext_lazy("all records")
    unconditional = True


class OwnRecords(ScopeKind):
    type = "own"
    label = gettext_lazy("own records")
    owner_based = True

    def condition(self, spec, user, eff) -> Q | None:
        return Q(**{spec.owner_field: user.pk})

    def covers(self, spec, user, eff, owner) -> bool:
        return user.pk is not None and owner == user.pk

    def summary(self, spec) -> str:
        return _("%(kind)s on %(field)s") % {"kind": self.label, "field": spec.owner_field}

    def validate(self, scope, resource, owner_fields: list[str]) -> dict[str, str]:
        if resource is not None and scope.owner_field not in owner_fields:
            return {"owner_field": _("%(field)s is not a user field of %(entity)s; use one of: %(fields)s.") % {
                "field": scope.owner_field, "entity": scope.entity_key, "fields": ", ".join(owner_fields)}}
        return {}


class DepartmentRecords(OwnRecords):
    """Records owned by a member or a manager of the user's departments."""

    type = "department"
    label = gettext_lazy("own department's records")
    owners = "department_user_ids"
    """The `Effective` attribute holding the owners: resolved with the effective permissions."""

    def condition(self, spec, user, eff) -> Q | None:
        # A plain list the planner matches against the owner column's index (a subquery per row would not be).
        owners = getattr(eff, self.owners)
        return Q(**{f"{spec.owner_field}__in": sorted(owners)}) if owners else None

    def covers(self, spec, user, eff, owner) -> bool:
        return owner in getattr(eff, self.owners)


class DepartmentTreeRecords(DepartmentRecords):
    """Records owned by a member or a manager of the user's departments or of any department below them."""

    type = "department_tree"
    label = gettext_lazy("own department's and below")
    owners = "tree_user_ids"


class ExpressionRecords(ScopeKind):
    type = "expression"
    label = gettext_lazy("records matching an expression")
    expression_required = True

    def validate(self, scope, resource, owner_fields: list[str]) -> dict[str, str]:
        if not (scope.expression or "").strip():
            return {"expression": _("An expression scope needs an expression.")}
        return {}


class UnknownKind(ScopeKind):
    """A kind no app registers (bad data): it covers nothing."""

    def __init__(self, type: str):
        self.type = type

    def condition(self, spec, user, eff) -> Q | None:
        return None

    def covers(self, spec, user, eff, owner) -> bool:
        return False

    def summary(self, spec) -> str:
        return self.type


#: The built-in kinds, in the order admin offers them (`DataScope.Kind` is made of them).
BUILTIN_SCOPE_KINDS = [AllRecords(), OwnRecords(), DepartmentRecords(), DepartmentTreeRecords(), ExpressionRecords()]

scope_kind_registry: Registry[ScopeKind] = Registry("rbac scope kind")


def register_builtin_scope_kinds() -> None:
    for kind in BUILTIN_SCOPE_KINDS:
        if not scope_kind_registry.is_registered(kind.type):
            scope_kind_registry.register(kind)


def scope_kind_choices() -> list[tuple[str, str]]:
    """The registered kinds as choices of `DataScope.kind` (the field asks on use, after every app registered)."""
    return [(kind.type, kind.label) for kind in scope_kind_registry.get_all()]


def scope_kind(type: str) -> ScopeKind:
    """The registered kind `type`, or one that covers nothing."""
    try:
        return scope_kind_registry.get(type)
    except NotRegistered:
        return UnknownKind(type)
