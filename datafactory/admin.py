from django.contrib import admin

from datafactory.models import ModuleRun


@admin.register(ModuleRun)
class ModuleRunAdmin(admin.ModelAdmin):
    """The execution log (PL-4): read-only, as an audit trail is."""

    list_display = ("created_at", "module", "user", "status", "error", "duration_ms", "cached")
    list_filter = ("module", "status", "cached")
    search_fields = ("module", "message", "user__username")
    list_select_related = ("user",)
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
