"""Celery tasks of stored files: previews (FL-3), daily garbage collection, purge of a deleted tenant."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import connection
from django_tenants.utils import get_public_schema_name, get_tenant_model, schema_context, tenant_context

from files import previews, services

logger = logging.getLogger(__name__)


@shared_task(name="files.make_preview")
def make_preview(stored_file_id: str) -> dict:
    """Make the thumbnail or first-page preview of a file of the tenant the task runs in."""
    status = previews.make_preview(stored_file_id)
    return {"schema": connection.schema_name, "file": stored_file_id, "status": status}


@shared_task(name="files.collect_garbage")
def collect_garbage() -> dict:
    """Delete the files nothing uses in the tenant the task runs in (from public: in every tenant)."""
    if connection.schema_name == get_public_schema_name():
        queued = {}
        for tenant in get_tenant_model().objects.exclude(schema_name=get_public_schema_name()):
            with tenant_context(tenant):
                queued[tenant.schema_name] = collect_garbage.delay().id
        return {"schema": connection.schema_name, "queued": queued}
    return {"schema": connection.schema_name, "removed": services.collect_garbage()}


@shared_task(name="files.purge_tenant")
def purge_tenant(schema_name: str) -> dict:
    """Remove every object under a deleted tenant's prefix."""
    if schema_name == get_public_schema_name() or get_tenant_model().objects.filter(schema_name=schema_name).exists():
        raise ValueError(f"{schema_name!r} is not a deleted tenant")
    with schema_context(schema_name):
        removed = services.purge_tenant_files()
    return {"schema": schema_name, "removed": removed}
