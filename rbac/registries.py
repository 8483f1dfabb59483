"""What rbac guards, registered by the apps that own it: operations (RB-2) and resource types.

Entity actions are not registered one by one: `entity_operation("expense", "view")` builds
`"data.expense.view"`, which maps to the Django permission `data.view_expense`. Every other
operation ("designer.access", "pages.page.view"...) is an `OperationType` registered in
`operation_type_registry` from an app's `ready()`; a role stores their `type` strings.

The records that data scopes, column rules and object grants apply to are a `ResourceType`
registered in `resource_type_registry` by the app that owns them (entity records, by the entity app
as type "data"). rbac asks it everything it needs to know of them, so it imports no domain app.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from lowcode.admin_site import action_label
from lowcode.registry import Instance, NotRegistered, Registry

ENTITY_PREFIX = "data"
#: Entity actions, in the order admin pages show them.
ENTITY_ACTIONS = ("view", "add", "change", "delete", "export", "import")
#: The actions of Django's default model permissions.
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
    """The product area ("designer", "pages", "workflows"...)."""
    app_label = ""
    """The label of the app that does the operation (default: the group): roles offer it only while that app is
    installed, and admin lists it under the app's name."""

    def __init__(self, type: str = "", label: str = "", group: str = "", app_label: str = ""):
        if type:
            self.type = type
        if label:
            self.label = label
        self.group = group or self.group or self.type.split(".", 1)[0]
        self.app_label = app_label or self.app_label or self.group

    @property
    def installed(self) -> bool:
        return self.app_label in apps.app_configs

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


def operation_label(operation: str) -> str:
    """What an operation allows, in words: "View expenses" for "data.expense.view", a registered one's label."""
    parsed = parse_entity_operation(operation)
    if parsed is None:
        return str(operation_type_registry.get(operation).label) if operation_type_registry.is_registered(
            operation) else operation
    try:
        things = entity_records().get_model(parsed.entity_key)._meta.verbose_name_plural
    except LookupError:
        things = parsed.entity_key
    return action_label(parsed.action, things)


def validate_operation(operation: str) -> EntityOperation | None:
    """Return the parsed entity action, None for a registered operation, or raise UnknownOperation."""
    parsed = parse_entity_operation(operation)
    if parsed is None and not operation_type_registry.is_registered(operation):
        raise UnknownOperation(gettext("Unknown operation %(operation)r.") % {"operation": operation})
    return parsed


#: The operations rbac itself knows; other apps may register more from their `ready()`.
BUILTIN_OPERATIONS = [
    OperationType("designer.access", _("Design entities, forms, pages and workflows"), app_label="metadata"),
    OperationType("pages.page.view", _("View pages")),
    OperationType("pages.menu.view", _("See menu entries")),
    OperationType("pages.button.use", _("Use page buttons and actions")),
    OperationType("workflows.process.start", _("Start workflow processes")),
    OperationType("workflows.task.act", _("Act on workflow tasks")),
    OperationType("workflows.process.monitor", _("Monitor workflow processes: statistics, cancel, retry, move")),
    OperationType("plugins.manage", _("Manage plugins")),
    OperationType("api.access", _("Use the REST API"), app_label="apikeys"),
    OperationType("audit.view", _("View the audit trail")),
    OperationType("rbac.manage", _("Manage roles, departments and permissions")),
]


def register_builtin_operations() -> None:
    for operation in BUILTIN_OPERATIONS:
        if not operation_type_registry.is_registered(operation.type):
            operation_type_registry.register(operation)


# --- Resource types ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceField:
    """A field of a resource as rbac sees it: column rules name it, data scopes may own records by it."""

    key: str
    label: str = ""
    owner: bool = False
    """A user field: it can make a record someone's (data scopes may name it as the owner)."""
    reads: frozenset[str] | None = frozenset()
    """The fields a computed field (a formula) is computed from; None if that is unknown (it cannot run)."""


@dataclass(frozen=True)
class Resource:
    """One published resource, e.g. the entity "expense": its key, label and fields."""

    key: str
    label: str
    fields: tuple[ResourceField, ...] = ()

    def field_keys(self) -> list[str]:
        return [field.key for field in self.fields]

    def owner_field_keys(self) -> list[str]:
        return [field.key for field in self.fields if field.owner]


class ResourceType(Instance):
    """Records that roles guard one by one (data scopes, column rules, object grants).

    `type` is the first part of their operations ("data" in "data.expense.view") and the app
    label of their runtime models and permissions. The owning app registers one from its
    `ready()` and answers what rbac asks of its records below.
    """

    label = ""
    design_app_labels: tuple[str, ...] = ()
    """Apps whose models builders edit to design these resources: the built-in builder role gets their permissions."""
    system_owner_fields: tuple[str, ...] = ()
    """User columns every record has (e.g. created_by): data scopes may name them as the owner."""

    def published(self) -> dict[str, Resource]:
        """The current tenant's published resources by key; {} outside a tenant."""
        raise NotImplementedError

    def get_model(self, key: str) -> type[models.Model]:
        """The runtime model of resource `key`; LookupError if none is published."""
        raise NotImplementedError

    def models(self) -> dict[str, type[models.Model]]:
        """Every published resource's runtime model by key (to create their permissions); {} outside a tenant."""
        raise NotImplementedError

    def key_of(self, model: type[models.Model]) -> str:
        """The resource key a runtime model serves."""
        raise NotImplementedError

    def describe(self, model: type[models.Model]) -> Resource:
        """The resource a runtime model serves, with its fields."""
        raise NotImplementedError

    def records(self, model: type[models.Model]) -> models.QuerySet:
        """Every record of the model, soft-deleted ones too, with computed fields annotated."""
        raise NotImplementedError

    def record_values(self, record: models.Model) -> dict:
        """{field key: value} of a record, computed fields included (what scope expressions read)."""
        raise NotImplementedError

    def expression_fields(self, key: str) -> dict:
        """The type of each field of resource `key` as scope expressions read it (SQL, computed fields too),
        or the reason it cannot be read (see `lowcode.expressions`)."""
        raise NotImplementedError

    def __repr__(self):
        return f"<ResourceType {self.type}>"


resource_type_registry: Registry[ResourceType] = Registry("rbac resource")


def entity_records() -> ResourceType:
    """The resource type of entity records ("data.<entity>.<action>" operations)."""
    return resource_type_registry.get(ENTITY_PREFIX)


def entity_key_of(model) -> str:
    """The entity key of a runtime entity model; ValueError for any other model."""
    if model._meta.app_label != ENTITY_PREFIX:
        raise ValueError(f"{model._meta.label} is not a runtime entity model.")
    return entity_records().key_of(model)


def design_app_labels() -> list[str]:
    """The apps where any resource type is designed (the built-in builder role's permissions)."""
    return sorted({label for resource_type in resource_type_registry.get_all()
                   for label in resource_type.design_app_labels})
