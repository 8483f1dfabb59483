"""URLs of a tenant's site (acme.localhost)."""

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from lowcode.views import HomeView


def tenant_urlpatterns(admin_site: admin.AdminSite) -> list:
    """The tenant's URLs around an admin site; each runtime snapshot brings its own site."""
    return [
        path("", HomeView.as_view(), name="home"),
        path("accounts/", include("django.contrib.auth.urls")),
        path("admin/", admin_site.urls),
        path("i18n/", include("django.conf.urls.i18n")),
        path("favicon.ico", RedirectView.as_view(url=static("lowcode/favicon.svg"), permanent=True)),
    ]


urlpatterns = tenant_urlpatterns(admin.site)
