"""Scripts in admin (SC-1): edit the code, try it in the test console, read the last runs."""

from __future__ import annotations

import json

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import path
from django.utils.translation import gettext as _

from dynamic_models.records_api import RecordsApiError
from lowcode.admin_site import ReadOnlyAdminMixin
from scripts import services
from scripts.models import Script, ScriptRun


@admin.register(Script)
class ScriptAdmin(admin.ModelAdmin):
    list_display = ("key", "name", "enabled", "time_limit", "memory_limit", "updated_at")
    list_filter = ("enabled",)
    search_fields = ("key", "name", "description")
    change_form_template = "admin/scripts/script/change_form.html"

    def get_urls(self):
        return [path("<path:object_id>/run/", self.admin_site.admin_view(self.run_view), name="scripts_script_run"),
                *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        script = self.get_object(request, object_id)
        extra_context = {**(extra_context or {}), "last_runs": services.last_runs(script) if script else [],
                         "console_texts": {"running": _("Running…"), "now": _("just now"), "ms": _("%(ms)s ms"),
                                           "failed": _("The console could not run the script."),
                                           "console": _("Test console")}}
        return super().change_view(request, object_id, form_url, extra_context)

    def run_view(self, request, object_id):
        """The test console's POST: {"params": {...}, "record": {"entity", "id"} | null} -> the run."""
        script = get_object_or_404(Script, pk=object_id)
        if request.method != "POST" or not self.has_change_permission(request, script):
            raise PermissionDenied
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return JsonResponse({"params": [_("Not valid JSON.")]}, status=400)
        params = body.get("params") if isinstance(body, dict) else None
        if not isinstance(params, dict):
            return JsonResponse({"params": [_("Give the params as a JSON object, e.g. {\"amount\": 12}.")]}, status=400)
        try:
            record = services.load_record(request.user, body.get("record"))
        except RecordsApiError as error:
            return JsonResponse({"record": [str(error)]}, status=400)
        run = services.run(script, user=request.user, params=params, record=record, trigger=ScriptRun.Trigger.CONSOLE)
        return JsonResponse({"status": run.status, "status_label": run.get_status_display(), "output": run.output,
                             "logs": run.logs, "error": run.error, "message": run.message,
                             "duration_ms": run.duration_ms, "user": str(run.user or "")})


@admin.register(ScriptRun)
class ScriptRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every run, read-only (SC-1: each run logged)."""

    list_display = ("created_at", "script", "user", "trigger", "status", "error", "duration_ms")
    list_filter = ("status", "trigger", "script")
    list_select_related = ("script", "user")
    date_hierarchy = "created_at"
