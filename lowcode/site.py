"""The tenant's site: what each app adds to every tenant's URLs, admin, API and menu.

An app registers a `SitePart` from its `AppConfig.ready()`. Its static pieces are the same for
every tenant; its per-tenant pieces are built from the app's current state in the tenant (the
entity snapshot's data API and record admin). Each tenant's URLconf is assembled here from every
part, cached per schema and rebuilt when one part's token changes; TenantURLConfMiddleware
gives it to the tenant's requests. Static ModelAdmins are registered as usual, with
`@admin.register` on Django's default site; each tenant's admin site holds them too.
"""

from __future__ import annotations

import threading
import types
from dataclasses import dataclass

from django.conf.urls.i18n import is_language_prefix_patterns_used
from django.contrib import admin
from django.db import connection
from django.templatetags.static import static
from django.urls import clear_url_caches, get_resolver, include, path, re_path
from django.utils.functional import cached_property
from django.utils.module_loading import import_string
from django.views.generic import RedirectView
from django_tenants.utils import get_public_schema_name, tenant_context

from lowcode.admin_site import TenantAdminSite
from lowcode.api.views import not_found as api_not_found
from lowcode.registry import Instance, Registry
from lowcode.views import ERROR_HANDLERS, HomeView


@dataclass(frozen=True)
class MenuEntry:
    """A link of the end-user pages' menu."""

    label: str
    url_name: str
    #: Dotted path of a function(request) -> int shown beside the link when not 0 (a count of things waiting).
    badge: str = ""
    #: Static path of an icon: the link then sits in the top bar as that icon (the bell), not in the menu.
    icon: str = ""
    #: Dotted path of a function(request) -> bool: the link shows only when it is true.
    visible: str = ""


class SitePart(Instance):
    """One app's share of every tenant's site.

    The static pieces are given to the constructor; the per-tenant ones are built by the
    methods a subclass overrides, from the app's state in the connection's tenant.
    """

    def __init__(self, app_label: str, *, urls: dict[str, str] | None = None, api_urls: dict[str, str] | None = None,
                 admin_mixins: tuple[str, ...] = (), menu_entries: tuple[MenuEntry, ...] = (), home_view: str = "",
                 base_template: str = ""):
        """
        :param app_label: the app's label, the part's `type`.
        :param urls: URLconf modules included at the site's root, by prefix: {"files/": "files.urls"}.
        :param api_urls: URLconf modules included under /api/v1/ (and so in its OpenAPI schema), by prefix.
        :param admin_mixins: dotted paths of classes mixed into every static ModelAdmin of a
            tenant's admin site (imported when the first site is built, to keep start-up light).
        :param menu_entries: links this app adds to the end-user pages' menu.
        :param home_view: the dotted path of a view serving the site's root instead of the
            project's start page (the end-user site's home).
        :param base_template: the template the site's own pages (sign-in, forms, the end-user
            app) extend instead of the project's plain base.html: the end-user site's shell.
        """
        self.type = app_label
        self.urls = urls or {}
        self.api_urls = api_urls or {}
        self.admin_mixins = admin_mixins
        self.menu_entries = menu_entries
        self.home_view = home_view
        self.base_template = base_template

    def tenant_token(self):
        """What this app's per-tenant pieces are built from in the connection's tenant.

        The tenant's site is rebuilt when it differs (==) from the token it was built with;
        None for an app whose pieces are all static.
        """
        return None

    def tenant_urlpatterns(self) -> list:
        """Patterns at the site's root built from this app's state in the connection's tenant."""
        return []

    def tenant_api_urlpatterns(self) -> list:
        """Routes under /api/v1/ built from this app's state in the connection's tenant."""
        return []

    def register_tenant_admin(self, admin_site: admin.AdminSite) -> None:
        """Register ModelAdmins built from this app's state in the connection's tenant."""


site_part_registry: Registry[SitePart] = Registry("site part")


def urlpatterns(admin_site: admin.AdminSite | TenantAdminURLs, *, per_tenant: bool) -> list:
    """A tenant site's URLs: the project's own, then each part's; with `per_tenant`, each part's
    per-tenant ones too (read from the connection's tenant)."""
    api, pages = [], []
    home = HomeView.as_view()
    for part in site_part_registry.get_all():
        if part.home_view:
            home = import_string(part.home_view)
        api += [path(prefix, include(module)) for prefix, module in part.api_urls.items()]
        pages += [path(prefix, include(module)) for prefix, module in part.urls.items()]
        if per_tenant:
            api += part.tenant_api_urlpatterns()
            pages += part.tenant_urlpatterns()
    return [
        path("", home, name="home"),
        path("accounts/", include("django.contrib.auth.urls")),
        path("admin/", admin_site.urls),
        path("i18n/", include("django.conf.urls.i18n")),
        path("api/", include("lowcode.api.urls")),
        path("api/v1/", include(api)),
        *pages,
        re_path(r"^api/(?P<path>[\s\S]*)$", api_not_found),  # Any character, a newline too.
        path("favicon.ico", RedirectView.as_view(url=static("lowcode/favicon.svg"), permanent=True)),
    ]


def base_template(request) -> dict:
    """Context processor: `site_base_template`, the shell a tenant's own pages extend (a part's
    `base_template`, the last registered wins); the platform's site keeps the plain base.html."""
    tenant = getattr(request, "tenant", None)
    template = "base.html"
    if tenant is not None and tenant.schema_name != get_public_schema_name():
        template = next((part.base_template for part in reversed(site_part_registry.get_all())
                         if part.base_template), template)
    return {"site_base_template": template}


def build_admin_site() -> TenantAdminSite:
    """The connection's tenant's admin: every static ModelAdmin, then each part's own."""
    parts = site_part_registry.get_all()
    mixins = tuple(import_string(mixin) for part in parts for mixin in part.admin_mixins)
    site = TenantAdminSite(name="admin")
    for model, model_admin in admin.site._registry.items():
        admin_class = type(model_admin)
        site.register(model, type(admin_class.__name__, (*mixins, admin_class), {}) if mixins else admin_class)
    for part in parts:
        part.register_tenant_admin(site)
    return site


class TenantAdminURLs:
    """A tenant's admin, built on the first request that reaches it (or reverses one of its URLs).

    Most of a tenant's requests (its API, its pages) never do, and its ModelAdmins (every static
    one with the parts' mixins, one per entity) cost more than the rest of its site: a tenant's
    first API request after a restart does without them. Its `urls` is what `include()` gives:
    Django's resolver reads `urlpatterns` only when a path starts with admin/.
    """

    def __init__(self):
        self.tenant = connection.tenant

    @property
    def urls(self) -> tuple:
        return self, "admin", "admin"

    @cached_property
    def urlpatterns(self) -> list:
        with _build_lock:
            if connection.schema_name == self.tenant.schema_name:  # The tenant's request: its row as loaded now.
                return build_admin_site().get_urls()
            with tenant_context(self.tenant):  # reverse() with this URLconf from another schema.
                return build_admin_site().get_urls()


def warm_up() -> None:
    """Import what a tenant's first request would (every part's URL modules and admin mixins):
    a web worker does it before it serves, so that a tenant's first request pays for its own state."""
    get_resolver().url_patterns  # noqa: B018 (ROOT_URLCONF, read for its imports)
    for part in site_part_registry.get_all():
        for mixin in part.admin_mixins:
            import_string(mixin)


def menu_entries() -> list[MenuEntry]:
    return [entry for part in site_part_registry.get_all() for entry in part.menu_entries]


@dataclass
class _BuiltSite:
    tokens: tuple
    urlconf: types.ModuleType


_sites: dict[str, _BuiltSite] = {}
# Reentrant: building a site may build a tenant's state, which may drop other sites (forget()).
_build_lock = threading.RLock()


def urlconf() -> types.ModuleType:
    """The URLconf of the connection's tenant, rebuilt if a part's per-tenant state changed."""
    schema_name = connection.schema_name
    tokens = tuple(part.tenant_token() for part in site_part_registry.get_all())
    built = _sites.get(schema_name)
    if built is not None and built.tokens == tokens:
        return built.urlconf
    with _build_lock:
        built = _sites.get(schema_name)
        if built is None or built.tokens != tokens:
            replaced = built
            module = types.ModuleType(f"lowcode.urls.tenant_{schema_name}")
            module.urlpatterns = urlpatterns(TenantAdminURLs(), per_tenant=True)
            module.handler403, module.handler404, module.handler500 = ERROR_HANDLERS
            built = _sites[schema_name] = _BuiltSite(tokens, module)
            if replaced is not None:
                _clear_urlconf_caches()
    return built.urlconf


def _clear_urlconf_caches() -> None:
    """Drop Django's caches keyed by URLconf: they hold replaced and dropped sites (and through them
    the old admin, views and models). Django cannot drop one URLconf's, so every tenant's go, and
    are filled again on their next request."""
    clear_url_caches()
    is_language_prefix_patterns_used.cache_clear()  # LocaleMiddleware's; clear_url_caches() leaves it.


def forget(schema_names: list[str]) -> None:
    """Drop the built sites of these tenants (their state was dropped): rebuilt on their next request."""
    with _build_lock:
        dropped = [_sites.pop(schema_name, None) for schema_name in schema_names]
    if any(dropped):
        _clear_urlconf_caches()


class TenantURLConfMiddleware:
    """Serve each tenant with its site's URLconf.

    After TenantMainMiddleware: the tenant row it loaded carries the definition tokens, so a
    publish in another process shows on the next request here without a query.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        tenant = getattr(request, "tenant", None)
        if tenant is not None and not tenant.is_public and not tenant.is_suspended:
            request.urlconf = urlconf()
        return self.get_response(request)
