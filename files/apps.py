from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FilesConfig(AppConfig):
    name = "files"
    verbose_name = _("Files")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_delete, post_save
        from django_tenants.utils import get_tenant_model

        from audit.actions import audit_action_registry
        from files import audit_actions, receivers
        from files.commands import FilesCommand
        from files.models import StoredFile
        from files.registries import UploadOwner, file_owner_registry
        from files.services import StorageQuota
        from lowcode.cli import subcommand_registry
        from lowcode.site import SitePart, site_part_registry
        from lowcode.tenancy.quotas import quota_registry

        audit_action_registry.register_all(audit_actions.ACTIONS)
        file_owner_registry.register(UploadOwner())
        subcommand_registry.register(FilesCommand())
        quota_registry.register(StorageQuota())
        site_part_registry.register(SitePart("files", urls={"files/": "files.urls"},
                                             api_urls={"files/": "files.api_urls"}))
        post_save.connect(receivers.stored_file_created, sender=StoredFile, dispatch_uid="files.preview")
        post_delete.connect(receivers.tenant_deleted, sender=get_tenant_model(), dispatch_uid="files.tenant_deleted")
