from django.contrib import admin
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _

from metadata import services
from metadata.models import Definition


@admin.register(Definition)
class DefinitionAdmin(admin.ModelAdmin):
    """Every version of every definition, read-only, with its changes from the version before."""

    list_display = ["kind", "key", "version", "status", "author", "change_note", "published_at"]
    list_filter = ["kind", "status"]
    search_fields = ["key", "change_note"]
    readonly_fields = ["kind", "key", "version", "status", "author", "change_note", "checksum", "created_at",
                       "published_at", "changes", "body"]
    exclude = ["body"]

    @admin.display(description=_("changes from the previous version"))
    def changes(self, obj):
        previous = Definition.objects.filter(kind=obj.kind, key=obj.key, version__lt=obj.version) \
            .order_by("-version").first()
        if previous is None:
            return _("First version.")
        summary = services.compare(obj.kind, obj.key, previous.version, obj.version)["summary"]
        return format_html_join("", "<div>{}</div>", ((line,) for line in summary)) or _("No changes.")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
