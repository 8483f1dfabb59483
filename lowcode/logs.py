"""Request context for log lines: request id, tenant and user (PF-6)."""

from __future__ import annotations

import contextvars
import logging
import time
import uuid

from django.utils.functional import SimpleLazyObject

request_var: contextvars.ContextVar = contextvars.ContextVar("request", default=None)
request_logger = logging.getLogger("lowcode.request")


class RequestContextMiddleware:
    """Give each request an id (kept from a valid `X-Request-ID`) and log one line per request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.id = incoming if 8 <= len(incoming) <= 64 and incoming.replace("-", "").isalnum() \
            else uuid.uuid4().hex
        token = request_var.set(request)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request.id
            request_logger.info(
                "%s %s %s", request.method, request.path, response.status_code,
                extra={"status": response.status_code, "method": request.method, "path": request.path,
                       "duration_ms": round((time.perf_counter() - started) * 1000, 1)},
            )
            return response
        finally:
            request_var.reset(token)


class RequestContextFilter(logging.Filter):
    """Add `request_id`, `tenant` and `user` to every record logged during a request."""

    def filter(self, record):
        request = request_var.get()
        tenant = getattr(request, "tenant", None)
        # Only a user already loaded: resolving one here would query inside logging. DRF puts
        # the user of an API key on the request itself; the session's is cached by Django.
        user = request.__dict__.get("user") if request is not None else None
        if user is None or isinstance(user, SimpleLazyObject):
            user = getattr(request, "_cached_user", None)
        record.request_id = getattr(request, "id", "-")
        if not hasattr(record, "tenant"):
            from django.db import connection

            record.tenant = tenant.schema_name if tenant else getattr(connection, "schema_name", "-")
        record.user = user.get_username() if user is not None and user.is_authenticated else "-"
        return True
