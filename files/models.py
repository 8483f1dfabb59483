"""Stored files (FL-1) and the records' fields that use them, in the tenant's schema."""

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from lowcode.models import TimestampedModel


class StoredFile(TimestampedModel):
    """One uploaded file: its bytes are the blob `blob_key` on the default storage (under the
    tenant's prefix), shared by every StoredFile of the tenant with the same SHA-256."""

    class PreviewStatus(models.TextChoices):
        NONE = "none", _("None")
        PENDING = "pending", _("Pending")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed")

    # uuid4: ids in JSON and URLs are not guessable.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(_("name"), max_length=255, help_text=_("The client's file name, shown only."))
    blob_key = models.CharField(_("storage key"), max_length=200, db_index=True, editable=False)
    size = models.PositiveBigIntegerField(_("size (bytes)"))
    content_type = models.CharField(_("content type"), max_length=127)
    sha256 = models.CharField(_("SHA-256"), max_length=64, db_index=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+", verbose_name=_("uploaded by"))
    # PROTECT: a version stays while a later one names it (garbage collection removes the newest first).
    previous = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="next_versions", verbose_name=_("previous version"))
    preview_key = models.CharField(_("preview key"), max_length=220, blank=True, editable=False)
    preview_status = models.CharField(_("preview"), max_length=10, choices=PreviewStatus,
                                      default=PreviewStatus.NONE)

    class Meta:
        verbose_name = _("stored file")
        verbose_name_plural = _("stored files")
        ordering = ["-created_at"]

    def __str__(self):
        return self.name

    def later_version_ids(self) -> set:
        """This file's id and those of every later version of it."""
        ids, frontier = {self.pk}, {self.pk}
        while frontier:
            frontier = set(StoredFile.objects.filter(previous_id__in=frontier).values_list("pk", flat=True)) - ids
            ids |= frontier
        return ids


class FileAttachment(models.Model):
    """A record's field uses a file. Kept (with `detached_at`) when the field lets it go, so
    former versions and the audit history still reach it."""

    stored_file = models.ForeignKey(StoredFile, on_delete=models.PROTECT, related_name="attachments",
                                    verbose_name=_("file"))
    owner_type = models.CharField(_("owner type"), max_length=40)
    owner_key = models.CharField(_("owner key"), max_length=100)
    object_id = models.CharField(_("object id"), max_length=64)
    field = models.CharField(_("field"), max_length=100)
    attached_at = models.DateTimeField(_("attached at"), auto_now_add=True)
    detached_at = models.DateTimeField(_("detached at"), null=True, blank=True)

    class Meta:
        verbose_name = _("file attachment")
        verbose_name_plural = _("file attachments")
        indexes = [models.Index(fields=["owner_type", "owner_key", "object_id", "field"])]
        constraints = [models.UniqueConstraint(fields=["stored_file", "owner_type", "owner_key", "object_id", "field"],
                                               name="files_attachment_unique")]

    def __str__(self):
        return f"{self.owner_type}:{self.owner_key}:{self.object_id}.{self.field} -> {self.stored_file_id}"
