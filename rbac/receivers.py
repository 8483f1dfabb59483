"""Signal receivers: thin calls into rbac.services."""

from __future__ import annotations

from django.db import connections


def complete_builtin_roles(sender, using="default", **kwargs) -> None:
    """After a tenant schema's migrations: built-in roles get the permissions created by then.

    The data migration creates the roles; model permissions only exist after post_migrate's
    create_permissions, which ran for every app before this one (rbac is installed last).
    """
    from django_tenants.utils import get_public_schema_name

    from rbac import services

    connection = connections[using]
    schema_name = getattr(connection, "schema_name", None)
    if schema_name is None or schema_name == get_public_schema_name():
        return
    if "rbac_role" not in connection.introspection.table_names():
        return
    services.ensure_builtin_roles(ensure_entities=False)


def django_grants_changed(sender, action: str, **kwargs) -> None:
    """A user's permissions or groups, or a group's permissions, changed outside rbac.services
    (the Django admin's user and group pages): cached effective permissions are stale."""
    if action in ("post_add", "post_remove", "post_clear"):
        from rbac import services

        services.bump()
