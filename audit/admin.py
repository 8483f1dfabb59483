"""The audit trail in the tenant's admin: events (read-only), export, verify, alerts, settings."""

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.forms.models import model_to_dict
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from audit import audit_actions, services
from audit.actions import audit_action_registry
from audit.models import Alert, AlertRule, AuditEvent, AuditSettings
from lowcode.admin_site import ReadOnlyAdminMixin

CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}


class AuditedAdminMixin:
    """For a ModelAdmin of settings kept in a static model: each add, change and delete made in the
    admin is an audit event (`admin.<app>_<model>.create|update|delete`) with the fields before
    and after; `audit_hidden_fields` (secrets) show only that they changed."""

    audit_hidden_fields: tuple[str, ...] = ()

    def _audit_state(self, obj) -> dict:
        fields = [field.name for field in obj._meta.concrete_fields]
        return json.loads(json.dumps(model_to_dict(obj, fields=fields), cls=DjangoJSONEncoder))

    def _audit(self, request, obj, action, before: dict | None, after: dict | None) -> None:
        changed = [name for name in (after or before) if (before or {}).get(name) != (after or {}).get(name)]

        def shown(state):
            return {name: "••••" if name in self.audit_hidden_fields and state[name] else state[name]
                    for name in changed} if state else None

        services.record(action.of(obj._meta.label_lower.replace(".", "_")), target=obj, actor=request.user,
                        before=shown(before), after=shown(after), request=request)

    def save_model(self, request, obj, form, change):
        before = self._audit_state(type(obj)._default_manager.get(pk=obj.pk)) if change else None
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            after = self._audit_state(obj)
            if before != after:
                self._audit(request, obj, audit_actions.ADMIN_UPDATE if change else audit_actions.ADMIN_CREATE,
                            before, after)

    def delete_model(self, request, obj):
        with transaction.atomic():
            self._audit(request, obj, audit_actions.ADMIN_DELETE, self._audit_state(obj), None)
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Events can be looked at, filtered, exported and verified; nobody adds, changes or deletes them."""

    list_display = ["seq", "created_at", "actor_display", "action_description", "target_display", "result", "ip"]
    list_display_links = ["seq"]
    list_filter = ["action", "result", "actor", "target_type"]
    date_hierarchy = "created_at"
    search_fields = ["=target_id", "target_repr", "=request_id"]
    show_full_result_count = False  # No second COUNT over millions of rows.
    actions = ["export_csv", "export_jsonl"]
    fields = ["seq", "created_at", "actor", "actor_repr", "api_key_prefix", "action", "action_description", "result",
              "target_type", "target_id", "target_repr", "before", "after", "data", "request_id", "ip", "user_agent",
              "block"]
    readonly_fields = fields

    @admin.display(description=gettext_lazy("actor"), ordering="actor_repr")
    def actor_display(self, event):
        name = event.actor_repr or "-"
        return f"{name} ({event.api_key_prefix})" if event.api_key_prefix else name

    @admin.display(description=gettext_lazy("action"), ordering="action")
    def action_description(self, event):
        return audit_action_registry.describe(event.action)

    @admin.display(description=gettext_lazy("block"))
    def block(self, event):
        block = services.block_of(event)
        if block is None:
            return _("not sealed yet (the sealing runs every few seconds)")
        return _("block %(number)d, sealed at %(time)s") % {
            "number": block.number, "time": date_format(timezone.localtime(block.created_at), "DATETIME_FORMAT")}

    @admin.display(description=gettext_lazy("target"), ordering="target_type")
    def target_display(self, event):
        if not event.target_type:
            return "-"
        label = event.target_repr or event.target_id
        return f"{event.target_type}: {label}" if label else event.target_type

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("export/<str:fmt>/", wrap(self.export_view), name="audit_auditevent_export"),
            path("verify/", wrap(self.verify_view), name="audit_auditevent_verify"),
            *super().get_urls(),
        ]

    def _stream(self, request, queryset, fmt):
        if fmt not in services.EXPORT_FORMATS:
            raise PermissionDenied
        services.record(audit_actions.EXPORT, data={"format": fmt, "query": request.GET.urlencode()[:2000]},
                        request=request)
        response = StreamingHttpResponse(services.iter_export(queryset, fmt, bom=fmt == "csv"),
                                         content_type=CONTENT_TYPES[fmt])
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{fmt}"'
        return response

    def export_view(self, request, fmt):
        """Stream the changelist as filtered and searched now (its query string), oldest first."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        changelist = self.get_changelist_instance(request)
        return self._stream(request, changelist.get_queryset(request), fmt)

    @admin.action(description=gettext_lazy("Export selected events as CSV"))
    def export_csv(self, request, queryset):
        return self._stream(request, queryset, "csv")

    @admin.action(description=gettext_lazy("Export selected events as JSON Lines"))
    def export_jsonl(self, request, queryset):
        return self._stream(request, queryset, "jsonl")

    def verify_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        result = services.verify()
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "result": result,
                   "title": _("Verify the audit trail")}
        return TemplateResponse(request, "admin/audit/auditevent/verify.html", context)


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "action_pattern", "threshold", "window_minutes", "per_actor", "active"]
    list_filter = ["active", "per_actor"]
    search_fields = ["name", "action_pattern"]


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["created_at", "rule", "message", "count", "acknowledged", "acknowledged_by"]
    list_filter = [("acknowledged_at", admin.EmptyFieldListFilter), "rule"]
    list_select_related = ["rule", "acknowledged_by"]
    actions = ["acknowledge"]
    fields = ["rule", "message", "count", "subject", "event", "created_at", "acknowledged_by", "acknowledged_at"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    @admin.display(description=gettext_lazy("acknowledged"), boolean=True, ordering="acknowledged_at")
    def acknowledged(self, alert):
        return alert.is_acknowledged

    @admin.action(description=gettext_lazy("Acknowledge selected alerts"), permissions=["change"])
    def acknowledge(self, request, queryset):
        count = services.acknowledge_alerts(queryset, request.user)
        self.message_user(request, ngettext("%d alert acknowledged.", "%d alerts acknowledged.", count) % count,
                          messages.SUCCESS)


@admin.register(AuditSettings)
class AuditSettingsAdmin(admin.ModelAdmin):
    """One row per tenant: the list goes straight to it."""

    fields = ["retention_days", "archive_to_storage", "updated_at"]
    readonly_fields = ["updated_at"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        config = AuditSettings.load()
        return HttpResponseRedirect(reverse(f"{self.admin_site.name}:audit_auditsettings_change", args=[config.pk]))
