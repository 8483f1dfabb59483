from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LowcodeConfig(AppConfig):
    name = "lowcode"
    verbose_name = _("Lowcode")

    def ready(self):
        from lowcode import commands
        from lowcode.cli import subcommand_registry

        subcommand_registry.register(commands.UpCommand())
        subcommand_registry.register(commands.DoctorCommand())
