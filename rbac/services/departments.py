"""Departments (RB-6): a tree whose members and managers get its roles."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from rbac import audit_actions as rbac_actions
from rbac.models import Department, Role
from rbac.services.groups import after_change


def department_state(department: Department) -> dict:
    """The audited state of a department (admin takes it before a form writes)."""
    User = get_user_model()
    return {
        "name": department.name,
        "parent": department.parent.name if department.parent_id else None,
        "managers": sorted(department.managers.values_list(User.USERNAME_FIELD, flat=True)),
        "members": sorted(department.members.values_list(User.USERNAME_FIELD, flat=True)),
        "roles": sorted(department.roles.values_list("key", flat=True)),
    }


def create_department(name: str, *, parent: Department | None = None, managers: Iterable = (),
                      members: Iterable = (), roles: Iterable[Role] = (), actor=None) -> Department:
    with transaction.atomic():
        department = Department(name=name, parent=parent)
        department.full_clean()
        department.save()
        department.managers.set(list(managers))
        department.members.set(list(members))
        department.roles.set(list(roles))
        after_change(rbac_actions.DEPARTMENT_CREATE, department, None, department_state(department), actor)
    return department


def update_department(department: Department, *, actor=None, **changes) -> Department:
    """Change a department's name, parent, managers, members or roles (full lists)."""
    allowed = {"name", "parent", "managers", "members", "roles"}
    unknown = set(changes) - allowed
    if unknown:
        raise TypeError(f"update_department() got unknown fields: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        before = department_state(department)
        for name in ("name", "parent"):
            if name in changes:
                setattr(department, name, changes[name])
        department.full_clean()
        department.save()
        for name in ("managers", "members", "roles"):
            if name in changes:
                getattr(department, name).set(list(changes[name]))
        after_change(rbac_actions.DEPARTMENT_UPDATE, department, before, department_state(department), actor)
    return department


def add_member(department: Department, user, *, manager: bool = False, actor=None) -> None:
    """Make the user a member (or a manager) of the department."""
    with transaction.atomic():
        before = department_state(department)
        (department.managers if manager else department.members).add(user)
        after_change(rbac_actions.DEPARTMENT_ADD_MEMBER, department, before, department_state(department), actor)


def remove_member(department: Department, user, *, actor=None) -> None:
    """Remove the user from the department's members and managers."""
    with transaction.atomic():
        before = department_state(department)
        department.managers.remove(user)
        department.members.remove(user)
        after_change(rbac_actions.DEPARTMENT_REMOVE_MEMBER, department, before, department_state(department), actor)


def delete_department(department: Department, *, actor=None) -> None:
    if department.children.exists():
        raise ValidationError(_("Department %(name)s has departments below it; move or delete them first.")
                              % {"name": department.name})
    with transaction.atomic():
        before = department_state(department)
        target_id, target_repr = str(department.pk), str(department)
        department.delete()
        after_change(rbac_actions.DEPARTMENT_DELETE, None, before, None, actor, target_type="rbac.department",
                      target_id=target_id, target_repr=target_repr)


def department_changed(department: Department, *, before: dict | None = None, created: bool = False,
                       actor=None) -> None:
    """Finish a change written by a form (admin): sync, bump and audit."""
    with transaction.atomic():
        after_change(rbac_actions.DEPARTMENT_CREATE if created else rbac_actions.DEPARTMENT_UPDATE, department,
                      None if created else before, department_state(department), actor)
