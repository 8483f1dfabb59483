"""URLs of a tenant's site (acme.localhost)."""

from django.contrib import admin
from django.urls import include, path

from lowcode.views import HomeView

urlpatterns = [
    path("", HomeView.as_view(), name="home"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
]
