"""Per-tenant state (issue 16): built per entity on first use, bounded in memory, freed when replaced."""

from __future__ import annotations

import gc
import weakref

from django.db import connection
from django.urls import resolve

from dynamic_models import runtime
from lowcode import site


def test_an_entity_resource_is_built_on_its_first_request(api):
    runtime.forget("acme")  # As after a restart.
    snapshot = runtime.current()
    urlconf = site.urlconf()
    # The site routes both entities, and built neither's viewset or serializer.
    assert resolve("/api/v1/data/project/", urlconf=urlconf).url_name == "data-project-list"
    assert dict(snapshot.record_viewsets._built) == {} and dict(snapshot.record_serializers._built) == {}

    assert api.get("/api/v1/data/project/").status_code == 200
    assert set(snapshot.record_viewsets._built) == {"project"}
    assert api.get("/api/v1/data/expense/?expand=project").status_code == 200
    assert set(snapshot.record_viewsets._built) == {"project", "expense"}
    view = resolve("/api/v1/data/expense/1/", urlconf=urlconf).func
    assert view.cls is snapshot.record_viewsets["expense"] and view.actions["get"] == "retrieve"


def test_snapshots_past_the_memory_bound_are_dropped_and_freed(scenario, acme, globex, acme_client, settings):
    connection.set_tenant(acme)
    acme_snapshot = runtime.current()
    acme_site = site.urlconf()
    settings.TENANT_STATE_MEMORY_MB = acme_snapshot.estimated_bytes / 1024 / 1024 * 1.5  # Room for acme only.
    dropped = weakref.ref(acme_snapshot)
    dropped_site = weakref.ref(acme_site)
    del acme_snapshot, acme_site

    connection.set_tenant(globex)
    runtime.current()  # globex's (empty) snapshot fits beside it: acme's stays.
    assert "acme" in runtime._snapshots
    big = runtime.Snapshot("bench", None, {f"e{i}": {"fields": [{}] * 30} for i in range(20)}, runtime.SnapshotApps())
    runtime._snapshots.put(big)  # A large tenant comes in: the least recently used go.
    assert "acme" not in runtime._snapshots and "bench" in runtime._snapshots
    connection.set_schema_to_public()
    gc.collect()
    assert dropped() is None and dropped_site() is None  # Nothing kept them: apps registry, site, resolvers.
    runtime.forget("bench")

    # acme's next request builds them again.
    response = acme_client.get("/api/v1/data/project/")
    assert response.status_code in (401, 403)
    assert "acme" in runtime._snapshots


def test_the_openapi_schema_of_one_entity(api):
    runtime.forget("acme")
    schema = api.get("/api/schema/?format=json&entity=expense").json()
    assert schema["paths"] and all(path.startswith("/api/v1/data/expense/") for path in schema["paths"])
    assert "Expense" in schema["components"]["schemas"]
    # Generated from that entity's views only (a related entity's serializer describes its expansion).
    assert set(runtime.current().record_viewsets._built) == {"expense"}
    whole = api.get("/api/schema/?format=json").json()
    assert "/api/v1/data/project/" in whole["paths"] and "/api/v1/meta/entities/" in whole["paths"]
    assert whole["paths"]["/api/v1/data/expense/"] == schema["paths"]["/api/v1/data/expense/"]

    response = api.get("/api/schema/?format=json&entity=nothing")
    assert response.status_code == 400 and response.json()["entity"][0]["code"] == "invalid"
    response = api.get("/api/schema/?format=json&app=nothing")
    assert response.status_code == 400 and response.json()["app"][0]["code"] == "invalid"


def test_related_records_on_a_change_page_are_collapsed_and_capped(scenario, acme, make_user, acme_client):
    from dynamic_models.admin import INLINE_ROWS

    make_user(acme, "bea", is_staff=True, is_superuser=True)
    acme_client.post("/admin/login/?next=/admin/", {"username": "bea", "password": "correct-horse-battery"})
    Project, Expense = runtime.get_model("project"), runtime.get_model("expense")
    project = Project.objects.create(name="Apollo")
    for number in range(INLINE_ROWS + 5):
        Expense.objects.create(title=f"Trip {number:02d}", amount=5, spent_on="2026-01-02", project=project)
    page = acme_client.get(f"/admin/data/project/{project.pk}/change/").content.decode()
    assert page.count('class="inlineviewlink"') == INLINE_ROWS
    assert '<details><summary>' in page  # Collapsed until opened.
    assert f"{INLINE_ROWS} of {INLINE_ROWS + 5} shown." in page
    assert f'href="/admin/data/expense/?project={project.pk}"' in page
    listing = acme_client.get(f"/admin/data/expense/?project={project.pk}").content.decode()
    assert listing.count("Trip ") >= INLINE_ROWS + 5
    # Saving the record keeps working with the capped inline.
    response = acme_client.post(f"/admin/data/project/{project.pk}/change/", {
        "name": "Apollo 2", **_management(page)})
    assert response.status_code == 302 and Project.objects.get().name == "Apollo 2"


def _management(page: str) -> dict:
    import re

    return dict(re.findall(r'name="([\w-]+-(?:TOTAL|INITIAL|MIN_NUM|MAX_NUM)_FORMS)" value="(\d+)"', page))


def test_replaced_snapshots_are_freed_after_requests(api, acme, make_user, acme_client):
    """Publishes in a tenant that serves requests keep memory flat: nothing (URL caches, the locale
    middleware's, the schema cache, the admin) keeps a replaced snapshot or site alive."""
    from dynamic_models import services

    make_user(acme, "bea", is_staff=True, is_superuser=True)
    staff = type(acme_client)(HTTP_HOST="acme.localhost")
    staff.post("/admin/login/?next=/admin/", {"username": "bea", "password": "correct-horse-battery"})
    replaced = []
    for number in range(4):
        connection.set_tenant(type(acme).objects.get(pk=acme.pk))  # As a request loads it: the current token.
        replaced.append((weakref.ref(runtime.current()), weakref.ref(site.urlconf())))
        assert api.get("/api/v1/data/expense/?amount__gte=1").status_code == 200
        assert api.get("/api/schema/?format=json").status_code == 200
        assert api.get("/api/schema/?format=json&entity=expense").status_code == 200
        assert staff.get("/admin/data/project/").status_code == 200
        connection.set_tenant(type(acme).objects.get(pk=acme.pk))
        services.publish_body({**runtime.current().bodies["project"], "label": f"Project {number}"})
    # The next request replaces the last one (whose views drf-spectacular's shared action inspectors
    # hold until it describes others: the current ones, here).
    assert api.get("/api/schema/?format=json").status_code == 200
    connection.set_schema_to_public()
    gc.collect()
    assert [(snapshot() is None, urlconf() is None) for snapshot, urlconf in replaced] == [(True, True)] * 4


def test_the_openapi_schema_is_rendered_once_per_format(api):
    from lowcode.api.views import _schemas

    first = api.get("/api/schema/?format=json&entity=expense")
    assert first["Content-Type"].startswith("application/vnd.oai.openapi+json")
    rendered = [value for value in _schemas[site.urlconf()].values() if isinstance(value, bytes)]
    assert rendered == [first.content]  # Kept rendered: the next request serializes nothing.
    assert api.get("/api/schema/?format=json&entity=expense").content == first.content
    yaml = api.get("/api/schema/?entity=expense")
    assert yaml.content.startswith(b"openapi:") and yaml.content != first.content
