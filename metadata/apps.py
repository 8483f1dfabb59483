from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MetadataConfig(AppConfig):
    name = "metadata"
    verbose_name = _("Metadata")

    def ready(self):
        from audit.actions import audit_action_registry
        from lowcode.cli import subcommand_registry
        from lowcode.site import SitePart, site_part_registry
        from metadata import audit_actions
        from metadata.commands import ExportCommand, ImportCommand

        audit_action_registry.register_all(audit_actions.ACTIONS)
        subcommand_registry.register(ExportCommand())
        subcommand_registry.register(ImportCommand())
        site_part_registry.register(SitePart("metadata", api_urls={"meta/": "metadata.api.urls"}))
