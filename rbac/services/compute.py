"""What one user may do in the current tenant, computed from the rows (RB-1, RB-3..RB-6).

`compute(user)` reads the user's roles (direct, through departments, inherited), their
permissions, operations, data scopes and column rules, the user's departments and object
grants, and resolves them into one immutable `Effective`; `effective_cache` keeps it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import Q

from rbac.models import ColumnRule, DataScope, Department, Role
from rbac.registries import ENTITY_PREFIX, entity_records
from rbac.scopes import SCOPE_ACTIONS, scope_kind

#: How restrictive each column rule is; the least restrictive across a user's roles wins.
RULE_RANK = {ColumnRule.Rule.READ_ONLY: 1, ColumnRule.Rule.MASKED: 2, ColumnRule.Rule.HIDDEN: 3}


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
    unconditional: bool = False
    """Covers every record: a kind that needs no filter, without an expression."""


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


def closure(role_id: int, parents: dict[int, list[int]]) -> list[int]:
    """The role and its ancestors, nearest first (cycles in bad data are cut)."""
    seen, order, queue = {role_id}, [role_id], [role_id]
    while queue:
        for parent in parents.get(queue.pop(0), ()):
            if parent not in seen:
                seen.add(parent)
                order.append(parent)
                queue.append(parent)
    return order


def compute(user) -> Effective:
    """Compute what the user may do in the current tenant from the rows (about 15 queries)."""
    keys, parents = Role.graph()
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

    closures = {role_id: closure(role_id, parents) for role_id in held}
    sources: dict[str, list[RoleSource]] = defaultdict(list)
    for role_id, how in held.items():
        sources[keys[role_id]].extend(how)
    for role_id, chain in closures.items():
        for ancestor in chain[1:]:
            source = RoleSource("inherited", keys[role_id])
            if source not in sources[keys[ancestor]]:
                sources[keys[ancestor]].append(source)
    all_ids = {role_id for chain in closures.values() for role_id in chain}
    all_closures = {role_id: closure(role_id, parents) for role_id in all_ids}

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
    system_owners = entity_records().system_owner_fields
    for entity_key, owner_field in DataScope.objects.exclude(owner_field__in=("", *system_owners)).values_list(
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
                        expression=row["expression"] or "",
                        unconditional=scope_kind(row["kind"]).unconditional and not row["expression"]))
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


def _department_users(department_ids: Iterable[int]):
    department_ids = list(department_ids)
    return get_user_model().objects.filter(
        Q(rbac_departments__in=department_ids) | Q(rbac_managed_departments__in=department_ids)).values("pk")
