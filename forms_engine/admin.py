"""Forms in admin (FM-5): the list of forms, "Add form" (blank, a template, or from an entity) and
the designer with its endpoints (save, publish, preview, condition check), versions with diff and
roll back. Who may design: metadata.services.may_design (staff with designer access)."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from forms_engine import designer, rendering, starters
from forms_engine.models import FormDefinition
from forms_engine.submissions_admin import FormSubmissionAdmin  # noqa: F401  (registers the submissions' admin)
from lowcode.api.parsers import JSONTooDeep, load_json
from metadata import services as metadata
from metadata.exceptions import DefinitionValidationError, MetadataError


def _bad_request(field: str, message: str, code: str = "invalid") -> JsonResponse:
    return JsonResponse({field: [{"code": code, "message": message}]}, status=400)


def _body_errors(errors: list[dict]) -> JsonResponse:
    return JsonResponse({"body": errors}, status=400)


def _json_post(request) -> dict | None:
    """The request's JSON object, or None."""
    try:
        data = load_json(request.body)
    except (ValueError, JSONTooDeep):
        return None
    return data if isinstance(data, dict) else None


@admin.register(FormDefinition)
class FormDefinitionAdmin(admin.ModelAdmin):
    list_display = ["form_label", "key", "entity", "published", "draft", "updated_at"]
    list_display_links = None
    search_fields = ["key", "body__label"]
    ordering = ["key"]

    # ---- Who may see and design forms: designers only ----

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
        return False  # Versions are history; a form leaves service by archiving (metadata).

    def _check(self, request) -> None:
        if not self._may_design(request):
            raise PermissionDenied(_("Only designers (staff users with designer access) design forms."))

    # ---- The list: one row per form ----

    def get_queryset(self, request):
        return designer.listed(super().get_queryset(request))

    @admin.display(description=gettext_lazy("label"), ordering="body__label")
    def form_label(self, obj):
        return format_html('<a href="{}">{}</a>', reverse("admin:forms_engine_formdefinition_design", args=[obj.key]),
                           obj.body.get("label") or obj.key)

    @admin.display(description=gettext_lazy("entity"))
    def entity(self, obj):
        return obj.body.get("entity") or _("(standalone)")

    @admin.display(description=gettext_lazy("published version"))
    def published(self, obj):
        return obj.published_version or "-"

    @admin.display(description=gettext_lazy("unpublished draft"), boolean=True)
    def draft(self, obj):
        return obj.has_draft

    # ---- Pages and endpoints ----

    def get_urls(self):
        wrap = self.admin_site.admin_view
        name = "forms_engine_formdefinition"
        return [
            path("check/", wrap(self.check_view), name=f"{name}_check"),
            path("design/<str:key>/", wrap(self.design_view), name=f"{name}_design"),
            path("design/<str:key>/save/", wrap(self.save_view), name=f"{name}_save"),
            path("design/<str:key>/preview/", wrap(self.preview_view), name=f"{name}_preview"),
            path("design/<str:key>/validate/", wrap(self.validate_view), name=f"{name}_validate"),
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
            raise Http404(_("There is no form %(key)s.") % {"key": key})
        return definition

    def add_view(self, request, form_url="", extra_context=None):
        """Start a form: blank, from a template or from an entity (one click each)."""
        self._check(request)
        errors, key = {}, ""
        if request.method == "POST":
            key = request.POST.get("key", "")
            started = designer.start_form(request.POST.get("start", ""), key, author=request.user)
            if started.definition is not None:
                return redirect("admin:forms_engine_formdefinition_design", started.definition.key)
            errors = started.errors
        return self._page(request, "forms_engine/designer_add.html", _("Add form"), key=key, errors=errors,
                          templates=[(name, label) for name, (label, _build) in starters.STARTERS.items()],
                          entities=designer.entity_fields())

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self._check(request)
        definition = FormDefinition.objects.filter(pk=object_id).first() if str(object_id).isdigit() else None
        if definition is None:
            raise Http404
        return redirect("admin:forms_engine_formdefinition_design", definition.key)

    def design_view(self, request, key: str):
        self._check(request)
        definition = self._definition(key)
        name = "admin:forms_engine_formdefinition"
        urls = {action: reverse(f"{name}_{action}", args=[key]) for action in ("save", "preview", "validate")}
        urls["check"] = reverse(f"{name}_check")
        published = metadata.get_published(designer.KIND, key)
        return self._page(request, "forms_engine/designer.html", _("Design form %(key)s") % {"key": key},
                          key=key, definition=definition, published=published, form_media=rendering.media(),
                          config=designer.config(key, definition.body, urls=urls))

    def save_view(self, request, key: str):
        """POST {"body", "publish": bool, "note"}: save the draft (and publish it); 400 names what is wrong."""
        self._check(request)
        if request.method != "POST":
            return JsonResponse({"detail": _("Use POST."), "code": "method_not_allowed"}, status=405)
        self._definition(key)
        data = _json_post(request)
        if data is None or not isinstance(data.get("body"), dict):
            return _bad_request("body", _("Send a JSON object whose body is the form (an object)."))
        note = data.get("note") if isinstance(data.get("note"), str) else ""
        try:
            saved = designer.save(key, data["body"], author=request.user, publish=data.get("publish") is True,
                                  note=note[:255])
        except DefinitionValidationError as error:
            return _body_errors(error.errors)
        except MetadataError as error:
            return _bad_request("__all__", str(error), "conflict")
        return JsonResponse({"version": saved.version, "status": saved.status})

    def validate_view(self, request, key: str):
        """POST {"body"}: the `form` kind's verdict, nothing saved (the JSON view's check)."""
        self._check(request)
        data = _json_post(request)
        if request.method != "POST" or data is None:
            return _bad_request("body", _("Send a JSON object whose body is the form (an object)."))
        errors = designer.body_errors(data.get("body"))
        return _body_errors(errors) if errors else JsonResponse({"body": []})

    def preview_view(self, request, key: str):
        """POST {"body"}: the form rendered as its users will see it, {"html": ...}."""
        self._check(request)
        data = _json_post(request)
        if request.method != "POST" or data is None:
            return _bad_request("body", _("Send a JSON object whose body is the form (an object)."))
        errors = designer.body_errors(data.get("body"))
        if errors:
            return _body_errors(errors)
        return JsonResponse({"html": str(designer.preview(key, data["body"], request=request))})

    def check_view(self, request):
        """POST {"body", "expression"}: a condition's check as the builder types."""
        self._check(request)
        data = _json_post(request)
        if request.method != "POST" or data is None or not isinstance(data.get("expression"), str):
            return _bad_request("expression", _("Send a JSON object with the expression (text) and the form's body."))
        return JsonResponse(designer.check_condition(data.get("body"), data["expression"],
                                                     condition=data.get("condition") is not False))

    def versions_view(self, request, key: str):
        self._check(request)
        versions = designer.versions(key)
        if not versions:
            raise Http404(_("There is no form %(key)s.") % {"key": key})
        return self._page(request, "forms_engine/designer_versions.html",
                          _("Versions of form %(key)s") % {"key": key}, key=key, versions=versions,
                          pairs=list(zip(versions[1:], versions, strict=False)))

    def diff_view(self, request, key: str, old: int, new: int):
        self._check(request)
        try:
            comparison = metadata.compare(designer.KIND, key, old, new)
        except MetadataError as error:
            raise Http404(str(error)) from None
        # Values as JSON, as the designer's JSON view shows them (not Python's notation).
        changes = [{**change, **{side: "" if change[side] is None else json.dumps(change[side], ensure_ascii=False)
                                 for side in ("old", "new")}} for change in comparison["changes"]]
        return self._page(request, "forms_engine/designer_diff.html",
                          _("Form %(key)s: version %(old)s → %(new)s") % {"key": key, "old": old, "new": new},
                          key=key, old=old, new=new, summary=comparison["summary"], changes=changes)

    def rollback_view(self, request, key: str, version: int):
        """POST: publish version `version` again, as a new version."""
        self._check(request)
        if request.method != "POST":
            return redirect("admin:forms_engine_formdefinition_versions", key)
        try:
            published = metadata.rollback(designer.KIND, key, to_version=version, author=request.user)
        except MetadataError as error:
            self.message_user(request, str(error), messages.ERROR)
        else:
            self.message_user(request, _("Version %(old)s of %(key)s is live again, as version %(new)s.")
                              % {"old": version, "key": key, "new": published.version}, messages.SUCCESS)
        return redirect("admin:forms_engine_formdefinition_versions", key)
