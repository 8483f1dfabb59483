"""A tenant's first request after a restart builds only what it needs (issue 16: cold first request)."""

from __future__ import annotations

from dynamic_models import runtime


def test_a_list_without_filters_builds_no_filter_set(api):
    runtime.forget("acme")  # As after a restart.
    response = api.get("/api/v1/data/expense/?page_size=5&ordering=-id&count=false")
    assert response.status_code == 200
    viewset = runtime.current().record_viewsets["expense"]
    assert "_record_filterset" not in viewset.__dict__

    # Filters still answer as before: the set is built by the first request that filters.
    assert api.get("/api/v1/data/expense/?currency=CNY").status_code == 200
    assert "_record_filterset" in viewset.__dict__
    unknown = api.get("/api/v1/data/expense/?page_size=5&nonsense=1")
    assert unknown.status_code == 400 and unknown.json()["nonsense"][0]["code"] == "unknown_filter"
    blank = api.get("/api/v1/data/expense/?currency=")
    assert blank.status_code == 400 and blank.json()["currency"][0]["code"] == "blank"
