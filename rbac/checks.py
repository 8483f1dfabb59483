"""System checks of the rbac app (lowcode.rbac.*)."""

from __future__ import annotations

from django.core.checks import Error, Warning


def check_builtin_roles(app_configs=None, **kwargs) -> list:
    """Built-in roles name registered operations only; every operation has a label."""
    from rbac.registries import operation_type_registry
    from rbac.services.roles import BUILTIN_ROLES

    errors = []
    for key, (_name, operations, _apps) in BUILTIN_ROLES.items():
        if operations == "*":
            continue
        for operation in operations:
            if not operation_type_registry.is_registered(operation):
                errors.append(Error(f"Built-in role {key!r} names the unregistered operation {operation!r}.",
                                    hint="Register it in an AppConfig.ready() (rbac.registries).",
                                    id="lowcode.rbac.E001"))
    for operation in operation_type_registry.get_all():
        if not operation.label:
            errors.append(Warning(f"Operation {operation.type!r} has no label; admin shows its code.",
                                  id="lowcode.rbac.W001"))
    return errors
