from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApiKeysConfig(AppConfig):
    name = "lowcode.apikeys"
    label = "apikeys"
    verbose_name = _("API keys")

    def ready(self):
        from lowcode.apikeys.commands import ApiKeyCommand
        from lowcode.cli import subcommand_registry
        from lowcode.site import SitePart, site_part_registry

        subcommand_registry.register(ApiKeyCommand())
        site_part_registry.register(SitePart("apikeys", api_urls={"": "lowcode.apikeys.urls"}))
