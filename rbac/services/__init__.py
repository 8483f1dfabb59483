"""Roles and permissions of a tenant: the one implementation every app calls (RB-1..RB-8).

A package by concern; every app imports from here:

- `compute`: what one user may do (`Effective`), computed from the rows;
- `effective_cache`: `effective(user)` cached per process under the tenant's permission
  version (`version`, `bump`);
- `checks`: `check`, `scope_queryset`, `field_rules`, `schema_variant`, `mask`;
- `explanations`: `explain` and `find_record` (RB-8);
- `roles`, `departments`, `grants`: the services that change data; each ends with
  `groups.after_change` (Django groups in sync, version bumped, audit event written);
- `groups`: `sync` makes the Django groups mirror the roles; entity permissions exist.

Scope kinds live in `rbac.scopes`, validation in `rbac.validation` (models use both), what rbac
guards (operations, resource types) in `rbac.registries`, column access in `rbac.columns`.
"""

from audit import services as audit
from rbac.registries import UnknownOperation, entity_operation
from rbac.services.checks import check, denial, field_rules, is_active, mask, schema_variant, scope_queryset
from rbac.services.compute import ColumnRuleSpec, Effective, ScopeSpec
from rbac.services.departments import (
    add_member,
    create_department,
    delete_department,
    department_changed,
    department_state,
    remove_member,
    update_department,
)
from rbac.services.effective_cache import VERSION_KEY, bump, clear_local_cache, effective, version
from rbac.services.explanations import Explanation, Step, explain, find_record
from rbac.services.grants import share, unshare
from rbac.services.groups import ensure_entity_permissions, sync
from rbac.services.roles import (
    BUILTIN_ROLES,
    add_scope,
    assign_role,
    create_role,
    delete_role,
    ensure_builtin_roles,
    entity_operations,
    grant,
    remove_scope,
    revoke,
    role_changed,
    role_state,
    set_column_rule,
    set_parents,
    unassign_role,
    update_role,
)
from rbac.validation import (
    validate_column_rule,
    validate_department_parent,
    validate_operations,
    validate_parents,
    validate_scope,
)

__all__ = [
    "BUILTIN_ROLES",
    "VERSION_KEY",
    "ColumnRuleSpec",
    "Effective",
    "Explanation",
    "ScopeSpec",
    "Step",
    "UnknownOperation",
    "add_member",
    "add_scope",
    "assign_role",
    "audit",
    "bump",
    "check",
    "clear_local_cache",
    "create_department",
    "create_role",
    "delete_department",
    "delete_role",
    "denial",
    "department_changed",
    "department_state",
    "effective",
    "entity_operation",
    "entity_operations",
    "ensure_builtin_roles",
    "ensure_entity_permissions",
    "explain",
    "field_rules",
    "find_record",
    "grant",
    "is_active",
    "mask",
    "remove_member",
    "remove_scope",
    "revoke",
    "role_changed",
    "role_state",
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
    "validate_column_rule",
    "validate_department_parent",
    "validate_operations",
    "validate_parents",
    "validate_scope",
    "version",
]
