"""The registry of audit action names (AD-1): every action is declared once, by the app that
records it, with its target type and a readable description.

`audit.services.record()` refuses a name nobody declared, so a caller cannot invent one; the
audit admin, the history pages and the exports show the description instead of the raw name.

A name is lowercase and dot-separated. A family of names that differ in one part (one action
per entity or per definition kind) is declared once as a pattern with ``*`` for that part,
e.g. ``data.*.create``; its description and target type receive the part as ``%(name)s`` and
``*``. Each app declares its actions in `<app>/audit_actions.py` and registers them from its
`AppConfig.ready()` with `audit_action_registry.register_all()`.
"""

from __future__ import annotations

import re
from functools import lru_cache

from django.utils.functional import Promise

from lowcode.registry import Instance, NotRegistered, Registry

_NAME = re.compile(r"[a-z0-9_]+(\.(\*|[a-z0-9_]+))+")
_PART = "[a-z0-9_]+"


class UndeclaredAuditAction(NotRegistered):
    """An audit event names an action that no app declared."""


class AuditAction(Instance):
    """One declared action, or one family of actions when its `type` has a ``*`` part."""

    def __init__(self, type: str, description: str | Promise, target_type: str = ""):
        if not _NAME.fullmatch(type) or type.count("*") > 1:
            raise ValueError(f"{type!r} is not an audit action name: lowercase dot-separated parts, at most one '*'.")
        self.type = type
        self.description = description
        self.target_type = target_type
        self._pattern = re.compile(re.escape(type).replace(r"\*", f"({_PART})")) if "*" in type else None

    def __repr__(self) -> str:
        return f"AuditAction({self.type!r})"

    def __str__(self) -> str:
        return self.type

    @property
    def is_pattern(self) -> bool:
        return self._pattern is not None

    def of(self, name: str) -> str:
        """The action name of this family for `name` (an entity key, a definition kind...)."""
        if self._pattern is None:
            raise TypeError(f"{self.type!r} is one action, not a family of actions.")
        action = self.type.replace("*", name)
        if not self._pattern.fullmatch(action):
            raise ValueError(f"{name!r} cannot stand in the audit action {self.type!r}.")
        return action

    def part(self, action: str) -> str | None:
        """The part that `action` puts in place of ``*`` ("" for a plain action); None if it is not one of ours."""
        if self._pattern is None:
            return "" if action == self.type else None
        match = self._pattern.fullmatch(action)
        return match.group(1) if match else None

    def describe(self, action: str) -> str:
        """The readable description of `action`, one of this declaration's names, in the active language."""
        return str(self.description) % {"name": self.part(action) or ""} if self.is_pattern else str(self.description)


class AuditActionRegistry(Registry[AuditAction]):
    def register(self, instance: AuditAction) -> AuditAction:
        _declaration.cache_clear()
        return super().register(instance)

    def unregister(self, type_name: str) -> None:
        _declaration.cache_clear()
        super().unregister(type_name)

    def register_all(self, actions) -> None:
        for action in actions:
            self.register(action)

    def declaration(self, action: str) -> AuditAction:
        """The declaration of the action name `action`.

        :raises UndeclaredAuditAction: no app declared it.
        """
        declared = _declaration(action)
        if declared is None:
            raise UndeclaredAuditAction(
                f"The audit action {action!r} is not declared. Declare it in the recording app's audit_actions.py "
                f"and register it from its AppConfig.ready() (audit/actions.py).")
        return declared

    def describe(self, action: str) -> str:
        """The readable description of a stored action name; the name itself if it is no longer declared."""
        declared = _declaration(action)
        return declared.describe(action) if declared is not None else action


audit_action_registry = AuditActionRegistry("audit action")


@lru_cache(maxsize=4096)
def _declaration(action: str) -> AuditAction | None:
    """Exact names first, then the families (few); cached, since every event looks its name up."""
    if audit_action_registry.is_registered(action):
        declared = audit_action_registry.get(action)
        if not declared.is_pattern:
            return declared
    for declared in audit_action_registry.get_all():
        if declared.is_pattern and declared.part(action) is not None:
            return declared
    return None


def name_of(action: AuditAction | str) -> str:
    """The stored name of `action`, a declaration of one action or a name (of a family member)."""
    if isinstance(action, AuditAction):
        if action.is_pattern:
            raise TypeError(f"{action.type!r} is a family of actions: record `{action.type}`.of(<name>).")
        return action.type
    return action
