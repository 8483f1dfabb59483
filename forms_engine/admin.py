"""Forms in admin (FM-5): the list of forms, "Add form" (blank, a template, or from an entity) and
the designer with its endpoints (save, publish, preview, condition check), versions with diff and
roll back. Who may design: metadata.services.may_design (staff with designer access)."""

from __future__ import annotations

from django.contrib import admin
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from forms_engine import designer, rendering, starters
from forms_engine.models import FormDefinition
from forms_engine.submissions_admin import FormSubmissionAdmin  # noqa: F401  (registers the submissions' admin)
from metadata import services as metadata
from metadata.designer_admin import DefinitionDesignerAdmin, bad_request, json_post
from metadata.exceptions import DefinitionValidationError, MetadataError


def _body_errors(errors: list[dict]) -> JsonResponse:
    return JsonResponse({"body": errors}, status=400)


@admin.register(FormDefinition)
class FormDefinitionAdmin(DefinitionDesignerAdmin):
    kind = designer.KIND
    stylesheet = "forms_engine/designer.css"
    css_prefix = "fd"
    refused = gettext_lazy("Only designers (staff users with designer access) design forms.")
    missing = gettext_lazy("There is no form %(key)s.")
    versions_title = gettext_lazy("Versions of form %(key)s")
    diff_title = gettext_lazy("Form %(key)s: version %(old)s → %(new)s")
    list_display = ["label", "key", "entity", "published", "draft", "updated_at"]

    @admin.display(description=gettext_lazy("entity"))
    def entity(self, obj):
        return obj.body.get("entity") or _("(standalone)")

    # ---- Pages and endpoints ----

    def designer_urls(self):
        return [("check/", self.check_view, "check"), ("design/<str:key>/save/", self.save_view, "save"),
                ("design/<str:key>/preview/", self.preview_view, "preview"),
                ("design/<str:key>/validate/", self.validate_view, "validate")]

    def add_view(self, request, form_url="", extra_context=None):
        """Start a form: blank, from a template or from an entity (one click each)."""
        self._check(request)
        errors, key = {}, ""
        if request.method == "POST":
            key = request.POST.get("key", "")
            started = designer.start_form(request.POST.get("start", ""), key, author=request.user)
            if started.definition is not None:
                return redirect(self.url("design", started.definition.key))
            errors = started.errors
        return self._page(request, "forms_engine/designer_add.html", _("Add form"), key=key, errors=errors,
                          templates=[(name, label) for name, (label, _build) in starters.STARTERS.items()],
                          entities=designer.entity_fields())

    def design_view(self, request, key: str):
        self._check(request)
        definition = self._definition(key)
        urls = {action: self.url(action, key) for action in ("save", "preview", "validate")}
        urls["check"] = reverse(f"admin:{self.url_name}_check")
        published = metadata.get_published(designer.KIND, key)
        return self._page(request, "forms_engine/designer.html", _("Design form %(key)s") % {"key": key},
                          key=key, definition=definition, published=published,
                          # The preview's scripts load when the Preview tab first opens (designer.js).
                          config={**designer.config(key, definition.body, urls=urls),
                                  "preview_media": rendering.media_urls()})

    def save_view(self, request, key: str):
        """POST {"body", "publish": bool, "note"}: save the draft (and publish it); 400 names what is wrong."""
        self._check(request)
        if request.method != "POST":
            return JsonResponse({"detail": _("Use POST."), "code": "method_not_allowed"}, status=405)
        self._definition(key)
        data = json_post(request)
        if data is None or not isinstance(data.get("body"), dict):
            return bad_request("body", _("Send a JSON object whose body is the form (an object)."))
        note = data.get("note") if isinstance(data.get("note"), str) else ""
        try:
            saved = designer.save(key, data["body"], author=request.user, publish=data.get("publish") is True,
                                  note=note[:255])
        except DefinitionValidationError as error:
            return _body_errors(error.errors)
        except MetadataError as error:
            return bad_request("__all__", str(error), "conflict")
        return JsonResponse({"version": saved.version, "status": saved.status})

    def validate_view(self, request, key: str):
        """POST {"body"}: the `form` kind's verdict, nothing saved (the JSON view's check)."""
        self._check(request)
        data = json_post(request)
        if data is None:
            return bad_request("body", _("Send a JSON object whose body is the form (an object)."))
        errors = designer.body_errors(data.get("body"))
        return _body_errors(errors) if errors else JsonResponse({"body": []})

    def preview_view(self, request, key: str):
        """POST {"body"}: the form rendered as its users will see it, {"html": ...}."""
        self._check(request)
        data = json_post(request)
        if data is None:
            return bad_request("body", _("Send a JSON object whose body is the form (an object)."))
        errors = designer.body_errors(data.get("body"))
        if errors:
            return _body_errors(errors)
        return JsonResponse({"html": str(designer.preview(key, data["body"], request=request))})

    def check_view(self, request):
        """POST {"body", "expression"}: a condition's check as the builder types."""
        self._check(request)
        data = json_post(request)
        if data is None or not isinstance(data.get("expression"), str):
            return bad_request("expression", _("Send a JSON object with the expression (text) and the form's body."))
        return JsonResponse(designer.check_condition(data.get("body"), data["expression"],
                                                     condition=data.get("condition") is not False))
