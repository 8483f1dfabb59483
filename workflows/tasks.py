"""Celery tasks of workflows: the timers and deadlines sweep (beat, per tenant) and webhook deliveries."""

from __future__ import annotations

from celery import shared_task
from django.db import connection
from django_tenants.utils import get_public_schema_name, get_tenant_model, tenant_context

from workflows import services, webhooks

#: Webhook retries back off exponentially: 1, 2, 4 ... minutes, then the delivery stays parked.
WEBHOOK_RETRIES = 6


@shared_task(name="workflows.tick")
def tick() -> dict:
    """Fire due timers, reminders and escalations in the tenant the task runs in (from public: in every tenant)."""
    if connection.schema_name == get_public_schema_name():
        queued = {}
        for tenant in get_tenant_model().objects.exclude(schema_name=get_public_schema_name()):
            with tenant_context(tenant):
                queued[tenant.schema_name] = tick.delay().id
        return {"schema": connection.schema_name, "queued": queued}
    return {"schema": connection.schema_name, **services.tick()}


@shared_task(name="workflows.deliver_webhook", bind=True, max_retries=WEBHOOK_RETRIES)
def deliver_webhook(self, delivery_id: int) -> dict:
    """Post one webhook delivery, retrying with exponential backoff while the endpoint fails."""
    if not webhooks.deliver(delivery_id):
        raise self.retry(countdown=60 * 2 ** self.request.retries)
    return {"schema": connection.schema_name, "delivery": delivery_id}
