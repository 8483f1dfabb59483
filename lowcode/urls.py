"""URLs of a tenant's site (acme.localhost)."""

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from lowcode.api.views import not_found as api_not_found
from lowcode.views import HomeView


def tenant_urlpatterns(admin_site: admin.AdminSite, data_api: list | tuple = ()) -> list:
    """The tenant's URLs; each runtime snapshot brings its own admin site and entity resources."""
    return [
        path("", HomeView.as_view(), name="home"),
        path("accounts/", include("django.contrib.auth.urls")),
        path("admin/", admin_site.urls),
        path("i18n/", include("django.conf.urls.i18n")),
        path("api/", include("lowcode.api.urls")),
        path("api/v1/", include("lowcode.apikeys.urls")),
        path("api/v1/meta/", include("dynamic_models.api.meta_urls")),
        path("api/v1/data/", include(list(data_api))),
        path("api/v1/rbac/", include("rbac.urls")),
        re_path(r"^api/(?P<path>.*)$", api_not_found),
        path("favicon.ico", RedirectView.as_view(url=static("lowcode/favicon.svg"), permanent=True)),
    ]


urlpatterns = tenant_urlpatterns(admin.site)
