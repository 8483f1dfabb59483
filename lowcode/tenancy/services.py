"""Tenant lifecycle: create, suspend, resume, export, delete (PF-3).

Admin actions, `manage.py lowcode tenant ...` and `lowcode up` all call these functions.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
from datetime import datetime
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_tenants.utils import get_public_schema_name, schema_context, schema_exists, tenant_context

from lowcode import embedded
from lowcode.tenancy.models import Domain, Tenant

logger = logging.getLogger(__name__)

SCHEMA_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,47}$")
RESERVED_SCHEMA_NAMES = {"public", "information_schema", "default", "template0", "template1"}
# Where a deleted tenant's data is exported first (admin, and the CLI's default).
DEFAULT_EXPORT_DIR = embedded.HOME / "exports"


class TenancyError(Exception):
    """A tenant operation was refused; the message says why."""


def _in_public_schema(func):
    """Run `func` on the public schema: django-tenants saves tenant rows only from there."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with schema_context(get_public_schema_name()):
            return func(*args, **kwargs)

    return wrapper


def validate_schema_name(schema_name: str) -> None:
    """Raise TenancyError unless `schema_name` is a safe, free PostgreSQL schema name."""
    if not SCHEMA_NAME_RE.match(schema_name):
        raise TenancyError(_(
            "Schema name %(name)r is invalid: use 2-48 lowercase letters, digits or "
            "underscores, starting with a letter."
        ) % {"name": schema_name})
    if schema_name in RESERVED_SCHEMA_NAMES or schema_name.startswith("pg_"):
        raise TenancyError(_("Schema name %(name)r is reserved.") % {"name": schema_name})
    if Tenant.objects.filter(schema_name=schema_name).exists() or schema_exists(schema_name):
        raise TenancyError(_("Schema %(name)r already exists.") % {"name": schema_name})


def get_tenant(schema_name: str) -> Tenant:
    try:
        return Tenant.objects.get(schema_name=schema_name)
    except Tenant.DoesNotExist:
        raise TenancyError(_("No tenant with schema %(name)r.") % {"name": schema_name}) from None


@_in_public_schema
def create_tenant(*, schema_name: str, name: str, domain: str,
                  plan: str = Tenant.Plan.FREE, **quotas: int | None) -> Tenant:
    """Create a tenant, its schema (with every tenant app migrated) and its primary domain."""
    validate_schema_name(schema_name)
    domain = domain.lower().strip()
    if Domain.objects.filter(domain=domain).exists():
        raise TenancyError(_("Domain %(domain)r is already in use.") % {"domain": domain})
    if plan not in Tenant.Plan.values:
        raise TenancyError(_("Unknown plan %(plan)r; choose one of: %(plans)s.")
                           % {"plan": plan, "plans": ", ".join(Tenant.Plan.values)})
    # Tenant.save() creates and migrates the schema; PostgreSQL's transactional DDL undoes
    # it together with the rows if anything fails.
    with transaction.atomic():
        tenant = Tenant(schema_name=schema_name, name=name, plan=plan, **quotas)
        tenant.save(verbosity=0)
        Domain.objects.create(domain=domain, tenant=tenant, is_primary=True)
    logger.info("tenant created: %s (%s)", schema_name, domain)
    return tenant


@_in_public_schema
def ensure_public_tenant(domain: str | None = None) -> Tenant:
    """Return the public (platform) tenant, creating it and its domain on first use."""
    domain = domain or settings.PUBLIC_DOMAIN
    tenant, _created = Tenant.objects.get_or_create(
        schema_name=get_public_schema_name(), defaults={"name": "Platform"}
    )
    Domain.objects.get_or_create(domain=domain, defaults={"tenant": tenant, "is_primary": True})
    return tenant


@_in_public_schema
def ensure_tenant(*, schema_name: str, name: str, domain: str) -> tuple[Tenant, bool]:
    """Return `(tenant, created)`, creating the tenant when it does not exist yet."""
    tenant = Tenant.objects.filter(schema_name=schema_name).first()
    if tenant:
        return tenant, False
    return create_tenant(schema_name=schema_name, name=name, domain=domain), True


@_in_public_schema
def _set_status(tenant: Tenant, status: str) -> Tenant:
    if tenant.is_public:
        raise TenancyError(_("The public (platform) tenant cannot be suspended or resumed."))
    tenant.status = status
    tenant.save(update_fields=["status", "updated_at"])
    logger.info("tenant %s is now %s", tenant.schema_name, status)
    return tenant


def suspend_tenant(tenant: Tenant) -> Tenant:
    """Make every request of the tenant answer 403; its data stays as it is."""
    return _set_status(tenant, Tenant.Status.SUSPENDED)


def resume_tenant(tenant: Tenant) -> Tenant:
    return _set_status(tenant, Tenant.Status.ACTIVE)


def is_suspended_now(schema_name: str) -> bool:
    """Whether the tenant is suspended at this moment (its row read again): long jobs, which
    outlive the request or task that loaded the tenant, check it between chunks of work."""
    return Tenant.objects.filter(schema_name=schema_name, status=Tenant.Status.SUSPENDED).exists()


def _tenant_app_labels() -> list[str]:
    # Content types and permissions are recreated by migrations in the target schema.
    skip = {"contenttypes"}
    return [config.label for config in apps.get_app_configs()
            if config.name in settings.TENANT_APPS and config.label not in skip]


def export_tenant(tenant: Tenant, directory: Path) -> Path:
    """Dump every tenant-schema table of `tenant` to a gzipped JSON fixture and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = directory / f"{tenant.schema_name}-{stamp}.json.gz"
    with tenant_context(tenant):
        call_command("dumpdata", *_tenant_app_labels(), exclude=["auth.permission"],
                     natural_foreign=True, natural_primary=True, output=str(path), verbosity=0)
    return path


@_in_public_schema
def delete_tenant(tenant: Tenant, *, export_dir: Path) -> Path:
    """Export the tenant, then drop its schema, domains and cached entries; return the export."""
    if tenant.is_public:
        raise TenancyError(_("The public (platform) tenant cannot be deleted."))
    path = export_tenant(tenant, export_dir)
    schema_name = tenant.schema_name
    with transaction.atomic():
        # Deferred foreign-key checks still pending in this transaction would block DROP.
        connection.cursor().execute("SET CONSTRAINTS ALL IMMEDIATE")
        tenant.delete(force_drop=True)
    _clear_cache(schema_name)
    logger.info("tenant deleted: %s (export: %s)", schema_name, path)
    return path


def _clear_cache(schema_name: str) -> None:
    """Remove the schema's cache entries, so a new tenant of that name starts clean."""
    client = cache._cache.get_client(write=True)
    keys = list(client.scan_iter(match=f"{schema_name}:*", count=1000))
    if keys:
        client.delete(*keys)


def create_tenant_admin(tenant: Tenant, *, username: str = "admin", email: str = "") -> str | None:
    """Create a superuser in the tenant's schema; return its new password, or None if it exists."""
    with tenant_context(tenant):
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            return None
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email=email, password=password)
        return password


def tenant_summary(tenant: Tenant) -> dict:
    """Facts shown by `lowcode tenant list` and the platform admin."""
    with tenant_context(tenant):
        users = get_user_model().objects.count()
    return {
        "schema": tenant.schema_name,
        "name": tenant.name,
        "status": tenant.status,
        "plan": tenant.plan,
        "domains": ", ".join(d.domain for d in tenant.domains.all()),
        "users": users,
        "created": timezone.localtime(tenant.created_at).strftime("%Y-%m-%d %H:%M"),
    }
