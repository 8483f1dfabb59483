"""Django groups mirror the roles (RB-1), entity permissions exist, and every change ends the same way.

`after_change()` is what follows every change a service makes: groups in sync, the permission
version bumped, the audit event written.
"""

from __future__ import annotations

from collections import defaultdict

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q

from audit import services as audit
from audit.actions import AuditAction
from rbac.models import Department, Role
from rbac.registries import DEFAULT_ENTITY_ACTIONS, ENTITY_PREFIX, EXTRA_ENTITY_ACTIONS, entity_key_of, entity_records
from rbac.services.compute import closure
from rbac.services.effective_cache import bump

GROUP_PREFIX = "role:"


def ensure_entity_rows(models_by_key: dict) -> int:
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
    entity_key_of(model)
    if ensure_entity_rows({model._meta.model_name: model}):
        sync(ensure_entities=False)
        bump()


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
        ensure_entity_rows(entity_records().models())
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

    _keys, parents = Role.graph()
    closures = {role.pk: closure(role.pk, parents) for role in roles}
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


def _changes(before: dict | None, after: dict | None) -> tuple[dict | None, dict | None]:
    if before is None or after is None:
        return before, after
    keys = [key for key in after if before.get(key) != after.get(key)]
    return {key: before.get(key) for key in keys}, {key: after[key] for key in keys}


def after_change(action: AuditAction, target, before: dict | None, after: dict | None, actor=None, **kwargs) -> None:
    """What follows every change: groups in sync, caches invalidated, the audit event."""
    sync(ensure_entities=False)
    bump()
    before, after = _changes(before, after)
    audit.record(action, target=target, before=before, after=after, actor=actor, **kwargs)
