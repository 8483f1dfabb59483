from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MetadataConfig(AppConfig):
    name = "metadata"
    verbose_name = _("Metadata")

    def ready(self):
        from lowcode.cli import subcommand_registry
        from metadata.commands import ExportCommand, ImportCommand

        subcommand_registry.register(ExportCommand())
        subcommand_registry.register(ImportCommand())
