"""URLs of the platform site (the public schema, for example localhost)."""

from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from lowcode import views
from lowcode.tenancy.admin import platform_site

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", platform_site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("favicon.ico", RedirectView.as_view(url=static("lowcode/favicon.svg"), permanent=True)),
]
handler403, handler404, handler500 = views.ERROR_HANDLERS
