"""Form submissions in the tenant's admin (FM-6): listed, filtered, exported; never changed here."""

from django.contrib import admin
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from forms_engine import services
from forms_engine.models import FormSubmission
from lowcode.admin_site import ReadOnlyAdminMixin


@admin.register(FormSubmission)
class FormSubmissionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "form_key", "status", "user", "record", "created_at", "submitted_at"]
    list_filter = ["form_key", "status", ("user", admin.RelatedOnlyFieldListFilter), ("created_at", admin.DateFieldListFilter)]
    search_fields = ["form_key", "user__username"]
    date_hierarchy = "created_at"
    list_select_related = ["user"]
    fields = ["form_key", "form_version", "status", "user", "record", "data", "created_at", "updated_at", "submitted_at"]
    readonly_fields = fields
    actions = ["export_csv"]

    @admin.display(description=_("record"))
    def record(self, submission):
        # The reference only: the record's values are read on its own page, under rbac.
        return f"{submission.record_entity} #{submission.record_id}" if submission.record_id else "—"

    @admin.action(description=_("Export selected submissions as CSV"), permissions=["view"])
    def export_csv(self, request, queryset):
        response = StreamingHttpResponse(services.export_csv(queryset, user=request.user, request=request),
                                         content_type="text/csv; charset=utf-8")
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="form-submissions-{stamp}.csv"'
        return response
