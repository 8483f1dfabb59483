"""Celery tasks of the audit trail: nightly retention (AD-5)."""

from celery import shared_task
from django.db import connection
from django_tenants.utils import get_public_schema_name, get_tenant_model, tenant_context

from audit import services


@shared_task(name="audit.apply_retention")
def apply_retention() -> dict:
    """Apply the retention of the tenant the task runs in.

    Queued outside any tenant (Celery beat, in public), fan out: queue this task once per
    tenant, inside its context, so each tenant's run is its own task in its own schema.
    """
    if connection.schema_name == get_public_schema_name():
        queued = {}
        for tenant in get_tenant_model().objects.exclude(schema_name=get_public_schema_name()):
            with tenant_context(tenant):
                queued[tenant.schema_name] = apply_retention.delay().id
        return {"schema": connection.schema_name, "queued": queued}
    result = services.apply_retention()
    if result is None:
        return {"schema": connection.schema_name, "removed": 0}
    return {"schema": connection.schema_name, "removed": result.removed, "first_seq": result.first_seq,
            "last_seq": result.last_seq, "file": result.file}
