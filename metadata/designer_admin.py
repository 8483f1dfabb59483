"""The shell every definition designer in admin shares (forms, workflows): a ModelAdmin for a kind's
proxy model of Definition with one row per definition, designers-only permissions, the design page's
URL, versions with diff and roll back. Each app adds its kind's views (save, checks, preview,
export) and words; the designer's own page and its services stay in that app."""

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

from lowcode.api.parsers import JSONTooDeep, load_json
from metadata import services as metadata
from metadata.exceptions import MetadataError


def bad_request(field: str, message: str, code: str = "invalid") -> JsonResponse:
    """400 in the API's error format, naming `field`."""
    return JsonResponse({field: [{"code": code, "message": message}]}, status=400)


def json_post(request) -> dict | None:
    """The POST's JSON object, or None."""
    if request.method != "POST":
        return None
    try:
        data = load_json(request.body)
    except (ValueError, JSONTooDeep):
        return None
    return data if isinstance(data, dict) else None


def shown_as_json(value) -> str:
    """A diff's value as JSON, as the designers' JSON views show them (not Python's notation)."""
    return "" if value is None else json.dumps(value, ensure_ascii=False)


class DefinitionDesignerAdmin(admin.ModelAdmin):
    """A kind's designer in admin. Subclasses set `kind`, `stylesheet`, `css_prefix`, the words
    (`refused`, `missing`, `versions_title`, `diff_title`: lazy gettext with %(key)s...) and add
    their views with `designer_urls`; `design_view` is theirs."""

    kind: str
    stylesheet: str  # The designer's CSS (static path), for the versions and diff pages.
    css_prefix: str  # Class prefix of those pages' elements ("fd": fd-versions, fd-version-draft...).
    export_heading = None  # Set with `export_url`: a column of the versions linking each version's export.
    refused: str  # PermissionDenied's message.
    missing: str  # Http404's message, with %(key)s.
    versions_title: str  # With %(key)s.
    diff_title: str  # With %(key)s, %(old)s, %(new)s.

    list_display_links = None
    search_fields = ["key", "body__label"]
    ordering = ["key"]

    # ---- Who may see and design: designers only ----

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
        return False  # Versions are history (instances and submissions use them); archiving retires one.

    def _check(self, request) -> None:
        if not self._may_design(request):
            raise PermissionDenied(self.refused)

    # ---- The list: one row per definition ----

    def get_queryset(self, request):
        return metadata.listed(self.kind, super().get_queryset(request))

    @admin.display(description=gettext_lazy("label"), ordering="body__label")
    def label(self, obj):
        return format_html('<a href="{}">{}</a>', self.url("design", obj.key), obj.body.get("label") or obj.key)

    @admin.display(description=gettext_lazy("published version"))
    def published(self, obj):
        return obj.published_version or "-"

    @admin.display(description=gettext_lazy("unpublished draft"), boolean=True)
    def draft(self, obj):
        return obj.has_draft

    # ---- Pages and endpoints ----

    @property
    def url_name(self) -> str:
        return f"{self.model._meta.app_label}_{self.model._meta.model_name}"

    def url(self, action: str, *args) -> str:
        return reverse(f"admin:{self.url_name}_{action}", args=args)

    def designer_urls(self) -> list[tuple[str, object, str]]:
        """The kind's own endpoints: (route below the admin's, view, action: the URL is named
        <app>_<model>_<action>)."""
        return []

    def get_urls(self):
        wrap = self.admin_site.admin_view
        own = [("design/<str:key>/", self.design_view, "design"), *self.designer_urls(),
               ("design/<str:key>/versions/", self.versions_view, "versions"),
               ("design/<str:key>/diff/<int:old>/<int:new>/", self.diff_view, "diff"),
               ("design/<str:key>/rollback/<int:version>/", self.rollback_view, "rollback")]
        return [*(path(route, wrap(view), name=f"{self.url_name}_{action}") for route, view, action in own),
                *super().get_urls()]

    def _page(self, request, template: str, title: str, **context):
        return TemplateResponse(request, template, {
            **self.admin_site.each_context(request), "opts": self.model._meta, "title": title, **context})

    def _definition(self, key: str):
        definition = metadata.current(self.kind, key)
        if definition is None:
            raise Http404(self.missing % {"key": key})
        return definition

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self._check(request)
        definition = self.model.objects.filter(pk=object_id).first() if str(object_id).isdigit() else None
        if definition is None:
            raise Http404
        return redirect(self.url("design", definition.key))

    def export_url(self, key: str, version: int) -> str:
        return ""

    def versions_view(self, request, key: str):
        self._check(request)
        versions = metadata.versions(self.kind, key)
        if not versions:
            raise Http404(self.missing % {"key": key})
        older = dict(zip([version.version for version in versions], versions[1:], strict=False))
        rows = [{"definition": version, "older": older.get(version.version),
                 "diff_url": self.url("diff", key, older[version.version].version, version.version)
                 if version.version in older else "",
                 "rollback_url": self.url("rollback", key, version.version),
                 "export_url": self.export_url(key, version.version)} for version in versions]
        return self._page(request, "metadata/designer_versions.html", self.versions_title % {"key": key},
                          key=key, rows=rows, design_url=self.url("design", key), **self._look())

    def diff_view(self, request, key: str, old: int, new: int):
        self._check(request)
        try:
            comparison = metadata.compare(self.kind, key, old, new)
        except MetadataError as error:
            raise Http404(str(error)) from None
        changes = [{**change, "old": shown_as_json(change["old"]), "new": shown_as_json(change["new"])}
                   for change in comparison["changes"]]
        return self._page(request, "metadata/designer_diff.html",
                          self.diff_title % {"key": key, "old": old, "new": new}, key=key, old=old, new=new,
                          summary=comparison["summary"], changes=changes,
                          versions_url=self.url("versions", key), **self._look())

    def _look(self) -> dict:
        return {"stylesheet": self.stylesheet, "css_prefix": self.css_prefix, "export_heading": self.export_heading}

    def rollback_view(self, request, key: str, version: int):
        """POST: publish version `version` again, as a new version."""
        self._check(request)
        if request.method != "POST":
            return redirect(self.url("versions", key))
        try:
            published = metadata.rollback(self.kind, key, to_version=version, author=request.user)
        except MetadataError as error:
            self.message_user(request, str(error), messages.ERROR)
        else:
            self.message_user(request, _("Version %(old)s of %(key)s is live again, as version %(new)s.")
                              % {"old": version, "key": key, "new": published.version}, messages.SUCCESS)
        return redirect(self.url("versions", key))
