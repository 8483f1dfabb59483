"""Celery tasks of the audit trail: nightly retention (AD-5), hourly signed checkpoints (AD-2),
sealing events into blocks every few seconds.

Queued outside any tenant (Celery beat, in public), retention and checkpoints fan out: each
queues itself once per tenant, inside its context, so each tenant's run is its own task in its
own schema. Sealing, far more frequent and one cheap statement per tenant, visits the tenants in
one task instead of queueing hundreds every few seconds.
"""

import logging

from celery import shared_task
from django.db import DatabaseError, connection
from django_tenants.utils import get_public_schema_name, get_tenant_model, tenant_context

from audit import services

logger = logging.getLogger(__name__)


def _queue_per_tenant(task) -> dict:
    queued = {}
    for tenant in get_tenant_model().objects.exclude(schema_name=get_public_schema_name()):
        with tenant_context(tenant):
            queued[tenant.schema_name] = task.delay().id
    return {"schema": connection.schema_name, "queued": queued}


@shared_task(name="audit.apply_retention")
def apply_retention() -> dict:
    """Apply the retention of the tenant the task runs in (from public: of every tenant)."""
    if connection.schema_name == get_public_schema_name():
        return _queue_per_tenant(apply_retention)
    result = services.apply_retention()
    if result is None:
        return {"schema": connection.schema_name, "removed": 0}
    return {"schema": connection.schema_name, "removed": result.removed, "first_seq": result.first_seq,
            "last_seq": result.last_seq, "file": result.file}


@shared_task(name="audit.write_checkpoints")
def write_checkpoints() -> dict:
    """Verify the trail of the tenant the task runs in and sign a checkpoint of its head (from public: of
    every tenant). A trail that does not verify gets no checkpoint, and an error in the log."""
    if connection.schema_name == get_public_schema_name():
        return _queue_per_tenant(write_checkpoints)
    try:
        checkpoint = services.write_checkpoint()
    except services.TrailTampered as error:
        logger.error("audit trail of %s does not verify: %s", connection.schema_name, error)
        return {"schema": connection.schema_name, "ok": False, "message": str(error)}
    return {"schema": connection.schema_name, "ok": True, "checkpoint": checkpoint.name if checkpoint else None}


@shared_task(name="audit.seal_events")
def seal_events() -> dict:
    """Seal the committed events of the tenant the task runs in into its next block (from public: of every
    tenant, one after the other; one that fails is logged and the others are sealed all the same)."""
    if connection.schema_name != get_public_schema_name():
        block = services.seal_events()
        return {"schema": connection.schema_name, "block": block.number if block else None}
    sealed, failed = {}, []
    for tenant in get_tenant_model().objects.exclude(schema_name=get_public_schema_name()):
        with tenant_context(tenant):
            try:
                block = services.seal_events()
            except DatabaseError:
                logger.exception("audit events of %s could not be sealed", tenant.schema_name)
                failed.append(tenant.schema_name)
                continue
        if block is not None:
            sealed[tenant.schema_name] = block.number
    return {"schema": connection.schema_name, "sealed": sealed, "failed": failed}
