"""Who may read a file: the owners of attachments (FL-2).

An owner type answers whether a user may read a file through one of its objects' fields. The
download view asks the owner named in the signed URL, then checks that the owner holds the file.
`files` registers "upload" (a file not yet attached: only its uploader reads it); dynamic_models
registers "record" (entity records, through rbac).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from lowcode.registry import Instance, Registry


class FileOwner(Instance):
    #: What holds the files, in words (admin pages show it).
    verbose_name = ""

    def api_resource(self, owner_key: str) -> str:
        """What an API key needs a read scope on to download the owner's files: by default the
        owner key (an entity's key, for a record's file)."""
        return owner_key

    def may_read(self, user, *, owner_key: str, object_id: str, field: str, request=None) -> bool:
        raise NotImplementedError

    def holds(self, stored_file, *, owner_key: str, object_id: str, field: str) -> bool:
        """True when the object's field uses the file, now or formerly, or a later version of it."""
        from files.models import FileAttachment

        return FileAttachment.objects.filter(
            owner_type=self.type, owner_key=owner_key, object_id=object_id, field=field,
            stored_file_id__in=stored_file.later_version_ids()).exists()


class UploadOwner(FileOwner):
    """A fresh upload, named by its own id: readable by its uploader until a record takes it."""

    type = "upload"
    verbose_name = _("upload")

    def api_resource(self, owner_key):
        return "files"

    def may_read(self, user, *, owner_key, object_id, field, request=None):
        from files.models import StoredFile

        return bool(user and user.is_authenticated and
                    StoredFile.objects.filter(pk=object_id, uploaded_by=user.pk).exists())

    def holds(self, stored_file, *, owner_key, object_id, field):
        return str(stored_file.pk) == object_id


file_owner_registry: Registry[FileOwner] = Registry("file owner")


def readable_file(user, *, file_id, owner_type: str, owner_key: str, object_id: str, field: str,
                  request=None):
    """The StoredFile if `user` may read it through that owner's field (and the owner holds it), else None."""
    from django.core.exceptions import ValidationError

    from files.models import StoredFile

    if not file_owner_registry.is_registered(owner_type):
        return None
    owner = file_owner_registry.get(owner_type)
    try:
        stored_file = StoredFile.objects.get(pk=file_id)
    except (StoredFile.DoesNotExist, ValueError, TypeError, ValidationError):
        return None
    if not owner.holds(stored_file, owner_key=owner_key, object_id=object_id, field=field):
        return None
    if not owner.may_read(user, owner_key=owner_key, object_id=object_id, field=field, request=request):
        return None
    return stored_file
