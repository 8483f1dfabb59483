from django_tenants.utils import tenant_context

from lowcode.tasks import ping


def test_task_queued_in_acme_runs_in_acme_schema(acme, globex, celery_worker):
    with tenant_context(acme):
        acme_result = ping.delay()
    with tenant_context(globex):
        globex_result = ping.delay()
    assert acme_result.get(timeout=30) == {"schema": "acme", "database_schema": "acme"}
    assert globex_result.get(timeout=30) == {"schema": "globex", "database_schema": "globex"}


def test_task_queued_outside_a_tenant_runs_in_public(db, celery_worker):
    assert ping.delay().get(timeout=30) == {"schema": "public", "database_schema": "public"}
