"""Serve the static twins' API in front of each tenant snapshot's URLconf.

Placed right after `dynamic_models.middleware.TenantURLConfMiddleware`, so that requests to
/api/v1/static/ and to /api/v1/data/ pass through exactly the same middleware. The wrapping
module is built once per snapshot URLconf (a publish makes a new one) and cached with a weak
reference, so Django's resolver cache (keyed by the URLconf) is reused from request to request.
"""

from __future__ import annotations

import types
import weakref

from django.urls import include, path

_wrapped: weakref.WeakKeyDictionary[types.ModuleType, types.ModuleType] = weakref.WeakKeyDictionary()


def wrap(urlconf: types.ModuleType) -> types.ModuleType:
    """Return a URLconf serving /api/v1/static/ and then everything `urlconf` serves."""
    module = _wrapped.get(urlconf)
    if module is None:
        module = types.ModuleType(f"{urlconf.__name__}_with_static_expense")
        module.urlpatterns = [path("api/v1/static/", include("benchmarks.static_expense.urls")),
                              *urlconf.urlpatterns]
        _wrapped[urlconf] = module
    return module


class StaticRoutesMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        urlconf = getattr(request, "urlconf", None)
        if isinstance(urlconf, types.ModuleType):
            request.urlconf = wrap(urlconf)
        return self.get_response(request)
