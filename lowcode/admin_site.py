"""The tenant's Django admin, titled with the tenant's name."""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.utils.translation import gettext as _


class TenantAdminSite(admin.AdminSite):
    def each_context(self, request):
        context = super().each_context(request)
        tenant = getattr(request, "tenant", None)
        if tenant is not None:
            context["site_header"] = _("%s administration") % tenant.name
            context["site_title"] = tenant.name
        return context


class LowcodeAdminConfig(AdminConfig):
    default_site = "lowcode.admin_site.TenantAdminSite"


class ReadOnlyAdminMixin:
    """Rows nobody adds, changes or deletes in admin (logs, migrations, audit events)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
