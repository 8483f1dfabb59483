from django.contrib import admin

from datafactory.models import ModuleRun
from lowcode.admin_site import ReadOnlyAdminMixin


@admin.register(ModuleRun)
class ModuleRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The execution log (PL-4): read-only, as an audit trail is."""

    list_display = ("created_at", "module", "user", "status", "error", "duration_ms", "cached")
    list_filter = ("module", "status", "cached")
    search_fields = ("module", "message", "user__username")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
