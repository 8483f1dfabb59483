from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApiKeysConfig(AppConfig):
    name = "lowcode.apikeys"
    label = "apikeys"
    verbose_name = _("API keys")

    def ready(self):
        from lowcode.apikeys.commands import ApiKeyCommand
        from lowcode.cli import subcommand_registry

        subcommand_registry.register(ApiKeyCommand())
