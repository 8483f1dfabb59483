"""Health checks shared by `/healthz`, `/readyz` and `manage.py lowcode doctor` (PF-5, PF-6)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import redis
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse
from django.utils.translation import gettext as _


@dataclass
class CheckResult:
    name: str
    ok: bool
    detail: str = ""
    hint: str = ""


def check_database() -> CheckResult:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            version = cursor.fetchone()[0].split(" on ")[0]
        return CheckResult("database", True, version)
    except Exception as error:  # Any driver error means "not ready", with its text.
        return CheckResult("database", False, str(error).strip(),
                           _("Is PostgreSQL running and DATABASE_URL right? `make run` starts an embedded one."))


def check_redis() -> CheckResult:
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
        info = client.info("server")
        return CheckResult("redis", True, f"Redis {info['redis_version']}")
    except redis.RedisError as error:
        return CheckResult("redis", False, str(error),
                           _("Is Redis running and REDIS_URL right? `make run` starts an embedded one."))


def check_storage() -> CheckResult:
    name = f"health/{uuid.uuid4().hex}.txt"
    try:
        saved = default_storage.save(name, ContentFile(b"ok"))
        default_storage.delete(saved)
        return CheckResult("storage", True, type(default_storage._wrapped).__name__)
    except Exception as error:  # Filesystem and S3 errors differ; each means "not writable".
        return CheckResult("storage", False, str(error),
                           _("Check MEDIA_ROOT permissions, or the S3 bucket and credentials."))


def check_celery(timeout: float = 5.0) -> CheckResult:
    """Ping the workers, then run a task through one: broker, worker and its database."""
    from lowcode.celery import app
    from lowcode.tasks import ping

    try:
        replies = app.control.ping(timeout=1.0)
        if not replies:
            return CheckResult("celery", False, _("no worker answered"),
                               _("Start a worker: celery -A lowcode worker (make run starts one)."))
        ping.apply_async(expires=timeout).get(timeout=timeout)
    except Exception as error:  # Broker, timeout and task errors each mean "not working".
        return CheckResult("celery", False, f"{type(error).__name__}: {error}",
                           _("Check the broker (REDIS_URL) and the worker's log."))
    workers = ", ".join(name for reply in replies for name in reply)
    return CheckResult("celery", True, _("%(count)d worker(s): %(names)s")
                       % {"count": len(replies), "names": workers})


def check_migrations() -> CheckResult:
    from django_tenants.utils import get_tenant_model, tenant_context

    pending = {}
    for tenant in get_tenant_model().objects.all():
        with tenant_context(tenant):
            executor = MigrationExecutor(connection)
            plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
            if plan:
                pending[tenant.schema_name] = len(plan)
    if pending:
        detail = ", ".join(f"{schema}: {count}" for schema, count in pending.items())
        return CheckResult("migrations", False, _("pending migrations (%s)") % detail,
                           _("Run: manage.py migrate_schemas"))
    return CheckResult("migrations", True, _("all schemas up to date"))


READINESS_CHECKS = (check_database, check_redis, check_storage)


def readiness() -> tuple[bool, list[CheckResult]]:
    results = [check() for check in READINESS_CHECKS]
    return all(result.ok for result in results), results


class HealthCheckMiddleware:
    """Answer `/healthz` and `/readyz` before tenant routing, for any host and without auth.

    Load balancers probe by IP address, which is neither a tenant domain nor (always) in
    ALLOWED_HOSTS; these two paths reveal nothing tenant-specific.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == "/healthz":
            return JsonResponse({"status": "ok"})
        if request.path == "/readyz":
            ready, results = readiness()
            return JsonResponse(
                {"status": "ready" if ready else "not ready",
                 # Only pass/fail: error texts would tell anyone our hosts and ports.
                 "checks": {r.name: "ok" if r.ok else "fail" for r in results}},
                status=200 if ready else 503,
            )
        return self.get_response(request)
