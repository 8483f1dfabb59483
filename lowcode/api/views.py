"""OpenAPI schema and Swagger UI of the requesting tenant (DM-5).

The stock view generates from ROOT_URLCONF; a tenant's resources live in the URLconf of its
site (`request.urlconf`, lowcode.site), so the schema is generated from that one, and cached
per URLconf, language and what settings.API_SCHEMA_VARY says (the caller's permissions) until
the next publish replaces the URLconf. `?entity=<key>` (or `?app=`, settings.API_SCHEMA_SECTION)
serves the part of one entity (or app), generated from its views only.
"""

from __future__ import annotations

import weakref

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse
from django.urls import reverse
from django.utils.module_loading import import_string
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from drf_spectacular import drainage, plumbing
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.decorators import api_view, permission_classes
from rest_framework.exceptions import NotAuthenticated, NotFound
from rest_framework.permissions import AllowAny

_schemas: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class TenantSchemaView(SpectacularAPIView):
    def _get_schema_response(self, request):
        urlconf = getattr(request, "urlconf", None)
        cache = _schemas.setdefault(urlconf, {}) if urlconf is not None else {}
        # The schema shows what the caller may see (hidden fields are left out): the project
        # names what it varies by (settings.API_SCHEMA_VARY, a function of the request).
        vary = import_string(settings.API_SCHEMA_VARY)(request) if settings.API_SCHEMA_VARY else None
        # A part of it (`?entity=`): what settings.API_SCHEMA_SECTION makes of the request.
        section = import_string(settings.API_SCHEMA_SECTION)(request) if settings.API_SCHEMA_SECTION else None
        key = (get_language(), vary, section and section[0])
        if key not in cache:
            self.urlconf = urlconf
            generator_class = self.generator_class if section is None else _section_generator(
                self.generator_class, section[1])
            generator = generator_class(urlconf=urlconf, api_version=self.api_version, patterns=self.patterns)
            cache[key] = generator.get_schema(request=request, public=self.serve_public)
            _forget_described(generator)
        # Rendered once per format too: a large tenant's document takes seconds to serialize.
        renderer, media_type = request.accepted_renderer, request.accepted_media_type
        rendered_key = (*key, media_type)
        if rendered_key not in cache:
            cache[rendered_key] = renderer.render(cache[key], media_type, self.get_renderer_context())
        content_type = f"{media_type}; charset={renderer.charset}" if renderer.charset else media_type
        return HttpResponse(cache[rendered_key], content_type=content_type,
                            headers={"Content-Disposition": 'inline; filename="openapi.yaml"'})


def _forget_described(generator) -> None:
    """Drop what drf-spectacular keeps of a generation: the URL patterns and classes it described
    (caches without bound) and, on each view's schema inspector, the last view and components.
    They would keep replaced tenant sites and snapshots alive."""
    plumbing.detype_patterns.cache_clear()
    drainage._get_source_location.cache_clear()
    for _path, _regex, _method, callback in generator.endpoints or ():
        # The view's inspector, and an action's (@extend_schema on it: a class, bound as such).
        for inspector in (callback.cls.schema, (getattr(callback, "initkwargs", None) or {}).get("schema")):
            for name in ("_view", "registry"):
                if name in getattr(inspector, "__dict__", ()):
                    setattr(inspector, name, None)


def _section_generator(generator_class, keep):
    """`generator_class` describing only the endpoints whose path `keep` accepts (and inspecting no other view)."""

    class SectionInspector(generator_class.endpoint_inspector_cls):
        def should_include_endpoint(self, path, callback):
            return keep(path) and super().should_include_endpoint(path, callback)

    return type("SectionGenerator", (generator_class,), {"endpoint_inspector_cls": SectionInspector})


class TenantSwaggerView(SpectacularSwaggerSplitView):
    url_name = "api-schema"

    def handle_exception(self, exc):
        # A person who opens the docs page signed out is sent to sign in, not shown a JSON 401.
        if isinstance(exc, NotAuthenticated):
            return redirect_to_login(self.request.get_full_path(), reverse("admin:login"))
        return super().handle_exception(exc)


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE"])
@permission_classes([AllowAny])
def not_found(request, path=""):
    """Unknown URLs under /api/ answer in the API's format, not with an HTML page."""
    raise NotFound(_("No API endpoint at this address."))
