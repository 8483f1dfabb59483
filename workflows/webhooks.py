"""Outbound webhook deliveries of workflow events (a webhook service task's `event`).

Each delivery is a row (WebhookDelivery) posted after commit by a Celery task, signed with the
endpoint's secret: `X-Lowcode-Signature: sha256=<HMAC-SHA256 of "<timestamp>.<body>">` with the
timestamp in `X-Lowcode-Timestamp`, so receivers can refuse altered or replayed posts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import requests
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from workflows.models import WebhookDelivery, WebhookEndpoint


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def queue(event: str, payload: dict) -> list[WebhookDelivery]:
    """A delivery of `event` for every active endpoint subscribed to it (the caller posts them on commit)."""
    payload = json.loads(json.dumps({"event": event, **payload, "at": timezone.now()}, cls=DjangoJSONEncoder))
    return [WebhookDelivery.objects.create(endpoint=endpoint, event=event, payload=payload)
            for endpoint in WebhookEndpoint.objects.filter(event=event, active=True)]


def deliver(delivery_id: int, *, timeout: float = 10) -> bool:
    """Post one delivery; log its status and an excerpt of the answer. True: the endpoint took it (2xx)."""
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    if delivery.delivered_at:
        return True
    body = json.dumps(delivery.payload, sort_keys=True).encode()
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-Lowcode-Event": delivery.event,
               "X-Lowcode-Delivery": str(delivery.pk), "X-Lowcode-Timestamp": timestamp,
               "X-Lowcode-Signature": f"sha256={signature(delivery.endpoint.secret, timestamp, body)}"}
    delivery.attempts += 1
    try:
        response = requests.post(delivery.endpoint.url, data=body, headers=headers, timeout=timeout)
        delivery.status_code, delivery.response = response.status_code, response.text[:500]
    except requests.RequestException as error:
        delivery.status_code, delivery.response = None, str(error)[:500]
    delivered = delivery.status_code is not None and 200 <= delivery.status_code < 300
    if delivered:
        delivery.delivered_at = timezone.now()
    delivery.save()
    return delivered
