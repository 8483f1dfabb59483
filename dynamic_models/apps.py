from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DynamicModelsConfig(AppConfig):
    name = "dynamic_models"
    verbose_name = _("Data model")

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.db.models.signals import pre_delete

        from audit.actions import audit_action_registry
        from dynamic_models import audit_actions
        from dynamic_models.bundle_files import BundleFilesOwner, RecordFilesInBundles
        from dynamic_models.business_types import BUSINESS_FIELD_TYPES
        from dynamic_models.commands import EntityCommand
        from dynamic_models.definitions import EntityKind
        from dynamic_models.field_types import BUILTIN_FIELD_TYPES
        from dynamic_models.file_fields import FILE_FIELD_TYPES
        from dynamic_models.files_owner import RecordFiles
        from dynamic_models.importers import BaserowSource, FrappeSource
        from dynamic_models.quotas import RecordsQuota
        from dynamic_models.rbac_resources import EntityRecords
        from dynamic_models.receivers import apply_user_on_delete
        from dynamic_models.registries import field_type_registry
        from dynamic_models.seed_command import SeedDemoCommand
        from dynamic_models.site import EntitySitePart
        from files.registries import file_owner_registry
        from lowcode.cli import subcommand_registry
        from lowcode.site import site_part_registry
        from lowcode.tenancy.quotas import quota_registry
        from metadata import services as metadata
        from metadata.bundles import bundle_files_registry
        from metadata.registries import definition_kind_registry
        from metadata.sources import bundle_source_registry
        from rbac import services as rbac
        from rbac.registries import resource_type_registry

        for field_type in [*BUILTIN_FIELD_TYPES, *FILE_FIELD_TYPES, *BUSINESS_FIELD_TYPES]:
            field_type_registry.register(field_type())
        file_owner_registry.register(RecordFiles())
        file_owner_registry.register(BundleFilesOwner())
        bundle_files_registry.register(RecordFilesInBundles())
        audit_action_registry.register_all(audit_actions.ACTIONS)
        definition_kind_registry.register(EntityKind())
        resource_type_registry.register(EntityRecords())
        subcommand_registry.register(EntityCommand())
        subcommand_registry.register(SeedDemoCommand())
        bundle_source_registry.register(BaserowSource())
        bundle_source_registry.register(FrappeSource())
        site_part_registry.register(EntitySitePart())
        quota_registry.register(RecordsQuota())
        # Who may design is rbac's to say; metadata imports no rbac.
        metadata.add_designer_check(lambda user: rbac.check(user, "designer.access"))
        pre_delete.connect(apply_user_on_delete, sender=get_user_model(), dispatch_uid="dynamic_models.user_on_delete")
