"""Roles and permissions of a tenant: the one implementation every app calls (RB-1..RB-8).

Checks and filters come in pairs from the same source (the effective permissions of a user):

- `check(user, operation, obj=None)`: may the user do `operation` ("data.expense.view",
  "designer.access"...), on this record if given?
- `scope_queryset(user, queryset, action)`: the records of a runtime model the user may act on.
- `field_rules(user, entity_key)`: the hidden, masked and read-only fields of an entity.
- `explain(user, operation, obj=None)`: the rule chain behind `check`'s answer.

`effective(user)` computes what a user may do once and caches it per process under a
tenant-wide version number kept in the Django cache (`rbac:version`, its keys are per schema);
every service below that changes roles, grants, scopes, column rules, departments or
memberships bumps it, keeps the Django groups in sync (so the Django admin honours roles)
and writes an audit event.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.core.exceptions import FieldDoesNotExist, FieldError, ObjectDoesNotExist, ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils.translation import gettext as _
from django_tenants.utils import get_public_schema_name

from audit import services as audit
from lowcode.expressions import ExpressionError, compile_expression, types
from rbac.models import ColumnRule, DataScope, Department, Role
from rbac.registries import (
    DEFAULT_ENTITY_ACTIONS,
    ENTITY_ACTIONS,
    ENTITY_PREFIX,
    EXTRA_ENTITY_ACTIONS,
    EntityOperation,
    UnknownOperation,
    entity_operation,
    operation_type_registry,
    parse_entity_operation,
    validate_operation,
)

__all__ = [
    "ColumnRuleSpec",
    "Effective",
    "Explanation",
    "ScopeSpec",
    "Step",
    "UnknownOperation",
    "add_member",
    "add_scope",
    "assign_role",
    "bump",
    "check",
    "create_department",
    "create_role",
    "delete_department",
    "delete_role",
    "department_changed",
    "effective",
    "entity_operation",
    "ensure_builtin_roles",
    "ensure_entity_permissions",
    "explain",
    "field_rules",
    "find_record",
    "grant",
    "mask",
    "remove_member",
    "remove_scope",
    "revoke",
    "role_changed",
    "schema_variant",
    "scope_queryset",
    "set_column_rule",
    "set_parents",
    "share",
    "sync",
    "unassign_role",
    "unshare",
    "update_department",
    "update_role",
    "version",
]

logger = logging.getLogger(__name__)

VERSION_KEY = "rbac:version"
GROUP_PREFIX = "role:"
SCOPE_ACTIONS = ("view", "change", "delete")
#: How restrictive each column rule is; the least restrictive across a user's roles wins.
RULE_RANK = {ColumnRule.Rule.READ_ONLY: 1, ColumnRule.Rule.MASKED: 2, ColumnRule.Rule.HIDDEN: 3}
SYSTEM_OWNER_FIELDS = ("created_by", "updated_by")
#: The built-in roles: key -> (name, operations, permission app labels); "*" means all.
BUILTIN_ROLES = {
    Role.TENANT_ADMIN: ("Tenant admin", "*", "*"),
    Role.BUILDER: ("Builder", ["designer.access"], ["metadata", "dynamic_models"]),
    Role.MEMBER: ("Member", ["api.access"], []),
    Role.GUEST: ("Guest", [], []),
}
_LOCAL_MAX = 10_000


# --- Effective permissions ---------------------------------------------------------------


@dataclass(frozen=True)
class ScopeSpec:
    """One data scope that applies to a user: defined on `role`, held through `via`."""

    id: int
    role: str
    via: str
    entity_key: str
    action: str
    kind: str
    owner_field: str
    expression: str

    @property
    def unconditional(self) -> bool:
        return self.kind == DataScope.Kind.ALL and not self.expression


@dataclass(frozen=True)
class RoleSource:
    """How a user holds a role: "direct", "member"/"manager" of a department, or "inherited"."""

    how: str
    via: str = ""


@dataclass(frozen=True)
class ColumnRuleSpec:
    role: str
    entity_key: str
    field_key: str
    rule: str


@dataclass(frozen=True)
class Effective:
    """What one user may do in the current tenant, computed once by `effective()`."""

    user_id: int | None = None
    roles: frozenset[str] = frozenset()
    """Keys of the roles the user holds, with every ancestor."""
    role_sources: dict[str, tuple[RoleSource, ...]] = field(default_factory=dict)
    perms: frozenset[str] = frozenset()
    """Django permissions ("app.codename") of the roles, the user and the user's other groups."""
    operations: frozenset[str] = frozenset()
    scopes: dict[str, dict[str, tuple[ScopeSpec, ...]]] = field(default_factory=dict)
    """{entity_key: {"view"|"change"|"delete": scopes}}, already filtered and with fallbacks."""
    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    """{entity_key: {field_key: "hidden"|"masked"|"read_only"}}, resolved across roles."""
    department_ids: frozenset[int] = frozenset()
    """Departments the user is a member or a manager of."""
    tree_department_ids: frozenset[int] = frozenset()
    """Those departments and every department below them."""
    managed_department_ids: frozenset[int] = frozenset()
    department_user_ids: frozenset[int] = frozenset()
    """Members and managers of the user's departments (owners a "department" scope sees)."""
    tree_user_ids: frozenset[int] = frozenset()
    """Members and managers of those departments and every department below them."""
    grants: frozenset[tuple[str, str, int]] = frozenset()
    """Records granted to the user or its groups through django-guardian: (entity, action, id)."""
    is_tenant_admin: bool = False
    filters: dict = field(default_factory=dict, compare=False, repr=False)
    """Scope filters built so far, by (entity, action): `scope_queryset` memo."""
    role_permissions: dict[str, frozenset[str]] = field(default_factory=dict)
    """Each role's own permissions (without inheritance), for `explain()`."""
    role_operations: dict[str, frozenset[str]] = field(default_factory=dict)
    other_perms: frozenset[str] = frozenset()
    """Permissions of the user itself and of groups that are not roles."""
    column_rules: tuple[ColumnRuleSpec, ...] = ()
    owner_fields: dict[str, frozenset[str]] = field(default_factory=dict)
    """{entity_key: fields that any role's data scope names as the owner}, system columns left out."""

    def has_perm(self, perm: str) -> bool:
        return perm in self.perms


EMPTY = Effective()
_local: dict[tuple[str, object], tuple[int, Effective]] = {}


def _seed() -> int:
    # A lost counter restarts above every value it can have had: stale caches stay stale.
    return int(time.time() * 1000)


def version(request=None) -> int:
    """Return the tenant's permission version; a request remembers it (one cache read per request)."""
    request = getattr(request, "_request", request)  # DRF's Request wraps Django's.
    if request is not None:
        cached = getattr(request, "_rbac_version", None)
        if cached is not None:
            return cached
    current = cache.get(VERSION_KEY)
    if current is None:
        cache.add(VERSION_KEY, _seed(), timeout=None)
        current = cache.get(VERSION_KEY) or 0
    if request is not None:
        request._rbac_version = current
    return current


def _bump_now() -> None:
    try:
        cache.incr(VERSION_KEY)
    except ValueError:  # No counter yet (or the cache lost it).
        cache.add(VERSION_KEY, _seed(), timeout=None)


def bump() -> None:
    """Invalidate every cached `Effective` of the tenant, in this process and in every other.

    Bumped now, so this transaction sees its changes, and again on commit, so that no other
    process keeps what it computed from the data before the commit.
    """
    schema_name = connection.schema_name
    for key in [key for key in list(_local) if key[0] == schema_name]:
        _local.pop(key, None)
    _bump_now()
    transaction.on_commit(_bump_now)


def clear_local_cache() -> None:
    """Forget this process's cached permissions (tests; a fresh process starts like this)."""
    _local.clear()


def effective(user, request=None) -> Effective:
    """Return the user's effective permissions in the current tenant, cached (RB-7).

    Cached per process under (schema, user id) with the tenant's version: a repeated call
    costs no database query; with `request`, no cache read either after the first.
    """
    if user is None or getattr(user, "pk", None) is None or not user.is_authenticated:
        return EMPTY
    schema_name = connection.schema_name
    if schema_name == get_public_schema_name():
        return EMPTY
    current = version(request)
    key = (schema_name, user.pk)
    hit = _local.get(key)
    if hit is not None and hit[0] == current:
        return hit[1]
    computed = _compute(user)
    if len(_local) >= _LOCAL_MAX:
        _local.clear()
    _local[key] = (current, computed)
    return computed


def _graph() -> tuple[dict[int, str], dict[int, list[int]]]:
    """Return {role id: key} and {role id: parent ids} of the tenant's roles."""
    keys = dict(Role.objects.values_list("id", "key"))
    parents: dict[int, list[int]] = defaultdict(list)
    for child, parent in Role.parents.through.objects.values_list("from_role_id", "to_role_id"):
        parents[child].append(parent)
    return keys, parents


def _closure(role_id: int, parents: dict[int, list[int]]) -> list[int]:
    """The role and its ancestors, nearest first (cycles in bad data are cut)."""
    seen, order, queue = {role_id}, [role_id], [role_id]
    while queue:
        for parent in parents.get(queue.pop(0), ()):
            if parent not in seen:
                seen.add(parent)
                order.append(parent)
                queue.append(parent)
    return order


def _compute(user) -> Effective:
    keys, parents = _graph()
    held: dict[int, list[RoleSource]] = defaultdict(list)
    for role_id in Role.users.through.objects.filter(user_id=user.pk).values_list("role_id", flat=True):
        held[role_id].append(RoleSource("direct"))
    member_of = set(Department.members.through.objects.filter(user_id=user.pk)
                    .values_list("department_id", flat=True))
    managed = set(Department.managers.through.objects.filter(user_id=user.pk)
                  .values_list("department_id", flat=True))
    own_departments = member_of | managed
    tree: set[int] = set()
    if own_departments:
        rows = list(Department.objects.filter(id__in=own_departments).values_list("id", "path", "name"))
        names = {pk: name for pk, _path, name in rows}
        below = Q(pk__in=[])
        for _pk, path, _name in rows:
            below |= Q(path__startswith=path)
        tree = set(Department.objects.filter(below).values_list("id", flat=True)) | own_departments
        for department_id, role_id in Department.roles.through.objects.filter(
                department_id__in=own_departments).values_list("department_id", "role_id"):
            how = "manager" if department_id in managed else "member"
            held[role_id].append(RoleSource(how, names.get(department_id, "")))

    closures = {role_id: _closure(role_id, parents) for role_id in held}
    sources: dict[str, list[RoleSource]] = defaultdict(list)
    for role_id, how in held.items():
        sources[keys[role_id]].extend(how)
    for role_id, chain in closures.items():
        for ancestor in chain[1:]:
            source = RoleSource("inherited", keys[role_id])
            if source not in sources[keys[ancestor]]:
                sources[keys[ancestor]].append(source)
    all_ids = {role_id for chain in closures.values() for role_id in chain}
    all_closures = {role_id: _closure(role_id, parents) for role_id in all_ids}

    own_perms: dict[int, set[str]] = defaultdict(set)
    for role_id, app_label, codename in Role.permissions.through.objects.filter(role_id__in=all_ids).values_list(
            "role_id", "permission__content_type__app_label", "permission__codename"):
        own_perms[role_id].add(f"{app_label}.{codename}")
    own_operations = {role_id: set(operations or ()) for role_id, operations in
                      Role.objects.filter(id__in=all_ids).values_list("id", "operations")}
    closure_perms = {role_id: set().union(*(own_perms[r] for r in chain)) for role_id, chain in all_closures.items()}

    other_perms = {f"{app_label}.{codename}" for app_label, codename in Permission.objects.filter(
        Q(user=user) | Q(group__user=user, group__rbac_role__isnull=True)).values_list(
        "content_type__app_label", "codename").distinct()}
    perms = set(other_perms).union(*(closure_perms[r] for r in all_ids)) if all_ids else set(other_perms)
    operations = set().union(*(own_operations.get(r, set()) for r in all_ids)) if all_ids else set()

    scope_rows = defaultdict(list)
    rule_rows: dict[int, dict[str, dict[str, str]]] = defaultdict(lambda: defaultdict(dict))
    column_specs = []
    if all_ids:
        for row in DataScope.objects.filter(role_id__in=all_ids).order_by("id").values(
                "id", "role_id", "entity_key", "action", "kind", "owner_field", "expression"):
            scope_rows[row["role_id"]].append(row)
        for role_id, entity_key, field_key, rule in ColumnRule.objects.filter(role_id__in=all_ids).values_list(
                "role_id", "entity_key", "field_key", "rule"):
            rule_rows[role_id][entity_key][field_key] = rule
            column_specs.append(ColumnRuleSpec(keys[role_id], entity_key, field_key, rule))

    owners = defaultdict(set)
    for entity_key, owner_field in DataScope.objects.exclude(owner_field__in=("", *SYSTEM_OWNER_FIELDS)).values_list(
            "entity_key", "owner_field").distinct():
        owners[entity_key].add(owner_field)
    department_users = _department_user_ids(own_departments)
    tree_users = _department_user_ids(tree) if tree != own_departments else department_users
    scopes = _resolve_scopes(held, closures, closure_perms, scope_rows, keys)
    columns = _resolve_columns(held, parents, closure_perms, rule_rows)
    is_admin = Role.TENANT_ADMIN in {keys[r] for r in all_ids}
    return Effective(
        user_id=user.pk,
        roles=frozenset(keys[r] for r in all_ids),
        role_sources={key: tuple(value) for key, value in sources.items()},
        perms=frozenset(perms),
        operations=frozenset(operations),
        scopes=scopes,
        columns=columns,
        department_ids=frozenset(own_departments),
        tree_department_ids=frozenset(tree),
        managed_department_ids=frozenset(managed),
        department_user_ids=department_users,
        tree_user_ids=tree_users,
        grants=_object_grants_of(user),
        is_tenant_admin=is_admin,
        role_permissions={keys[r]: frozenset(own_perms[r]) for r in all_ids},
        role_operations={keys[r]: frozenset(own_operations.get(r, ())) for r in all_ids},
        other_perms=frozenset(other_perms),
        column_rules=tuple(column_specs),
        owner_fields={entity_key: frozenset(names) for entity_key, names in owners.items()},
    )


def _department_user_ids(department_ids: set[int]) -> frozenset[int]:
    if not department_ids:
        return frozenset()
    return frozenset(_department_users(department_ids).values_list("pk", flat=True))


def _object_grants_of(user) -> frozenset[tuple[str, str, int]]:
    """The user's object grants on records (its own and its groups'), loaded once per version."""
    from guardian.models import GroupObjectPermission, UserObjectPermission

    grants = set()
    lookups = {"content_type__app_label": ENTITY_PREFIX}
    for model in (UserObjectPermission.objects.filter(user=user, **lookups),
                  GroupObjectPermission.objects.filter(group__user=user, **lookups)):
        for entity_key, codename, object_pk in model.values_list("content_type__model", "permission__codename",
                                                                   "object_pk"):
            if object_pk.isdigit():
                grants.add((entity_key, codename.split("_", 1)[0], int(object_pk)))
    return frozenset(grants)


def _resolve_scopes(held, closures, closure_perms, scope_rows, keys) -> dict:
    """Per entity and action, the scopes of the held roles that grant that action.

    A role (with its ancestors) contributes its scopes for an action only if it grants the
    action's permission; with no scope for change or delete, its view scopes apply.
    """
    result: dict[str, dict[str, list[ScopeSpec]]] = defaultdict(lambda: defaultdict(list))
    seen: dict[tuple[str, str], set[int]] = defaultdict(set)
    for role_id in held:
        rows = [row for ancestor in closures[role_id] for row in scope_rows.get(ancestor, ())]
        perms = closure_perms[role_id]
        for entity_key in {row["entity_key"] for row in rows}:
            for action in SCOPE_ACTIONS:
                if f"{ENTITY_PREFIX}.{action}_{entity_key}" not in perms:
                    continue
                chosen = [r for r in rows if r["entity_key"] == entity_key and r["action"] == action]
                if not chosen and action != "view":
                    chosen = [r for r in rows if r["entity_key"] == entity_key and r["action"] == "view"]
                for row in chosen:
                    if row["id"] in seen[(entity_key, action)]:
                        continue
                    seen[(entity_key, action)].add(row["id"])
                    result[entity_key][action].append(ScopeSpec(
                        id=row["id"], role=keys[row["role_id"]], via=keys[role_id], entity_key=entity_key,
                        action=row["action"], kind=row["kind"], owner_field=row["owner_field"] or "created_by",
                        expression=row["expression"] or ""))
    return {entity: {action: tuple(specs) for action, specs in by_action.items()}
            for entity, by_action in result.items()}


def _least_restrictive(rule_sets: list[dict[str, str]]) -> dict[str, str]:
    """A field keeps a rule only if every set has one; then the least restrictive wins."""
    if not rule_sets:
        return {}
    fields = set(rule_sets[0]).intersection(*rule_sets[1:])
    return {key: min((rules[key] for rules in rule_sets), key=lambda rule: RULE_RANK.get(rule, 0))
            for key in sorted(fields)}


def _resolve_columns(held, parents, closure_perms, rule_rows) -> dict[str, dict[str, str]]:
    """Column rules per entity, across the held roles that may view the entity.

    A role's rules are its own, over those it inherits (its viewing parents' rules, resolved
    the same way). Across roles the least restrictive wins: a role without a rule for a field
    leaves that field unrestricted.
    """
    entity_keys = {entity for by_entity in rule_rows.values() for entity in by_entity}
    result = {}
    for entity_key in entity_keys:
        view = f"{ENTITY_PREFIX}.view_{entity_key}"
        memo: dict[int, dict[str, str]] = {}

        def resolved(role_id: int, stack: frozenset = frozenset(), entity_key=entity_key, view=view, memo=memo):
            if role_id in memo:
                return memo[role_id]
            inherited = _least_restrictive([
                resolved(parent, stack | {role_id}) for parent in parents.get(role_id, ())
                if parent not in stack and parent != role_id and view in closure_perms.get(parent, set())])
            memo[role_id] = {**inherited, **rule_rows.get(role_id, {}).get(entity_key, {})}
            return memo[role_id]

        rules = _least_restrictive([resolved(r) for r in held if view in closure_perms.get(r, set())])
        if rules:
            result[entity_key] = rules
    return result


# --- Checks and filters ------------------------------------------------------------------


def is_active(user) -> bool:
    return user is not None and getattr(user, "is_authenticated", False) and getattr(user, "is_active", False)


def _entity_key(model) -> str:
    if model._meta.app_label != ENTITY_PREFIX:
        raise ValueError(f"{model._meta.label} is not a runtime entity model.")
    return (getattr(model, "lowcode_entity", None) or {}).get("key") or model._meta.model_name


def _scope_action(action: str) -> str:
    """Export, import and add read like view; change and delete have scopes of their own."""
    if action not in ENTITY_ACTIONS:
        raise UnknownOperation(_("Unknown entity action %(action)r; use one of %(actions)s.")
                               % {"action": action, "actions": ", ".join(ENTITY_ACTIONS)})
    return action if action in SCOPE_ACTIONS else "view"


def _user_context(user, eff: Effective) -> dict:
    """`user.<attribute>` in scope expressions."""
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


_NOTHING = Q(pk__in=[])


def _department_users(department_ids: Iterable[int]):
    department_ids = list(department_ids)
    return get_user_model().objects.filter(
        Q(rbac_departments__in=department_ids) | Q(rbac_managed_departments__in=department_ids)).values("pk")


def _spec_q(spec: ScopeSpec, user, eff: Effective) -> Q:
    """The filter of one scope (its kind, and its expression when it has one)."""
    if spec.kind == DataScope.Kind.ALL:
        condition = Q()
    elif spec.kind == DataScope.Kind.OWN:
        condition = Q(**{spec.owner_field: user.pk})
    elif spec.kind in (DataScope.Kind.DEPARTMENT, DataScope.Kind.DEPARTMENT_TREE):
        # The owners were resolved with the effective permissions: a plain list the planner
        # matches against the owner column's index (a subquery per row would not be).
        owners = eff.department_user_ids if spec.kind == DataScope.Kind.DEPARTMENT else eff.tree_user_ids
        if not owners:
            return _NOTHING
        condition = Q(**{f"{spec.owner_field}__in": sorted(owners)})
    elif spec.kind == DataScope.Kind.EXPRESSION:
        condition = Q()
    else:
        return _NOTHING
    if spec.expression or spec.kind == DataScope.Kind.EXPRESSION:
        try:
            condition &= compile_expression(spec.expression or "false").to_q({"user": _user_context(user, eff)})
        except ExpressionError as error:
            # A scope that cannot run grants nothing (its design was validated; data may have changed).
            logger.warning("rbac scope %s of role %s cannot run: %s", spec.id, spec.role, error)
            return _NOTHING
    return condition


def _grants_q(eff: Effective, entity_key: str, action: str) -> Q:
    """Records granted to the user or to one of its groups through django-guardian (RB-3).

    The grants were loaded with the effective permissions; none is the common case.
    """
    ids = sorted(pk for entity, granted, pk in eff.grants if entity == entity_key and granted == action)
    return Q(pk__in=ids) if ids else _NOTHING


def _scope_filter(user, eff: Effective, entity_key: str, action: str) -> Q | None:
    """The OR of the user's scopes; None means no restriction (an unconditional "all")."""
    specs = eff.scopes.get(entity_key, {}).get(_scope_action(action), ())
    if any(spec.unconditional for spec in specs):
        return None
    combined = _NOTHING
    for spec in specs:
        combined |= _spec_q(spec, user, eff)
    return combined


def scope_queryset(user, queryset, action: str = "view", *, request=None):
    """Return the records of `queryset` (a runtime model's) that the user may `action` (RB-4).

    The union of the scopes of the user's roles that grant the action on the entity (all: no
    filter; own: owner field = user; department(_tree): owner among the members and managers
    of the user's departments (and those below); expression: its compiled filter), OR the
    records granted to the user or its groups through django-guardian. Without any scope and
    grant: no records. Superusers and tenant admins: the queryset unchanged. One SQL query.
    """
    if not is_active(user):
        return queryset.none()
    entity_key = _entity_key(queryset.model)
    _scope_action(action)
    if user.is_superuser:
        return queryset
    eff = effective(user, request)
    if eff.is_tenant_admin:
        return queryset
    memo_key = (entity_key, _scope_action(action))
    if memo_key not in eff.filters:  # Built once per version of the permissions.
        scoped = _scope_filter(user, eff, entity_key, action)
        eff.filters[memo_key] = None if scoped is None else scoped | _grants_q(eff, entity_key, _scope_action(action))
    scoped = eff.filters[memo_key]
    return queryset if scoped is None else queryset.filter(scoped)


def _record_queryset(model):
    """Every record of the model, soft-deleted ones too, with formula values annotated."""
    manager = getattr(model, "all_objects", None) or model._base_manager
    queryset = manager.all()
    formulas = getattr(model, "lowcode_formulas", None) or {}
    if formulas:
        queryset = queryset.annotate(**{key: expression.to_orm() for key, expression in formulas.items()})
    return queryset


def _owner_value(obj, owner_field: str):
    try:
        return getattr(obj, obj._meta.get_field(owner_field).attname)
    except FieldDoesNotExist:
        return None


def _record_values(obj) -> dict:
    values = {field.name: getattr(obj, field.attname) for field in obj._meta.concrete_fields}
    for key in getattr(obj, "lowcode_formulas", None) or {}:
        values[key] = obj.formula_value(key)
    return values


def _spec_holds(spec: ScopeSpec, user, eff: Effective, obj) -> bool:
    """Whether one scope covers the record, in memory: the same rules `_spec_q` gives SQL."""
    owner = _owner_value(obj, spec.owner_field)
    if spec.kind == DataScope.Kind.OWN:
        holds = user.pk is not None and owner == user.pk
    elif spec.kind == DataScope.Kind.DEPARTMENT:
        holds = owner in eff.department_user_ids
    elif spec.kind == DataScope.Kind.DEPARTMENT_TREE:
        holds = owner in eff.tree_user_ids
    else:
        holds = spec.kind in (DataScope.Kind.ALL, DataScope.Kind.EXPRESSION)
    if holds and (spec.expression or spec.kind == DataScope.Kind.EXPRESSION):
        try:
            holds = compile_expression(spec.expression or "false").is_true(
                {"record": _record_values(obj), "user": _user_context(user, eff)})
        except ExpressionError as error:
            logger.warning("rbac scope %s of role %s cannot run: %s", spec.id, spec.role, error)
            return False
    return holds


def _in_scope(user, eff: Effective, operation: EntityOperation, obj) -> bool:
    """Whether the record is inside the user's scope for the action, decided without a query."""
    specs = eff.scopes.get(operation.entity_key, {}).get(_scope_action(operation.action), ())
    return any(spec.unconditional or _spec_holds(spec, user, eff, obj) for spec in specs)


def _granted(user, operation: EntityOperation, obj) -> bool:
    return (operation.entity_key, operation.action, obj.pk) in effective(user).grants


def check(user, operation: str, obj=None, *, request=None) -> bool:
    """Return whether `user` may do `operation`, on the runtime record `obj` if given.

    Inactive and anonymous users: False. Superusers and tenant admins: True. Otherwise the
    operation's permission ("data.expense.view" -> data.view_expense) or registered operation
    must be among the effective ones; with `obj`, the record must also be inside one of the
    user's scopes for that action, unless django-guardian grants it to the user or one of
    its groups (an object grant alone suffices). Raises UnknownOperation for an operation
    that is neither registered nor an entity action.
    """
    parsed = validate_operation(operation)
    if not is_active(user):
        return False
    if user.is_superuser:
        return True
    eff = effective(user, request)
    if eff.is_tenant_admin:
        return True
    if parsed is None:
        return operation in eff.operations
    if obj is None:
        return parsed.permission in eff.perms
    if _entity_key(type(obj)) != parsed.entity_key:
        raise ValueError(f"{operation} does not apply to a {type(obj)._meta.model_name} record.")
    if parsed.permission in eff.perms and _in_scope(user, eff, parsed, obj):
        return True
    return _granted(user, parsed, obj)


def field_rules(user, entity_key: str, *, request=None) -> dict[str, str]:
    """Return {field_key: "hidden" | "masked" | "read_only"} for the user on the entity (RB-5).

    Across the user's roles that may view the entity, the least restrictive rule wins
    (hidden > masked > read_only > none; a role without a rule for the field counts as none).
    Superusers and tenant admins: {}.
    """
    if is_active(user) and user.is_superuser:
        return {}
    eff = effective(user, request) if is_active(user) else EMPTY
    if eff.is_tenant_admin:
        return {}
    return dict(eff.columns.get(entity_key, {}))


def schema_variant(request):
    """What the caller's OpenAPI schema varies by (settings.API_SCHEMA_VARY): entity permissions and column rules.

    Superusers and tenant admins share one variant ("all"), anonymous callers another.
    """
    user = getattr(request, "user", None)
    if not is_active(user):
        return "anonymous"
    if user.is_superuser:
        return "all"
    eff = effective(user, request)
    if eff.is_tenant_admin:
        return "all"
    return (frozenset(perm for perm in eff.perms if perm.startswith(f"{ENTITY_PREFIX}.")),
            tuple(sorted((entity, tuple(sorted(rules.items()))) for entity, rules in eff.columns.items())))


def mask(value) -> str:
    """Return a masked value: "****" and the last 4 characters, or only "****" below 8 characters."""
    if value is None or value == "":
        return ""
    text = str(value)
    return "****" + text[-4:] if len(text) >= 8 else "****"


# --- Explain (RB-8) ------------------------------------------------------------------------


@dataclass
class Step:
    """One link of the rule chain: `ok` True (grants), False (refuses) or None (information)."""

    kind: str
    message: str
    ok: bool | None = None

    def as_dict(self) -> dict:
        return {"kind": self.kind, "message": self.message, "ok": self.ok}


@dataclass
class Explanation:
    user: str
    operation: str
    record: str | None
    allowed: bool = False
    steps: list[Step] = field(default_factory=list)

    def add(self, kind: str, message: str, ok: bool | None = None) -> None:
        self.steps.append(Step(kind, message, ok))

    def as_dict(self) -> dict:
        return {"user": self.user, "operation": self.operation, "record": self.record, "allowed": self.allowed,
                "steps": [step.as_dict() for step in self.steps]}


def _describe_source(eff: Effective, role_key: str, depth: int = 0) -> str:
    parts = []
    for source in eff.role_sources.get(role_key, ()):
        if source.how == "direct":
            parts.append(_("assigned directly"))
        elif source.how == "member":
            parts.append(_("member of department %(department)s") % {"department": source.via})
        elif source.how == "manager":
            parts.append(_("manager of department %(department)s") % {"department": source.via})
        elif source.how == "inherited":
            text = _("inherited from role %(role)s") % {"role": source.via}
            if depth < 5:
                text += f" ({_describe_source(eff, source.via, depth + 1)})"
            parts.append(text)
    return "; ".join(parts)


def _describe_scope(spec: ScopeSpec) -> str:
    kinds = dict(DataScope.Kind.choices)
    text = _("%(kind)s on %(field)s") % {"kind": kinds.get(spec.kind, spec.kind), "field": spec.owner_field} \
        if spec.kind in ("own", "department", "department_tree") else str(kinds.get(spec.kind, spec.kind))
    if spec.expression:
        text += " " + _("where %(expression)s") % {"expression": spec.expression}
    return _("%(scope)s (role %(role)s, %(action)s scope)") % {"scope": text, "role": spec.role, "action": spec.action}


def explain(user, operation: str, obj=None) -> Explanation:
    """Return the decision `check(user, operation, obj)` makes, with the rule chain behind it.

    Costs queries (one per scope tested against the record): meant for people, not for paths
    that run on every request.
    """
    parsed = validate_operation(operation)
    username = user.get_username() if user is not None and getattr(user, "pk", None) else "-"
    result = Explanation(user=username, operation=operation, record=str(obj.pk) if obj is not None else None)
    if not is_active(user):
        result.add("user", _("The user is inactive or anonymous: nothing is allowed."), False)
        return result
    if user.is_superuser:
        result.add("user", _("%(user)s is a superuser: everything is allowed.") % {"user": username}, True)
        result.allowed = True
        return result
    eff = effective(user)
    if eff.roles:
        result.add("roles", _("Roles: %(roles)s.") % {"roles": "; ".join(
            f"{key} ({_describe_source(eff, key)})" for key in sorted(eff.roles))})
    else:
        result.add("roles", _("%(user)s has no role.") % {"user": username}, None)
    if eff.is_tenant_admin:
        result.add("role", _("Role %(role)s (%(source)s) makes the user an administrator of the tenant: "
                             "everything is allowed.") % {"role": Role.TENANT_ADMIN,
                                                           "source": _describe_source(eff, Role.TENANT_ADMIN)}, True)
        result.allowed = True
        return result
    if parsed is None:
        granting = sorted(key for key, ops in eff.role_operations.items() if operation in ops)
        for key in granting:
            result.add("operation", _("Role %(role)s (%(source)s) grants %(operation)s.") % {
                "role": key, "source": _describe_source(eff, key), "operation": operation}, True)
        if not granting:
            result.add("operation", _("No role of the user grants %(operation)s.") % {"operation": operation}, False)
        result.allowed = bool(granting)
        result.add("decision", _("Allowed.") if result.allowed else _("Denied."), result.allowed)
        return result

    permission = parsed.permission
    granting = sorted(key for key, perms in eff.role_permissions.items() if permission in perms)
    for key in granting:
        result.add("permission", _("Role %(role)s (%(source)s) grants the permission %(permission)s.") % {
            "role": key, "source": _describe_source(eff, key), "permission": permission}, True)
    if permission in eff.other_perms:
        result.add("permission", _("The user or one of its non-role groups has the permission %(permission)s.")
                   % {"permission": permission}, True)
    has_perm = permission in eff.perms
    if not has_perm:
        result.add("permission", _("No role of the user grants the permission %(permission)s.")
                   % {"permission": permission}, False)

    in_scope = False
    if obj is not None:
        if _entity_key(type(obj)) != parsed.entity_key:
            raise ValueError(f"{operation} does not apply to a {type(obj)._meta.model_name} record.")
        action = _scope_action(parsed.action)
        specs = eff.scopes.get(parsed.entity_key, {}).get(action, ())
        if has_perm and not specs:
            result.add("scope", _("No data scope of the user's roles covers %(entity)s for %(action)s: "
                                  "no record is in scope.") % {"entity": parsed.entity_key, "action": action}, False)
        queryset = _record_queryset(type(obj)).filter(pk=obj.pk)
        for spec in specs if has_perm else ():
            matched = spec.unconditional or queryset.filter(_spec_q(spec, user, eff)).exists()
            in_scope = in_scope or matched
            if matched:
                result.add("scope", _("Record %(record)s matches the scope %(scope)s.") % {
                    "record": obj.pk, "scope": _describe_scope(spec)}, True)
            else:
                result.add("scope", _("Record %(record)s is outside the scope %(scope)s.") % {
                    "record": obj.pk, "scope": _describe_scope(spec)}, False)
        grants = _object_grants(user, parsed, obj)
        for grant in grants:
            result.add("grant", grant, True)
        if not grants:
            result.add("grant", _("No object grant on record %(record)s for %(action)s.") % {
                "record": obj.pk, "action": parsed.action}, None)
        result.allowed = (has_perm and in_scope) or bool(grants)
    else:
        result.allowed = has_perm
    columns = eff.columns.get(parsed.entity_key, {})
    if columns:
        result.add("columns", _("Column rules: %(rules)s.") % {
            "rules": ", ".join(f"{key}={rule}" for key, rule in sorted(columns.items()))}, None)
    result.add("decision", _("Allowed.") if result.allowed else _("Denied."), result.allowed)
    return result


def find_record(operation: str, record_id):
    """Return the record `record_id` of the entity an entity operation names (soft-deleted too).

    :raises UnknownOperation: if `operation` is not an entity operation.
    :raises ObjectDoesNotExist: if the entity is not published or has no such record.
    """
    parsed = parse_entity_operation(operation)
    if parsed is None:
        raise UnknownOperation(_("A record goes only with an entity operation, data.<entity>.<action>."))
    from dynamic_models import runtime

    try:
        model = runtime.get_model(parsed.entity_key)
    except LookupError:
        raise ObjectDoesNotExist(_("No entity %(entity)s is published.") % {"entity": parsed.entity_key}) from None
    try:
        return _record_queryset(model).get(pk=int(record_id))
    except (model.DoesNotExist, ValueError, TypeError):
        raise ObjectDoesNotExist(_("No %(entity)s record %(record)s.")
                                 % {"entity": parsed.entity_key, "record": record_id}) from None


def _object_grants(user, operation: EntityOperation, obj) -> list[str]:
    from guardian.models import GroupObjectPermission, UserObjectPermission

    lookups = {"content_type__app_label": ENTITY_PREFIX, "content_type__model": operation.entity_key,
               "permission__codename": f"{operation.action}_{operation.entity_key}", "object_pk": str(obj.pk)}
    messages = []
    if UserObjectPermission.objects.filter(user=user, **lookups).exists():
        messages.append(_("Record %(record)s is shared with the user for %(action)s.")
                        % {"record": obj.pk, "action": operation.action})
    for name in GroupObjectPermission.objects.filter(group__user=user, **lookups).values_list(
            "group__name", flat=True).order_by("group__name"):
        messages.append(_("Record %(record)s is shared with group %(group)s for %(action)s.")
                        % {"record": obj.pk, "group": name, "action": operation.action})
    return messages


# --- Validation ----------------------------------------------------------------------------


def validate_operations(operations) -> list[str]:
    """Return the operation codes if every one is registered; else raise ValidationError."""
    if not isinstance(operations, list | tuple) or not all(isinstance(o, str) for o in operations):
        raise ValidationError({"operations": _("Operations must be a list of operation codes.")})
    unknown = [o for o in operations if not operation_type_registry.is_registered(o)]
    if unknown:
        raise ValidationError({"operations": _("Unknown operations: %(codes)s.") % {"codes": ", ".join(unknown)}})
    return list(dict.fromkeys(operations))


def validate_parents(role: Role, parents: Iterable[Role]) -> None:
    """Raise ValidationError naming the cycle if `role` would inherit from itself."""
    parents = list(parents)
    keys, edges = _graph()
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


def validate_department_parent(department: Department, parent: Department | None) -> None:
    """Raise ValidationError naming the cycle if `parent` is the department or below it."""
    if parent is None or department.pk is None:
        return
    if parent.pk == department.pk:
        raise ValidationError({"parent": _("A department cannot be its own parent: %(cycle)s.")
                               % {"cycle": f"{department.name} → {department.name}"}}, code="cycle")
    chain, current, names = [], parent.pk, {}
    rows = {row[0]: row[1:] for row in Department.objects.values_list("id", "parent_id", "name")}
    while current is not None and current not in chain:
        chain.append(current)
        if current == department.pk:
            names = {pk: values[1] for pk, values in rows.items()}
            names[department.pk] = department.name
            cycle = [department.name] + [names.get(pk, str(pk)) for pk in chain]
            raise ValidationError({"parent": _("The department tree cannot form a cycle: %(cycle)s.")
                                   % {"cycle": " → ".join(cycle)}}, code="cycle")
        current = rows.get(current, (None,))[0]


def _entity_body(entity_key: str) -> dict | None:
    from dynamic_models import runtime

    try:
        return runtime.published_entity_bodies().get(entity_key)
    except Exception:  # noqa: BLE001 - no tenant snapshot (public schema, migrations): skip the check.
        return None


def user_field_keys(entity_key: str) -> list[str]:
    """The fields that can own a record of the entity: created_by, updated_by and its user fields."""
    body = _entity_body(entity_key) or {}
    return [*SYSTEM_OWNER_FIELDS, *(spec["key"] for spec in body.get("fields", ()) if spec.get("type") == "user")]


def _sample_context() -> dict:
    return {"user": {"id": 0, "username": "", "email": "", "is_staff": False, "roles": [], "department_ids": [],
                     "department_tree_ids": [], "managed_department_ids": []}}


#: The types of what `_user_context()` offers scope expressions as `user.<attribute>`.
USER_ATTRIBUTE_TYPES = {
    "id": types.BIGINT, "username": types.TEXT, "email": types.TEXT, "is_staff": types.BOOLEAN,
    "roles": types.list_of(types.TEXT), "department_ids": types.list_of(types.BIGINT),
    "department_tree_ids": types.list_of(types.BIGINT), "managed_department_ids": types.list_of(types.BIGINT),
}


def validate_scope(scope: DataScope) -> None:
    """Raise ValidationError unless the scope can run on its entity."""
    errors = {}
    if scope.action not in DataScope.Action.values:
        errors["action"] = _("Unknown action %(action)s.") % {"action": scope.action}
    if scope.kind not in DataScope.Kind.values:
        errors["kind"] = _("Unknown scope %(kind)s.") % {"kind": scope.kind}
    if scope.kind == DataScope.Kind.EXPRESSION and not (scope.expression or "").strip():
        errors["expression"] = _("An expression scope needs an expression.")
    body = _entity_body(scope.entity_key)
    if body is not None and scope.kind in ("own", "department", "department_tree"):
        owners = user_field_keys(scope.entity_key)
        if scope.owner_field not in owners:
            errors["owner_field"] = _("%(field)s is not a user field of %(entity)s; use one of: %(fields)s.") % {
                "field": scope.owner_field, "entity": scope.entity_key, "fields": ", ".join(owners)}
    if (scope.expression or "").strip() and "expression" not in errors:
        try:
            expression = compile_expression(scope.expression)
            if body is not None:
                from dynamic_models import formulas

                # Fields by type, formulas too; the user's attributes that _user_context() gives.
                expression.check(formulas.expression_fields(body, database=True, formulas=True),
                                 user=USER_ATTRIBUTE_TYPES, condition=True)
            condition = expression.to_q(_sample_context())
            if body is not None:
                from dynamic_models import runtime

                str(runtime.get_model(scope.entity_key).objects.filter(condition).query)  # Compiles, runs nothing.
        except (ExpressionError, FieldError, LookupError, TypeError, ValueError) as error:
            errors["expression"] = _("The expression cannot run: %(error)s") % {"error": error}
    if errors:
        raise ValidationError(errors)


def validate_column_rule(rule: ColumnRule) -> None:
    body = _entity_body(rule.entity_key)
    if rule.rule not in ColumnRule.Rule.values:
        raise ValidationError({"rule": _("Unknown rule %(rule)s.") % {"rule": rule.rule}})
    if body is not None and rule.field_key not in {spec["key"] for spec in body.get("fields", ())}:
        raise ValidationError({"field_key": _("%(entity)s has no field %(field)s.")
                               % {"entity": rule.entity_key, "field": rule.field_key}})


# --- Sync with Django groups (RB-1) --------------------------------------------------------


def _ensure_entity_rows(models_by_key: dict) -> int:
    """Create missing entity permissions (view..delete, export, import); return how many."""
    if not models_by_key:
        return 0
    existing = set(Permission.objects.filter(content_type__app_label=ENTITY_PREFIX).values_list(
        "content_type__model", "codename"))
    missing = []
    for model in models_by_key.values():
        model_name = model._meta.model_name
        wanted = [a for a in (*DEFAULT_ENTITY_ACTIONS, *EXTRA_ENTITY_ACTIONS) if (model_name, f"{a}_{model_name}")
                  not in existing]
        if not wanted:
            continue
        content_type = ContentType.objects.get_for_model(model)
        missing += [Permission(content_type=content_type, codename=f"{action}_{model_name}",
                               name=f"Can {action} {model._meta.verbose_name_raw}"[:255]) for action in wanted]
    Permission.objects.bulk_create(missing, ignore_conflicts=True)
    return len(missing)


def ensure_entity_permissions(model) -> None:
    """Create the entity's permissions, export and import included, for a runtime model.

    Called on publish; the tenant admin role's group gets them at once.
    """
    _entity_key(model)
    if _ensure_entity_rows({model._meta.model_name: model}):
        sync(ensure_entities=False)
        bump()


def _published_models() -> dict:
    tenant = getattr(connection, "tenant", None)
    if tenant is None or not hasattr(tenant, "definition_versions"):
        return {}
    from dynamic_models import runtime

    snapshot = runtime.current()
    return {key: snapshot.get_model(key) for key in snapshot.bodies}


def sync(*, ensure_entities: bool = True) -> None:
    """Make the Django groups mirror the roles (RB-1): one group "role:<key>" per role.

    A role's group gets the role's permissions and its ancestors' (the tenant admin role's:
    every permission); each user holding a role (directly or as a member or manager of a
    department having it), or one of its descendants, is in the group. Groups named
    "role:..." without a role are removed. With `ensure_entities`, the permissions of every
    published entity (export and import included) are created first.
    """
    User = get_user_model()
    if ensure_entities:
        _ensure_entity_rows(_published_models())
    roles = list(Role.objects.select_related("group"))
    for role in roles:
        # Renamed roles first move aside, so that a swap of keys cannot clash.
        if role.group is not None and role.group.name != role.group_name:
            role.group.name = f"{GROUP_PREFIX}~{role.pk}"
            role.group.save(update_fields=["name"])
    groups = {}
    for role in roles:
        group = role.group
        if group is None or group.name != role.group_name:
            # Only an unlinked group can hold the name now: adopt it or make way.
            clash = Group.objects.filter(name=role.group_name).first()
            if group is None:
                group = clash or Group.objects.create(name=role.group_name)
                Role.objects.filter(pk=role.pk).update(group=group)
            else:
                if clash is not None:
                    clash.delete()
                group.name = role.group_name
                group.save(update_fields=["name"])
        groups[role.pk] = group.pk
    Group.objects.filter(name__startswith=GROUP_PREFIX, rbac_role__isnull=True).exclude(
        pk__in=groups.values()).delete()

    _keys, parents = _graph()
    closures = {role.pk: _closure(role.pk, parents) for role in roles}
    own = defaultdict(set)
    for role_id, permission_id in Role.permissions.through.objects.values_list("role_id", "permission_id"):
        own[role_id].add(permission_id)
    admin_ids = {role.pk for role in roles if role.key == Role.TENANT_ADMIN}
    all_permissions = set(Permission.objects.values_list("id", flat=True)) if admin_ids else set()
    wanted_perms = set()
    for role in roles:
        chain = closures[role.pk]
        perms = all_permissions if admin_ids.intersection(chain) else set().union(*(own[r] for r in chain))
        wanted_perms |= {(groups[role.pk], permission_id) for permission_id in perms}
    through = Group.permissions.through
    current = set(through.objects.filter(group_id__in=groups.values()).values_list("group_id", "permission_id"))
    _apply_diff(through, "group_id", "permission_id", current, wanted_perms)

    holders = set(Role.users.through.objects.values_list("user_id", "role_id"))
    department_roles = defaultdict(set)
    for department_id, role_id in Department.roles.through.objects.values_list("department_id", "role_id"):
        department_roles[department_id].add(role_id)
    if department_roles:
        for relation in (Department.members.through, Department.managers.through):
            for department_id, user_id in relation.objects.filter(department_id__in=department_roles).values_list(
                    "department_id", "user_id"):
                holders |= {(user_id, role_id) for role_id in department_roles[department_id]}
    wanted_members = {(user_id, groups[ancestor]) for user_id, role_id in holders
                      for ancestor in closures.get(role_id, ()) if ancestor in groups}
    through = User.groups.through
    current = set(through.objects.filter(group_id__in=groups.values()).values_list("user_id", "group_id"))
    _apply_diff(through, "user_id", "group_id", current, wanted_members)


def _apply_diff(through, left: str, right: str, current: set, wanted: set) -> None:
    extra = current - wanted
    if extra:
        condition = Q()
        for a, b in extra:
            condition |= Q(**{left: a, right: b})
        through.objects.filter(condition).delete()
    missing = wanted - current
    if missing:
        through.objects.bulk_create([through(**{left: a, right: b}) for a, b in missing], ignore_conflicts=True)


# --- Changes: roles ------------------------------------------------------------------------


def _username(user) -> str:
    return user.get_username()


def _role_state(role: Role) -> dict:
    User = get_user_model()
    return {
        "key": role.key, "name": role.name, "description": role.description,
        "parents": sorted(role.parents.values_list("key", flat=True)),
        "permissions": sorted(f"{a}.{c}" for a, c in role.permissions.values_list(
            "content_type__app_label", "codename")),
        "operations": sorted(role.operations or []),
        "users": sorted(role.users.values_list(User.USERNAME_FIELD, flat=True)),
        "scopes": [f"{s.entity_key}.{s.action}={s.kind}:{s.owner_field}:{s.expression}"
                   for s in role.scopes.order_by("entity_key", "action", "id")],
        "column_rules": [f"{r.entity_key}.{r.field_key}={r.rule}" for r in role.column_rules.all()],
    }


def _changes(before: dict | None, after: dict | None) -> tuple[dict | None, dict | None]:
    if before is None or after is None:
        return before, after
    keys = [key for key in after if before.get(key) != after.get(key)]
    return {key: before.get(key) for key in keys}, {key: after[key] for key in keys}


def _after_change(action: str, target, before: dict | None, after: dict | None, actor=None, **kwargs) -> None:
    """What follows every change: groups in sync, caches invalidated, the audit event."""
    sync(ensure_entities=False)
    bump()
    before, after = _changes(before, after)
    audit.record(action, target=target, before=before, after=after, actor=actor, **kwargs)


def _resolve_permission(item) -> Permission:
    if isinstance(item, Permission):
        return item
    parsed = parse_entity_operation(item)
    code = parsed.permission if parsed else item
    app_label, _sep, codename = code.partition(".")
    permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
    if permission is None and parsed is not None:
        _ensure_entity_rows({parsed.entity_key: _runtime_model(parsed.entity_key)})
        permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
    if permission is None:
        raise ValidationError(_("Unknown permission %(permission)s.") % {"permission": item})
    return permission


def _runtime_model(entity_key: str):
    from dynamic_models import runtime

    try:
        return runtime.get_model(entity_key)
    except LookupError:
        raise ValidationError(_("No entity %(entity)s is published.") % {"entity": entity_key}) from None


def _split_grants(items) -> tuple[list[Permission], list[str]]:
    """Split permissions/entity actions ("data.expense.view", "app.codename", Permission) from operations."""
    permissions, operations = [], []
    for item in items:
        if isinstance(item, str) and operation_type_registry.is_registered(item):
            operations.append(item)
        else:
            permissions.append(_resolve_permission(item))
    return permissions, operations


def create_role(key: str, name: str = "", *, description: str = "", parents: Iterable[Role] = (),
                grants: Iterable = (), actor=None) -> Role:
    """Create a role; `grants` are operation codes, entity actions ("data.expense.view"),
    permissions ("app.codename") or Permission objects."""
    with transaction.atomic():
        permissions, operations = _split_grants(grants)
        role = Role(key=key, name=name or key.replace("_", " ").capitalize(), description=description,
                    operations=validate_operations(operations))
        role.full_clean()
        role.save()
        parents = list(parents)
        validate_parents(role, parents)
        role.parents.set(parents)
        role.permissions.set(permissions)
        _after_change("rbac.role.create", role, None, _role_state(role), actor)
    return role


def update_role(role: Role, *, actor=None, **changes) -> Role:
    """Change a role's key, name, description, operations, parents or permissions (full lists)."""
    allowed = {"key", "name", "description", "operations", "parents", "permissions"}
    unknown = set(changes) - allowed
    if unknown:
        raise TypeError(f"update_role() got unknown fields: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        before = _role_state(role)
        if role.builtin and "key" in changes and changes["key"] != role.key:
            raise ValidationError({"key": _("The key of a built-in role cannot change.")})
        for name in ("key", "name", "description"):
            if name in changes:
                setattr(role, name, changes[name])
        if "operations" in changes:
            role.operations = validate_operations(changes["operations"])
        role.full_clean()
        role.save()
        if "parents" in changes:
            parents = list(changes["parents"])
            validate_parents(role, parents)
            role.parents.set(parents)
        if "permissions" in changes:
            role.permissions.set([_resolve_permission(p) for p in changes["permissions"]])
        _after_change("rbac.role.update", role, before, _role_state(role), actor)
    return role


def set_parents(role: Role, parents: Iterable[Role], *, actor=None) -> Role:
    """Replace the role's parents; a cycle is refused with a ValidationError naming it."""
    return update_role(role, parents=list(parents), actor=actor)


def grant(role: Role, *items, actor=None) -> Role:
    """Add operations, entity actions ("data.expense.export") or permissions to a role."""
    with transaction.atomic():
        before = _role_state(role)
        permissions, operations = _split_grants(items)
        role.permissions.add(*permissions)
        if operations:
            role.operations = validate_operations([*(role.operations or []), *operations])
            role.save(update_fields=["operations", "updated_at"])
        _after_change("rbac.role.grant", role, before, _role_state(role), actor)
    return role


def revoke(role: Role, *items, actor=None) -> Role:
    """Remove operations, entity actions or permissions from a role."""
    with transaction.atomic():
        before = _role_state(role)
        permissions, operations = _split_grants(items)
        role.permissions.remove(*permissions)
        if operations:
            role.operations = [o for o in role.operations or [] if o not in operations]
            role.save(update_fields=["operations", "updated_at"])
        _after_change("rbac.role.revoke", role, before, _role_state(role), actor)
    return role


def delete_role(role: Role, *, actor=None) -> None:
    if role.builtin:
        raise ValidationError(_("The built-in role %(role)s cannot be deleted.") % {"role": role.key})
    with transaction.atomic():
        before = _role_state(role)
        group, target_id, target_repr = role.group, str(role.pk), str(role)
        role.delete()
        if group is not None:
            group.delete()
        _after_change("rbac.role.delete", None, before, None, actor, target_type="rbac.role",
                      target_id=target_id, target_repr=target_repr)


def role_state(role: Role) -> dict:
    """The audited state of a role (admin takes it before a form writes)."""
    return _role_state(role)


def role_changed(role: Role, *, before: dict | None = None, created: bool = False, actor=None) -> None:
    """Finish a change written by a form (admin): check inheritance, sync, bump and audit."""
    with transaction.atomic():
        validate_parents(role, list(role.parents.all()))
        _after_change("rbac.role.create" if created else "rbac.role.update", role, None if created else before,
                      _role_state(role), actor)


def assign_role(user, role: Role, *, actor=None) -> None:
    """Give the user the role directly."""
    _change_assignment(user, role, assign=True, actor=actor)


def unassign_role(user, role: Role, *, actor=None) -> None:
    """Take the directly assigned role away (roles through departments stay)."""
    _change_assignment(user, role, assign=False, actor=actor)


def _change_assignment(user, role: Role, *, assign: bool, actor) -> None:
    def held() -> dict:
        return {"roles": sorted(user.rbac_roles.values_list("key", flat=True))}

    with transaction.atomic():
        before = held()
        (role.users.add if assign else role.users.remove)(user)
        _after_change(f"rbac.membership.{'assign' if assign else 'unassign'}", user, before, held(), actor,
                      data={"role": role.key})


# --- Changes: scopes and column rules ----------------------------------------------------------


def add_scope(role: Role, entity_key: str, kind: str, *, action: str = "view", owner_field: str = "created_by",
              expression: str = "", actor=None) -> DataScope:
    """Add a data scope to a role (validated: owner field, expression compiled)."""
    with transaction.atomic():
        before = _role_state(role)
        scope = DataScope(role=role, entity_key=entity_key, kind=kind, action=action, owner_field=owner_field,
                          expression=expression)
        scope.full_clean()
        scope.save()
        _after_change("rbac.scope.create", role, before, _role_state(role), actor)
    return scope


def remove_scope(scope: DataScope, *, actor=None) -> None:
    with transaction.atomic():
        role = scope.role
        before = _role_state(role)
        scope.delete()
        _after_change("rbac.scope.delete", role, before, _role_state(role), actor)


def set_column_rule(role: Role, entity_key: str, field_key: str, rule: str | None, *, actor=None) -> ColumnRule | None:
    """Set (or with `rule=None` remove) a role's rule for a field."""
    with transaction.atomic():
        before = _role_state(role)
        existing = ColumnRule.objects.filter(role=role, entity_key=entity_key, field_key=field_key).first()
        if rule is None:
            if existing is not None:
                existing.delete()
            result = None
        else:
            result = existing or ColumnRule(role=role, entity_key=entity_key, field_key=field_key)
            result.rule = rule
            validate_column_rule(result)
            result.save()
        _after_change("rbac.column_rule.set", role, before, _role_state(role), actor)
    return result


# --- Changes: departments --------------------------------------------------------------------


def _department_state(department: Department) -> dict:
    User = get_user_model()
    return {
        "name": department.name,
        "parent": department.parent.name if department.parent_id else None,
        "managers": sorted(department.managers.values_list(User.USERNAME_FIELD, flat=True)),
        "members": sorted(department.members.values_list(User.USERNAME_FIELD, flat=True)),
        "roles": sorted(department.roles.values_list("key", flat=True)),
    }


def department_state(department: Department) -> dict:
    return _department_state(department)


def create_department(name: str, *, parent: Department | None = None, managers: Iterable = (),
                      members: Iterable = (), roles: Iterable[Role] = (), actor=None) -> Department:
    with transaction.atomic():
        department = Department(name=name, parent=parent)
        department.full_clean()
        department.save()
        department.managers.set(list(managers))
        department.members.set(list(members))
        department.roles.set(list(roles))
        _after_change("rbac.department.create", department, None, _department_state(department), actor)
    return department


def update_department(department: Department, *, actor=None, **changes) -> Department:
    """Change a department's name, parent, managers, members or roles (full lists)."""
    allowed = {"name", "parent", "managers", "members", "roles"}
    unknown = set(changes) - allowed
    if unknown:
        raise TypeError(f"update_department() got unknown fields: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        before = _department_state(department)
        for name in ("name", "parent"):
            if name in changes:
                setattr(department, name, changes[name])
        department.full_clean()
        department.save()
        for name in ("managers", "members", "roles"):
            if name in changes:
                getattr(department, name).set(list(changes[name]))
        _after_change("rbac.department.update", department, before, _department_state(department), actor)
    return department


def add_member(department: Department, user, *, manager: bool = False, actor=None) -> None:
    """Make the user a member (or a manager) of the department."""
    with transaction.atomic():
        before = _department_state(department)
        (department.managers if manager else department.members).add(user)
        _after_change("rbac.department.add_member", department, before, _department_state(department), actor)


def remove_member(department: Department, user, *, actor=None) -> None:
    """Remove the user from the department's members and managers."""
    with transaction.atomic():
        before = _department_state(department)
        department.managers.remove(user)
        department.members.remove(user)
        _after_change("rbac.department.remove_member", department, before, _department_state(department), actor)


def delete_department(department: Department, *, actor=None) -> None:
    if department.children.exists():
        raise ValidationError(_("Department %(name)s has departments below it; move or delete them first.")
                              % {"name": department.name})
    with transaction.atomic():
        before = _department_state(department)
        target_id, target_repr = str(department.pk), str(department)
        department.delete()
        _after_change("rbac.department.delete", None, before, None, actor, target_type="rbac.department",
                      target_id=target_id, target_repr=target_repr)


def department_changed(department: Department, *, before: dict | None = None, created: bool = False,
                       actor=None) -> None:
    """Finish a change written by a form (admin): sync, bump and audit."""
    with transaction.atomic():
        _after_change("rbac.department.create" if created else "rbac.department.update", department,
                      None if created else before, _department_state(department), actor)


# --- Object grants (RB-3) ---------------------------------------------------------------------


def _grant_identity(user, role):
    if (user is None) == (role is None):
        raise ValueError("Pass exactly one of user= or role=.")
    if role is not None:
        if role.group_id is None:
            sync(ensure_entities=False)
            role.refresh_from_db(fields=["group"])
        return role.group
    return user


def share(record, *, user=None, role=None, actions: Iterable[str] = ("view",), actor=None) -> None:
    """Grant `actions` on one record to a user or to a role's holders, through django-guardian."""
    from guardian.shortcuts import assign_perm

    entity_key = _entity_key(type(record))
    actions = list(actions)
    for action in actions:
        entity_operation(entity_key, action)  # Validates the action.
    with transaction.atomic():
        _ensure_entity_rows({entity_key: type(record)})
        identity = _grant_identity(user, role)
        for action in actions:
            assign_perm(f"{ENTITY_PREFIX}.{action}_{record._meta.model_name}", identity, record)
        bump()
        audit.record("rbac.grant.share", target=record, actor=actor, data={
            "user": _username(user) if user is not None else None, "role": role.key if role else None,
            "actions": actions})


def unshare(record, *, user=None, role=None, actions: Iterable[str] = ("view",), actor=None) -> None:
    """Take back grants made by `share()`."""
    from guardian.shortcuts import remove_perm

    entity_key = _entity_key(type(record))
    actions = list(actions)
    for action in actions:
        entity_operation(entity_key, action)
    with transaction.atomic():
        identity = _grant_identity(user, role)
        for action in actions:
            remove_perm(f"{ENTITY_PREFIX}.{action}_{record._meta.model_name}", identity, record)
        bump()
        audit.record("rbac.grant.unshare", target=record, actor=actor, data={
            "user": _username(user) if user is not None else None, "role": role.key if role else None,
            "actions": actions})


# --- Built-in roles ---------------------------------------------------------------------------


def ensure_builtin_roles(*, ensure_entities: bool = True) -> list[Role]:
    """Create the built-in roles that are missing, with their defaults; then sync the groups.

    tenant_admin: every registered operation (and, through `check`, everything in the
    tenant; its group gets every permission); builder: designer.access and the permissions
    of the metadata and dynamic_models models; member: api.access; guest: nothing. Roles that
    exist keep what admins made of them (a tenant admin may take a default away for good).
    """
    roles = []
    with transaction.atomic():
        for key, (name, operations, app_labels) in BUILTIN_ROLES.items():
            role = Role.objects.filter(key=key).first()
            if role is None:
                role = Role.objects.create(
                    key=key, name=name, builtin=True,
                    operations=operation_type_registry.get_types() if operations == "*" else list(operations))
                if app_labels and app_labels != "*":
                    role.permissions.add(*Permission.objects.filter(content_type__app_label__in=app_labels))
            elif not role.builtin:
                role.builtin = True
                role.save(update_fields=["builtin", "updated_at"])
            roles.append(role)
        sync(ensure_entities=ensure_entities)
        bump()
    return roles


def entity_operations(entity_key: str) -> list[str]:
    """Every operation code of one entity ("data.expense.view", ...)."""
    return [entity_operation(entity_key, action) for action in ENTITY_ACTIONS]
