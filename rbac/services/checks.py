"""Checks and filters, in pairs from the same source: the user's effective permissions (RB-2..RB-5).

- `check(user, operation, obj=None)`: may the user do `operation` ("data.expense.view",
  "designer.access"...), on this record if given?
- `scope_queryset(user, queryset, action)`: the records of a runtime model the user may act on.
- `field_rules(user, entity_key)`: the hidden, masked and read-only fields of an entity.

A scope's SQL filter and its in-memory test are its kind's (`rbac.scopes`).
"""

from __future__ import annotations

from django.db.models import Q

from lowcode.admin_site import missing_permission
from rbac.registries import (
    ENTITY_PREFIX,
    EntityOperation,
    entity_key_of,
    entity_records,
    operation_label,
    validate_operation,
)
from rbac.scopes import NOTHING, scope_action, scope_kind
from rbac.services.compute import EMPTY, Effective
from rbac.services.effective_cache import effective


def is_active(user) -> bool:
    return user is not None and getattr(user, "is_authenticated", False) and getattr(user, "is_active", False)


def _grants_q(eff: Effective, entity_key: str, action: str) -> Q:
    """Records granted to the user or to one of its groups through django-guardian (RB-3).

    The grants were loaded with the effective permissions; none is the common case.
    """
    ids = sorted(pk for entity, granted, pk in eff.grants if entity == entity_key and granted == action)
    return Q(pk__in=ids) if ids else NOTHING


def _scope_filter(user, eff: Effective, entity_key: str, action: str) -> Q | None:
    """The OR of the user's scopes; None means no restriction (an unconditional "all")."""
    specs = eff.scopes.get(entity_key, {}).get(scope_action(action), ())
    if any(spec.unconditional for spec in specs):
        return None
    combined = NOTHING
    for spec in specs:
        combined |= scope_kind(spec.kind).q(spec, user, eff)
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
    entity_key = entity_key_of(queryset.model)
    scope_action(action)
    if user.is_superuser:
        return queryset
    eff = effective(user, request)
    if eff.is_tenant_admin:
        return queryset
    memo_key = (entity_key, scope_action(action))
    if memo_key not in eff.filters:  # Built once per version of the permissions.
        scoped = _scope_filter(user, eff, entity_key, action)
        eff.filters[memo_key] = None if scoped is None else scoped | _grants_q(eff, entity_key, scope_action(action))
    scoped = eff.filters[memo_key]
    return queryset if scoped is None else queryset.filter(scoped)


def _in_scope(user, eff: Effective, operation: EntityOperation, obj) -> bool:
    """Whether the record is inside the user's scope for the action, decided without a query."""
    specs = eff.scopes.get(operation.entity_key, {}).get(scope_action(operation.action), ())
    if not specs:
        return False
    resource_type = entity_records()
    return any(spec.unconditional or scope_kind(spec.kind).holds(spec, user, eff, obj, resource_type)
               for spec in specs)


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
    if entity_key_of(type(obj)) != parsed.entity_key:
        raise ValueError(f"{operation} does not apply to a {type(obj)._meta.model_name} record.")
    if parsed.permission in eff.perms and _in_scope(user, eff, parsed, obj):
        return True
    return (parsed.entity_key, parsed.action, obj.pk) in eff.grants


def denial(operation: str) -> str:
    """Why `check` refused `operation`, in words: "You need the permission 'View expenses' (data.expense.view)."."""
    return missing_permission(operation_label(operation), operation)


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
