"""Stored files in the tenant's admin: read-only, with size, type, uploader, versions and preview.
Staff who may view stored files open them (and their previews) through this admin's own views."""

from django.contrib import admin
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.template.defaultfilters import filesizeformat
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy

from files import services
from files.models import FileAttachment, StoredFile
from files.registries import file_owner_registry
from files.views import file_response
from lowcode.admin_site import ReadOnlyAdminMixin


class FileAttachmentInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = FileAttachment
    fields = ["owner", "owner_key", "object_id", "field", "attached_at", "detached_at"]
    readonly_fields = fields
    extra = 0

    @admin.display(description=gettext_lazy("owner type"))
    def owner(self, attachment):
        owner = file_owner_registry.get(attachment.owner_type) \
            if file_owner_registry.is_registered(attachment.owner_type) else None
        return (owner and owner.verbose_name) or attachment.owner_type


@admin.register(StoredFile)
class StoredFileAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["preview", "name", "size_display", "content_type", "uploaded_by", "created_at", "preview_status"]
    list_display_links = ["name"]
    list_filter = ["content_type", "preview_status"]
    search_fields = ["name", "=sha256"]
    list_select_related = ["uploaded_by"]
    fields = ["name", "download", "preview", "size_display", "content_type", "sha256", "uploaded_by", "created_at",
              "versions", "preview_status"]
    readonly_fields = fields
    inlines = [FileAttachmentInline]

    def get_urls(self):
        view = self.admin_site.admin_view
        return [path("<uuid:file_id>/open/", view(self.open_file), name="files_storedfile_open"),
                path("<uuid:file_id>/preview/", view(self.open_preview), name="files_storedfile_preview"),
                *super().get_urls()]

    def _readable(self, request, file_id) -> StoredFile:
        if not self.has_view_permission(request):
            raise Http404
        return get_object_or_404(StoredFile, pk=file_id)

    def open_file(self, request, file_id):
        return file_response(self._readable(request, file_id))

    def open_preview(self, request, file_id):
        stored_file = self._readable(request, file_id)
        if stored_file.preview_status != StoredFile.PreviewStatus.READY:
            raise Http404
        return file_response(stored_file, preview=True)

    def _url(self, name: str, stored_file: StoredFile) -> str:
        return reverse(f"{self.admin_site.name}:files_storedfile_{name}", args=[stored_file.pk])

    @admin.display(description=gettext_lazy("size"), ordering="size")
    def size_display(self, stored_file):
        return filesizeformat(stored_file.size)

    @admin.display(description=gettext_lazy("preview"))
    def preview(self, stored_file):
        if stored_file.preview_status != StoredFile.PreviewStatus.READY:
            return stored_file.get_preview_status_display()
        return format_html('<img src="{}" alt="" style="max-width:80px;max-height:80px">',
                           self._url("preview", stored_file))

    @admin.display(description=gettext_lazy("file"))
    def download(self, stored_file):
        return format_html('<a href="{}">{}</a>', self._url("open", stored_file), stored_file.name)

    @admin.display(description=gettext_lazy("versions"))
    def versions(self, stored_file):
        return format_html("<ol>{}</ol>", format_html_join(
            "", '<li><a href="{}">{}</a> ({}, {})</li>',
            ((reverse(f"{self.admin_site.name}:files_storedfile_change", args=[version.pk]), version.name,
              filesizeformat(version.size), version.created_at.strftime("%Y-%m-%d %H:%M"))
             for version in services.versions(stored_file))))
