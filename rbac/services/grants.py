"""Object grants (RB-3): one record shared with a user or a role's holders, through django-guardian."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from audit import services as audit
from rbac import audit_actions as rbac_actions
from rbac.registries import ENTITY_PREFIX, entity_key_of, entity_operation
from rbac.services.effective_cache import bump
from rbac.services.groups import ensure_entity_rows, sync


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
    _change_grants(record, user=user, role=role, actions=actions, actor=actor, give=True)


def unshare(record, *, user=None, role=None, actions: Iterable[str] = ("view",), actor=None) -> None:
    """Take back grants made by `share()`."""
    _change_grants(record, user=user, role=role, actions=actions, actor=actor, give=False)


def _change_grants(record, *, user, role, actions: Iterable[str], actor, give: bool) -> None:
    from guardian.shortcuts import assign_perm, remove_perm

    entity_key = entity_key_of(type(record))
    actions = list(actions)
    for action in actions:
        entity_operation(entity_key, action)  # Validates the action.
    with transaction.atomic():
        if give:
            ensure_entity_rows({entity_key: type(record)})
        identity = _grant_identity(user, role)
        for action in actions:
            (assign_perm if give else remove_perm)(f"{ENTITY_PREFIX}.{action}_{record._meta.model_name}", identity, record)
        bump()
        audit.record(rbac_actions.GRANT_SHARE if give else rbac_actions.GRANT_UNSHARE, target=record, actor=actor,
                     data={"user": user.get_username() if user is not None else None,
                           "role": role.key if role else None, "actions": actions})
