"""Signal receivers of the files app."""

from django.db import transaction

from files.models import StoredFile


def stored_file_created(sender, instance, created, **kwargs):
    """A new file that can have a preview gets it made by a task once the upload commits."""
    if created and instance.preview_status == StoredFile.PreviewStatus.PENDING:
        from files.tasks import make_preview

        stored_file_id = str(instance.pk)
        # robust: a broker that is down leaves the preview pending, it does not fail the upload.
        transaction.on_commit(lambda: make_preview.delay(stored_file_id), robust=True)


def tenant_deleted(sender, instance, **kwargs):
    """A deleted tenant's files go too, by a task once the deletion commits."""
    from files.tasks import purge_tenant

    schema_name = instance.schema_name
    transaction.on_commit(lambda: purge_tenant.delay(schema_name), robust=True)
