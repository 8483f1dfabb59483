"""Operations a role can grant (RB-2), as registered `OperationType`s.

Entity actions are not registered one by one: `entity_operation("expense", "view")` builds
`"data.expense.view"`, which maps to the Django permission `data.view_expense`. Every other
operation ("designer.access", "pages.page.view"...) is an `OperationType` registered in
`operation_type_registry` from an app's `ready()`; a role stores their `type` strings.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from lowcode.registry import Instance, NotRegistered, Registry

ENTITY_PREFIX = "data"
#: Entity actions, in the order admin pages show them.
ENTITY_ACTIONS = ("view", "add", "change", "delete", "export", "import")
#: Actions whose Django permission is created on publish by dynamic_models (the defaults).
DEFAULT_ENTITY_ACTIONS = ("view", "add", "change", "delete")
#: Actions rbac adds to every runtime model (`ensure_entity_permissions`).
EXTRA_ENTITY_ACTIONS = ("export", "import")


class UnknownOperation(NotRegistered, ValueError):
    """An operation string that is neither registered nor an entity action."""


class OperationType(Instance):
    """A permission-checked action outside entity records, e.g. "designer.access"."""

    label = ""
    """A short, translatable name shown in admin."""
    group = ""
    """The product area ("designer", "pages", "workflows"...): admin groups choices by it."""

    def __init__(self, type: str = "", label: str = "", group: str = ""):
        if type:
            self.type = type
        if label:
            self.label = label
        self.group = group or self.group or self.type.split(".", 1)[0]

    def __repr__(self):
        return f"<OperationType {self.type}>"


operation_type_registry: Registry[OperationType] = Registry("rbac operation")


@dataclass(frozen=True)
class EntityOperation:
    """A parsed "data.<entity>.<action>" operation."""

    entity_key: str
    action: str

    @property
    def permission(self) -> str:
        """The Django permission ("app.codename") that grants it."""
        return f"{ENTITY_PREFIX}.{self.action}_{self.entity_key}"

    @property
    def code(self) -> str:
        return entity_operation(self.entity_key, self.action)


def entity_operation(entity_key: str, action: str) -> str:
    """Return the operation code of an entity action: ("expense", "view") -> "data.expense.view"."""
    if action not in ENTITY_ACTIONS:
        raise UnknownOperation(gettext("Unknown entity action %(action)r; use one of %(actions)s.")
                               % {"action": action, "actions": ", ".join(ENTITY_ACTIONS)})
    return f"{ENTITY_PREFIX}.{entity_key}.{action}"


def parse_entity_operation(operation: str) -> EntityOperation | None:
    """Return the entity action `operation` names, or None if it is not "data.<entity>.<action>"."""
    parts = operation.split(".")
    if len(parts) == 3 and parts[0] == ENTITY_PREFIX and parts[1] and parts[2] in ENTITY_ACTIONS:
        return EntityOperation(parts[1], parts[2])
    return None


def validate_operation(operation: str) -> EntityOperation | None:
    """Return the parsed entity action, None for a registered operation, or raise UnknownOperation."""
    parsed = parse_entity_operation(operation)
    if parsed is None and not operation_type_registry.is_registered(operation):
        raise UnknownOperation(gettext("Unknown operation %(operation)r.") % {"operation": operation})
    return parsed


#: The operations rbac itself knows; other apps may register more from their `ready()`.
BUILTIN_OPERATIONS = [
    OperationType("designer.access", _("Design entities, forms, pages and workflows")),
    OperationType("pages.page.view", _("View pages")),
    OperationType("pages.menu.view", _("See menu entries")),
    OperationType("pages.button.use", _("Use page buttons and actions")),
    OperationType("workflows.process.start", _("Start workflow processes")),
    OperationType("workflows.task.act", _("Act on workflow tasks")),
    OperationType("plugins.manage", _("Manage plugins")),
    OperationType("api.access", _("Use the REST API")),
    OperationType("audit.view", _("View the audit trail")),
    OperationType("rbac.manage", _("Manage roles, departments and permissions")),
]


def register_builtin_operations() -> None:
    for operation in BUILTIN_OPERATIONS:
        if not operation_type_registry.is_registered(operation.type):
            operation_type_registry.register(operation)
