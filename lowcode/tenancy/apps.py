from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TenancyConfig(AppConfig):
    name = "lowcode.tenancy"
    label = "tenancy"
    verbose_name = _("Tenancy")

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.db.models.signals import pre_save

        from lowcode.cli import subcommand_registry
        from lowcode.tenancy import quotas
        from lowcode.tenancy.admin import adopt_shared_models
        from lowcode.tenancy.commands import TenantCommand

        subcommand_registry.register(TenantCommand())
        adopt_shared_models()
        quotas.quota_registry.register(quotas.UsersQuota())
        quotas.quota_registry.register(quotas.ApiCallsQuota())
        pre_save.connect(quotas.check_user_quota, sender=get_user_model(), dispatch_uid="tenancy.user_quota")
