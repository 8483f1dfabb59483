"""The files of entity records in zip bundles (`lowcode export --with-files`, MD-4 with FL-1).

A bundle carries definitions, not records: its zip carries the files the exported entities'
records hold, under their ids, so records imported afterwards (a CSV export names each file by
its stable URL, which holds its id) find them. An import restores each file with its id through
the upload checks of `files`, sharing the blob of a file with the same SHA-256, after the zip
passed `files.safety.check_zip`. Restored files are kept as the bundle's (a "bundle" attachment
named after the bundle's app) until records take them.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from dynamic_models import file_fields
from dynamic_models.file_fields import BUNDLE_OWNER
from dynamic_models.runtime import ENTITY_KIND
from files import safety
from files import services as files
from files.models import FileAttachment, StoredFile
from files.registries import FileOwner
from metadata.bundles import BundleFiles


class RecordFilesInBundles(BundleFiles):
    type = "record_files"

    def manifest(self, bundle):
        keys = [entry["key"] for entry in bundle["definitions"] if entry["kind"] == ENTITY_KIND]
        used = FileAttachment.objects.filter(owner_type=file_fields.OWNER_TYPE, owner_key__in=keys,
                                             detached_at__isnull=True).values("stored_file_id")
        return [{"id": str(stored.pk), "name": stored.name, "size": stored.size, "content_type": stored.content_type,
                 "sha256": stored.sha256}
                for stored in StoredFile.objects.filter(pk__in=used).order_by("created_at", "pk")]

    def open(self, entry):
        return files.open_file(StoredFile.objects.get(pk=entry["id"]))

    def check_archive(self, fileobj, *, what):
        safety.check_zip(fileobj, what=what)

    def restore(self, entries, open_blob, *, author=None):
        restored = []
        for entry in entries:
            if StoredFile.objects.filter(pk=entry.get("id")).exists():
                continue  # The same file (an earlier import of the bundle).
            with open_blob(entry["sha256"]) as blob:
                stored = files.upload(blob, name=str(entry.get("name", "")), user=author, file_id=entry.get("id"))
            if stored.sha256 != entry["sha256"]:
                raise ValidationError(_("The bytes of %(name)s do not match its SHA-256 in the manifest.")
                                      % {"name": stored.name}, code="sha256_mismatch")
            restored.append(stored)
        if restored:
            files.set_attachments(owner_type=BUNDLE_OWNER, owner_key="-", object_id="-", field="-",
                                  files=[*_kept(), *restored], user=author)
        return len(restored)


def _kept() -> list[StoredFile]:
    return list(StoredFile.objects.filter(attachments__owner_type=BUNDLE_OWNER, attachments__detached_at__isnull=True))


class BundleFilesOwner(FileOwner):
    """Files a bundle import restored: nobody downloads them as the bundle's (records' fields do)."""

    type = BUNDLE_OWNER
    verbose_name = gettext_lazy("bundle import")

    def may_read(self, user, *, owner_key, object_id, field, request=None):
        return False
