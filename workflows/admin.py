"""Workflows in admin (WF-6, WF-7): the list of workflows, "Add workflow", the BPMN designer with
its endpoints (check, save draft, publish, condition check), BPMN export, versions with diff and
roll back. Who may design: metadata.services.may_design (staff with designer access)."""

from __future__ import annotations

from django.contrib import admin
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audit.admin import AuditedAdminMixin
from lowcode.admin_site import ReadOnlyAdminMixin
from metadata import services as metadata
from metadata.designer_admin import DefinitionDesignerAdmin, bad_request, json_post
from metadata.exceptions import DefinitionValidationError, MetadataError
from workflows import admin_monitoring, designer  # noqa: F401 (admin_monitoring: the monitoring admin)
from workflows.models import WebhookDelivery, WebhookEndpoint, WorkflowDefinition


def _xml_of(request) -> tuple[dict | None, str | None]:
    """The JSON object of a POST and its "xml" text, or (None, None)."""
    data = json_post(request)
    if data is None or not isinstance(data.get("xml"), str) or not data["xml"].strip():
        return None, None
    return data, data["xml"]


def _refused(checked: designer.Checked) -> JsonResponse:
    """400 naming what is wrong: the XML's import errors, or the body's problems (by element)."""
    if checked.errors or checked.body is None:
        return JsonResponse({"xml": checked.errors, **checked.as_json()}, status=400)
    return JsonResponse({"body": checked.problems, **checked.as_json()}, status=400)


@admin.register(WorkflowDefinition)
class WorkflowDefinitionAdmin(DefinitionDesignerAdmin):
    kind = designer.KIND
    stylesheet = "workflows/designer.css"
    css_prefix = "wd"
    export_heading = gettext_lazy("BPMN")
    refused = gettext_lazy("Only designers (staff users with designer access) design workflows.")
    missing = gettext_lazy("There is no workflow %(key)s.")
    versions_title = gettext_lazy("Versions of workflow %(key)s")
    diff_title = gettext_lazy("Workflow %(key)s: version %(old)s → %(new)s")
    list_display = ["label", "key", "entity", "published", "draft", "updated_at", "bpmn"]

    @admin.display(description=gettext_lazy("entity"))
    def entity(self, obj):
        return obj.body.get("entity") or "-"

    @admin.display(description=gettext_lazy("BPMN"))
    def bpmn(self, obj):
        return format_html('<a href="{}">{}</a>', self.url("export", obj.key), _("Export"))

    def export_url(self, key: str, version: int) -> str:
        return f"{self.url('export', key)}?version={version}"

    # ---- Pages and endpoints ----

    def designer_urls(self):
        return [("expression/", self.expression_view, "expression"),
                ("design/<str:key>/check/", self.check_view, "check"),
                ("design/<str:key>/save/", self.save_view, "save"),
                ("design/<str:key>/export/", self.export_view, "export")]

    def add_view(self, request, form_url="", extra_context=None):
        """Start a workflow (a start joined to an end) and open it in the designer."""
        self._check(request)
        errors, key, label = {}, "", ""
        if request.method == "POST":
            key, label = request.POST.get("key", ""), request.POST.get("label", "")
            definition, errors = designer.start_workflow(key, label, author=request.user)
            if definition is not None:
                return redirect(self.url("design", definition.key))
        return self._page(request, "workflows/designer_add.html", _("Add workflow"), key=key, label=label,
                          errors=errors)

    def design_view(self, request, key: str):
        self._check(request)
        definition = self._definition(key)
        urls = {action: self.url(action, key) for action in ("check", "save", "export", "versions")}
        urls["expression"] = self.url("expression")
        return self._page(request, "workflows/designer.html", _("Design workflow %(key)s") % {"key": key},
                          key=key, definition=definition, published=metadata.get_published(designer.KIND, key),
                          config=designer.config(definition, urls=urls))

    def check_view(self, request, key: str):
        """POST {"xml"}: what the diagram would be refused for, nothing saved (markers, live)."""
        self._check(request)
        _data, xml = _xml_of(request)
        if xml is None:
            return bad_request("xml", _("Send a JSON object whose xml is the BPMN diagram (text)."))
        return JsonResponse(designer.check(xml).as_json())

    def save_view(self, request, key: str):
        """POST {"xml", "publish": bool, "note"}: save the draft (and publish it); 400 names what is wrong."""
        self._check(request)
        self._definition(key)
        data, xml = _xml_of(request)
        if xml is None:
            return bad_request("xml", _("Send a JSON object whose xml is the BPMN diagram (text)."))
        note = data.get("note") if isinstance(data.get("note"), str) else ""
        try:
            saved, checked = designer.save(key, xml, author=request.user, publish=data.get("publish") is True,
                                           note=note[:255])
        except DefinitionValidationError as error:  # A rule that depends on others' publishes since the check.
            return JsonResponse({"body": error.errors}, status=400)
        except MetadataError as error:
            return bad_request("__all__", str(error), "conflict")
        if saved is None:
            return _refused(checked)
        return JsonResponse({"version": saved.version, "status": saved.status, **checked.as_json()})

    def expression_view(self, request):
        """POST {"entity", "expression", "condition": bool}: a condition's check as the builder types."""
        self._check(request)
        data = json_post(request)
        if data is None or not isinstance(data.get("expression"), str):
            return bad_request("expression", _("Send a JSON object with the expression (text) and the entity's key."))
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
