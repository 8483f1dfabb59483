from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TenancyConfig(AppConfig):
    name = "lowcode.tenancy"
    label = "tenancy"
    verbose_name = _("Tenancy")

    def ready(self):
        from lowcode.cli import subcommand_registry
        from lowcode.tenancy.admin import adopt_shared_models
        from lowcode.tenancy.commands import TenantCommand

        subcommand_registry.register(TenantCommand())
        adopt_shared_models()
