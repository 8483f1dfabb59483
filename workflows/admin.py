"""Workflows in admin (WF-6, WF-7): the list of workflows, "Add workflow", the BPMN designer with
its endpoints (check, save draft, publish, condition check), BPMN export, versions with diff and
roll back. Who may design: metadata.services.may_design (staff with designer access)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audit.admin import AuditedAdminMixin
from lowcode.admin_site import ReadOnlyAdminMixin
from lowcode.api.parsers import JSONTooDeep, load_json
from metadata import services as metadata
from metadata.exceptions import DefinitionValidationError, MetadataError
from workflows import admin_monitoring, designer  # noqa: F401 (admin_monitoring: the monitoring admin)
from workflows.models import WebhookDelivery, WebhookEndpoint, WorkflowDefinition

NAME = "admin:workflows_workflowdefinition"


def _bad_request(field: str, message: str, code: str = "invalid") -> JsonResponse:
    return JsonResponse({field: [{"code": code, "message": message}]}, status=400)


def _json_post(request) -> dict | None:
    """The request's JSON object, or None."""
    try:
        data = load_json(request.body)
    except (ValueError, JSONTooDeep):
        return None
    return data if isinstance(data, dict) else None


def _xml_of(request) -> tuple[dict | None, str | None]:
    """The JSON object of a POST and its "xml" text, or (None, None)."""
    data = _json_post(request) if request.method == "POST" else None
    if data is None or not isinstance(data.get("xml"), str) or not data["xml"].strip():
        return None, None
    return data, data["xml"]


def _refused(checked: designer.Checked) -> JsonResponse:
    """400 naming what is wrong: the XML's import errors, or the body's problems (by element)."""
    if checked.errors or checked.body is None:
        return JsonResponse({"xml": checked.errors, **checked.as_json()}, status=400)
    return JsonResponse({"body": checked.problems, **checked.as_json()}, status=400)


@admin.register(WorkflowDefinition)
class WorkflowDefinitionAdmin(admin.ModelAdmin):
    list_display = ["workflow_label", "key", "entity", "published", "draft", "updated_at", "bpmn"]
    list_display_links = None
    search_fields = ["key", "body__label"]
    ordering = ["key"]

    # ---- Who may see and design workflows: designers only ----

    def _may_design(self, request) -> bool:
        return metadata.may_design(request.user)

    def has_module_permission(self, request):
        return self._may_design(request)

    def has_view_permission(self, request, obj=None):
        return self._may_design(request)

    def has_add_permission(self, request):
        return self._may_design(request)

    def has_change_permission(self, request, obj=None):
        return self._may_design(request)

    def has_delete_permission(self, request, obj=None):
        return False  # Versions are history (running instances use them); a workflow leaves by archiving.

    def _check(self, request) -> None:
        if not self._may_design(request):
            raise PermissionDenied(_("Only designers (staff users with designer access) design workflows."))

    # ---- The list: one row per workflow ----

    def get_queryset(self, request):
        return designer.listed(super().get_queryset(request))

    @admin.display(description=gettext_lazy("label"), ordering="body__label")
    def workflow_label(self, obj):
        return format_html('<a href="{}">{}</a>', reverse(f"{NAME}_design", args=[obj.key]),
                           obj.body.get("label") or obj.key)

    @admin.display(description=gettext_lazy("entity"))
    def entity(self, obj):
        return obj.body.get("entity") or "-"

    @admin.display(description=gettext_lazy("published version"))
    def published(self, obj):
        return obj.published_version or "-"

    @admin.display(description=gettext_lazy("unpublished draft"), boolean=True)
    def draft(self, obj):
        return obj.has_draft

    @admin.display(description=gettext_lazy("BPMN"))
    def bpmn(self, obj):
        return format_html('<a href="{}">{}</a>', reverse(f"{NAME}_export", args=[obj.key]), _("Export"))

    # ---- Pages and endpoints ----

    def get_urls(self):
        wrap = self.admin_site.admin_view
        name = "workflows_workflowdefinition"
        return [
            path("expression/", wrap(self.expression_view), name=f"{name}_expression"),
            path("design/<str:key>/", wrap(self.design_view), name=f"{name}_design"),
            path("design/<str:key>/check/", wrap(self.check_view), name=f"{name}_check"),
            path("design/<str:key>/save/", wrap(self.save_view), name=f"{name}_save"),
            path("design/<str:key>/export/", wrap(self.export_view), name=f"{name}_export"),
            path("design/<str:key>/versions/", wrap(self.versions_view), name=f"{name}_versions"),
            path("design/<str:key>/diff/<int:old>/<int:new>/", wrap(self.diff_view), name=f"{name}_diff"),
            path("design/<str:key>/rollback/<int:version>/", wrap(self.rollback_view), name=f"{name}_rollback"),
            *super().get_urls(),
        ]

    def _page(self, request, template: str, title: str, **context):
        return TemplateResponse(request, template, {
            **self.admin_site.each_context(request), "opts": self.model._meta, "title": title, **context})

    def _definition(self, key: str):
        definition = designer.current(key)
        if definition is None:
            raise Http404(_("There is no workflow %(key)s.") % {"key": key})
        return definition

    def add_view(self, request, form_url="", extra_context=None):
        """Start a workflow (a start joined to an end) and open it in the designer."""
        self._check(request)
        errors, key, label = {}, "", ""
        if request.method == "POST":
            key, label = request.POST.get("key", ""), request.POST.get("label", "")
            definition, errors = designer.start_workflow(key, label, author=request.user)
            if definition is not None:
                return redirect(f"{NAME}_design", definition.key)
        return self._page(request, "workflows/designer_add.html", _("Add workflow"), key=key, label=label,
                          errors=errors)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self._check(request)
        definition = WorkflowDefinition.objects.filter(pk=object_id).first() if str(object_id).isdigit() else None
        if definition is None:
            raise Http404
        return redirect(f"{NAME}_design", definition.key)

    def design_view(self, request, key: str):
        self._check(request)
        definition = self._definition(key)
        urls = {action: reverse(f"{NAME}_{action}", args=[key]) for action in ("check", "save", "export", "versions")}
        urls["expression"] = reverse(f"{NAME}_expression")
        return self._page(request, "workflows/designer.html", _("Design workflow %(key)s") % {"key": key},
                          key=key, definition=definition, published=metadata.get_published(designer.KIND, key),
                          config=designer.config(definition, urls=urls))

    def check_view(self, request, key: str):
        """POST {"xml"}: what the diagram would be refused for, nothing saved (markers, live)."""
        self._check(request)
        _data, xml = _xml_of(request)
        if xml is None:
            return _bad_request("xml", _("Send a JSON object whose xml is the BPMN diagram (text)."))
        return JsonResponse(designer.check(xml).as_json())

    def save_view(self, request, key: str):
        """POST {"xml", "publish": bool, "note"}: save the draft (and publish it); 400 names what is wrong."""
        self._check(request)
        self._definition(key)
        data, xml = _xml_of(request)
        if xml is None:
            return _bad_request("xml", _("Send a JSON object whose xml is the BPMN diagram (text)."))
        note = data.get("note") if isinstance(data.get("note"), str) else ""
        try:
            saved, checked = designer.save(key, xml, author=request.user, publish=data.get("publish") is True,
                                           note=note[:255])
        except DefinitionValidationError as error:  # A rule that depends on others' publishes since the check.
            return JsonResponse({"body": error.errors}, status=400)
        except MetadataError as error:
            return _bad_request("__all__", str(error), "conflict")
        if saved is None:
            return _refused(checked)
        return JsonResponse({"version": saved.version, "status": saved.status, **checked.as_json()})

    def expression_view(self, request):
        """POST {"entity", "expression", "condition": bool}: a condition's check as the builder types."""
        self._check(request)
        data = _json_post(request) if request.method == "POST" else None
        if data is None or not isinstance(data.get("expression"), str):
            return _bad_request("expression", _("Send a JSON object with the expression (text) and the entity's key."))
        entity = data.get("entity") if isinstance(data.get("entity"), str) else ""
        return JsonResponse(designer.check_expression(entity, data["expression"],
                                                      condition=data.get("condition") is not False))

    def export_view(self, request, key: str):
        """The workflow as a BPMN 2.0 file: the version asked (?version=N), else what the designer opens."""
        self._check(request)
        version = request.GET.get("version", "")
        if version:
            try:
                definition = metadata.get_version(designer.KIND, key, int(version))
            except (ValueError, MetadataError):
                raise Http404(_("There is no version %(version)s of %(key)s.") % {"version": version, "key": key}) \
                    from None
        else:
            definition = self._definition(key)
        response = HttpResponse(designer.export_xml(definition), content_type="application/xml; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{key}-v{definition.version}.bpmn"'
        return response

    def versions_view(self, request, key: str):
        self._check(request)
        versions = designer.versions(key)
        if not versions:
            raise Http404(_("There is no workflow %(key)s.") % {"key": key})
        return self._page(request, "workflows/designer_versions.html",
                          _("Versions of workflow %(key)s") % {"key": key}, key=key, versions=versions,
                          pairs=list(zip(versions[1:], versions, strict=False)))

    def diff_view(self, request, key: str, old: int, new: int):
        self._check(request)
        try:
            comparison = metadata.compare(designer.KIND, key, old, new)
        except MetadataError as error:
            raise Http404(str(error)) from None
        return self._page(request, "workflows/designer_diff.html",
                          _("Workflow %(key)s: version %(old)s → %(new)s") % {"key": key, "old": old, "new": new},
                          key=key, old=old, new=new, comparison=comparison)

    def rollback_view(self, request, key: str, version: int):
        """POST: publish version `version` again, as a new version."""
        self._check(request)
        if request.method != "POST":
            return redirect(f"{NAME}_versions", key)
        try:
            published = metadata.rollback(designer.KIND, key, to_version=version, author=request.user)
        except MetadataError as error:
            self.message_user(request, str(error), messages.ERROR)
        else:
            self.message_user(request, _("Version %(old)s of %(key)s is live again, as version %(new)s.")
                              % {"old": version, "key": key, "new": published.version}, messages.SUCCESS)
        return redirect(f"{NAME}_versions", key)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """Where webhook service tasks post their events (`expense.approved` to the ERP)."""

    list_display = ["event", "url", "active"]
    list_filter = ["active", "event"]
    search_fields = ["event", "url"]
    audit_hidden_fields = ("secret",)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["event", "endpoint", "attempts", "status_code", "delivered_at", "created_at"]
    list_filter = ["event", "status_code", "endpoint"]
    list_select_related = ["endpoint"]
    fields = ["endpoint", "event", "payload", "attempts", "status_code", "response", "delivered_at", "created_at"]
    readonly_fields = fields
