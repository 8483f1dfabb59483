"""Sign-in events (AD-1): logins, logouts and failed logins of the tenant's users; sealing trails
after migrations and forgetting a deleted tenant's checkpoints (AD-2)."""

from functools import partial

from django.contrib.auth import get_user_model
from django.db import transaction
from django_tenants.utils import schema_context

from audit import audit_actions, services


def _username(credentials: dict) -> str:
    field = get_user_model().USERNAME_FIELD
    value = credentials.get(field, credentials.get("username", ""))
    return str(value)[:150] if value is not None else ""


def user_logged_in(sender, request, user, **kwargs):
    if services.is_tenant_schema():
        services.record(audit_actions.LOGIN, target=user, actor=user, request=request)


def user_logged_out(sender, request, user, **kwargs):
    if user is not None and services.is_tenant_schema():
        services.record(audit_actions.LOGOUT, target=user, actor=user, request=request)


def user_login_failed(sender, credentials, request=None, **kwargs):
    """Record the attempted username, never the password (Django has masked it anyway)."""
    if services.is_tenant_schema():
        username = _username(credentials)
        services.record(audit_actions.LOGIN_FAILED, result="denied", target_type=get_user_model()._meta.label_lower,
                        target_repr=username, data={"username": username}, request=request)


def seal_trail(sender, **kwargs):
    """After a schema's migrations (post_migrate of the audit app): hand a tenant's trail to the owner."""
    if services.is_tenant_schema():
        services.seal_trail()


def forget_checkpoints(sender, instance, **kwargs):
    """A deleted tenant's checkpoints would make a later tenant of the same schema name look tampered."""
    transaction.on_commit(partial(_forget_checkpoints_of, instance.schema_name))


def _forget_checkpoints_of(schema_name: str) -> None:
    with schema_context(schema_name):
        services.forget_checkpoints()
