"""Roles (RB-1, RB-2): create, change, inherit, assign; their data scopes and column rules; the built-in roles."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from rbac import audit_actions as rbac_actions
from rbac import validation
from rbac.models import ColumnRule, DataScope, Role
from rbac.registries import (
    ENTITY_ACTIONS,
    design_app_labels,
    entity_operation,
    entity_records,
    operation_type_registry,
    parse_entity_operation,
)
from rbac.services.effective_cache import bump
from rbac.services.groups import after_change, ensure_entity_rows, sync

#: The builder's permission apps: those where resource types are designed (`ResourceType.design_app_labels`).
DESIGN_APPS = "design"
#: The built-in roles: key -> (name, operations, permission app labels); "*" means all.
BUILTIN_ROLES = {
    Role.TENANT_ADMIN: ("Tenant admin", "*", "*"),
    Role.BUILDER: ("Builder", ["designer.access"], DESIGN_APPS),
    Role.MEMBER: ("Member", ["api.access"], []),
    Role.GUEST: ("Guest", [], []),
}


def role_state(role: Role) -> dict:
    """The audited state of a role (admin takes it before a form writes)."""
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


def _resolve_permission(item) -> Permission:
    if isinstance(item, Permission):
        return item
    parsed = parse_entity_operation(item)
    code = parsed.permission if parsed else item
    app_label, _sep, codename = code.partition(".")
    permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
    if permission is None and parsed is not None:
        ensure_entity_rows({parsed.entity_key: _runtime_model(parsed.entity_key)})
        permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
    if permission is None:
        raise ValidationError(_("Unknown permission %(permission)s.") % {"permission": item})
    return permission


def _runtime_model(entity_key: str):
    try:
        return entity_records().get_model(entity_key)
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
                    operations=validation.validate_operations(operations))
        role.full_clean()
        role.save()
        parents = list(parents)
        validation.validate_parents(role, parents)
        role.parents.set(parents)
        role.permissions.set(permissions)
        after_change(rbac_actions.ROLE_CREATE, role, None, role_state(role), actor)
    return role


def update_role(role: Role, *, actor=None, **changes) -> Role:
    """Change a role's key, name, description, operations, parents or permissions (full lists)."""
    allowed = {"key", "name", "description", "operations", "parents", "permissions"}
    unknown = set(changes) - allowed
    if unknown:
        raise TypeError(f"update_role() got unknown fields: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        before = role_state(role)
        if role.builtin and "key" in changes and changes["key"] != role.key:
            raise ValidationError({"key": _("The key of a built-in role cannot change.")})
        for name in ("key", "name", "description"):
            if name in changes:
                setattr(role, name, changes[name])
        if "operations" in changes:
            role.operations = validation.validate_operations(changes["operations"])
        role.full_clean()
        role.save()
        if "parents" in changes:
            parents = list(changes["parents"])
            validation.validate_parents(role, parents)
            role.parents.set(parents)
        if "permissions" in changes:
            role.permissions.set([_resolve_permission(p) for p in changes["permissions"]])
        after_change(rbac_actions.ROLE_UPDATE, role, before, role_state(role), actor)
    return role


def set_parents(role: Role, parents: Iterable[Role], *, actor=None) -> Role:
    """Replace the role's parents; a cycle is refused with a ValidationError naming it."""
    return update_role(role, parents=list(parents), actor=actor)


def grant(role: Role, *items, actor=None) -> Role:
    """Add operations, entity actions ("data.expense.export") or permissions to a role."""
    with transaction.atomic():
        before = role_state(role)
        permissions, operations = _split_grants(items)
        role.permissions.add(*permissions)
        if operations:
            role.operations = validation.validate_operations([*(role.operations or []), *operations])
            role.save(update_fields=["operations", "updated_at"])
        after_change(rbac_actions.ROLE_GRANT, role, before, role_state(role), actor)
    return role


def revoke(role: Role, *items, actor=None) -> Role:
    """Remove operations, entity actions or permissions from a role."""
    with transaction.atomic():
        before = role_state(role)
        permissions, operations = _split_grants(items)
        role.permissions.remove(*permissions)
        if operations:
            role.operations = [o for o in role.operations or [] if o not in operations]
            role.save(update_fields=["operations", "updated_at"])
        after_change(rbac_actions.ROLE_REVOKE, role, before, role_state(role), actor)
    return role


def delete_role(role: Role, *, actor=None) -> None:
    if role.builtin:
        raise ValidationError(_("The built-in role %(role)s cannot be deleted.") % {"role": role.key})
    with transaction.atomic():
        before = role_state(role)
        group, target_id, target_repr = role.group, str(role.pk), str(role)
        role.delete()
        if group is not None:
            group.delete()
        after_change(rbac_actions.ROLE_DELETE, None, before, None, actor, target_type="rbac.role",
                      target_id=target_id, target_repr=target_repr)


def role_changed(role: Role, *, before: dict | None = None, created: bool = False, actor=None) -> None:
    """Finish a change written by a form (admin): check inheritance, sync, bump and audit."""
    with transaction.atomic():
        validation.validate_parents(role, list(role.parents.all()))
        after_change(rbac_actions.ROLE_CREATE if created else rbac_actions.ROLE_UPDATE, role, None if created else before,
                      role_state(role), actor)


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
        after_change(rbac_actions.MEMBERSHIP_ASSIGN if assign else rbac_actions.MEMBERSHIP_UNASSIGN, user, before, held(), actor,
                      data={"role": role.key})


# --- Changes: scopes and column rules ----------------------------------------------------------


def add_scope(role: Role, entity_key: str, kind: str, *, action: str = "view", owner_field: str = "created_by",
              expression: str = "", actor=None) -> DataScope:
    """Add a data scope to a role (validated: owner field, expression compiled)."""
    with transaction.atomic():
        before = role_state(role)
        scope = DataScope(role=role, entity_key=entity_key, kind=kind, action=action, owner_field=owner_field,
                          expression=expression)
        scope.full_clean()
        scope.save()
        after_change(rbac_actions.SCOPE_CREATE, role, before, role_state(role), actor)
    return scope


def remove_scope(scope: DataScope, *, actor=None) -> None:
    with transaction.atomic():
        role = scope.role
        before = role_state(role)
        scope.delete()
        after_change(rbac_actions.SCOPE_DELETE, role, before, role_state(role), actor)


def set_column_rule(role: Role, entity_key: str, field_key: str, rule: str | None, *, actor=None) -> ColumnRule | None:
    """Set (or with `rule=None` remove) a role's rule for a field."""
    with transaction.atomic():
        before = role_state(role)
        existing = ColumnRule.objects.filter(role=role, entity_key=entity_key, field_key=field_key).first()
        if rule is None:
            if existing is not None:
                existing.delete()
            result = None
        else:
            result = existing or ColumnRule(role=role, entity_key=entity_key, field_key=field_key)
            result.rule = rule
            validation.validate_column_rule(result)
            result.save()
        after_change(rbac_actions.COLUMN_RULE_SET, role, before, role_state(role), actor)
    return result


def ensure_builtin_roles(*, ensure_entities: bool = True) -> list[Role]:
    """Create the built-in roles that are missing, with their defaults; then sync the groups.

    tenant_admin: every registered operation (and, through `check`, everything in the
    tenant; its group gets every permission); builder: designer.access and the permissions
    of the models of the apps where resources are designed (metadata and the entity app's);
    member: api.access; guest: nothing. Roles that exist keep what admins made of them (a
    tenant admin may take a default away for good).
    """
    roles = []
    with transaction.atomic():
        for key, (name, operations, app_labels) in BUILTIN_ROLES.items():
            role = Role.objects.filter(key=key).first()
            if role is None:
                role = Role.objects.create(
                    key=key, name=name, builtin=True,
                    operations=operation_type_registry.get_types() if operations == "*" else list(operations))
                if app_labels == DESIGN_APPS:
                    app_labels = design_app_labels()
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
