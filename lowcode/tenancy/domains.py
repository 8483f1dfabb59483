"""Which tenant a host name serves, read from a cache of each process (lowcode.versioned_cache).

django-tenants reads the Domain and Tenant rows on every request. Here each process keeps the
rows of the host names it served; every change of a tenant or domain row (a save, a delete, a
bulk update such as a publish's definition token) replaces one shared version on commit, so a
suspension, a deletion or a publish shows on every process's next request.
"""

from __future__ import annotations

import copy

from lowcode.tenancy.models import Domain, Tenant
from lowcode.versioned_cache import VersionedCache

#: Host name -> tenant row, one version for them all (tenant rows change seldom).
tenants_by_host = VersionedCache("tenant-rows", max_entries=1024)


def tenant_for_host(hostname: str) -> Tenant:
    """The tenant whose domain is `hostname`, as a copy of its row the caller may change.

    :raises Domain.DoesNotExist: no tenant serves this host name.
    """
    version = tenants_by_host.version()
    tenant = tenants_by_host.get(hostname, version)
    if tenant is None:
        tenant = Domain.objects.select_related("tenant").get(domain=hostname).tenant
        tenants_by_host.put(hostname, version, tenant)
    return _copy(tenant)


def _copy(tenant: Tenant) -> Tenant:
    """A request's own tenant: code changes its definition tokens in memory (a publish does)."""
    tenant = copy.copy(tenant)
    tenant.definition_versions = dict(tenant.definition_versions)
    tenant.allowed_upload_types = list(tenant.allowed_upload_types)
    return tenant


def tenant_rows_changed() -> None:
    """Tenant or domain rows change in this transaction (every process reads them again)."""
    tenants_by_host.changed()


def on_row_saved_or_deleted(sender, **kwargs) -> None:
    """post_save, post_delete and rows_updated receiver of Tenant and Domain."""
    tenant_rows_changed()
