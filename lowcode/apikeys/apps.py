from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApiKeysConfig(AppConfig):
    name = "lowcode.apikeys"
    label = "apikeys"
    verbose_name = _("API keys")

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_save

        from lowcode.apikeys.commands import ApiKeyCommand
        from lowcode.apikeys.models import ApiKey
        from lowcode.apikeys.services import keys_changed
        from lowcode.cli import subcommand_registry
        from lowcode.site import SitePart, site_part_registry

        subcommand_registry.register(ApiKeyCommand())
        site_part_registry.register(SitePart("apikeys", api_urls={"": "lowcode.apikeys.urls"}))
        for model in (ApiKey, get_user_model()):
            for signal in (post_save, post_delete):
                signal.connect(keys_changed, sender=model,
                               dispatch_uid=f"apikeys.rows_changed.{model.__name__}")
