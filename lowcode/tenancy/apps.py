from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TenancyConfig(AppConfig):
    name = "lowcode.tenancy"
    label = "tenancy"
    verbose_name = _("Tenancy")

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_save, pre_save

        from lowcode.cli import subcommand_registry
        from lowcode.tenancy import domains, quotas
        from lowcode.tenancy.admin import adopt_shared_models
        from lowcode.tenancy.commands import TenantCommand
        from lowcode.tenancy.models import Domain, Tenant, rows_updated

        subcommand_registry.register(TenantCommand())
        adopt_shared_models()
        quotas.quota_registry.register(quotas.UsersQuota())
        quotas.quota_registry.register(quotas.ApiCallsQuota())
        pre_save.connect(quotas.check_user_quota, sender=get_user_model(), dispatch_uid="tenancy.user_quota")
        for model in (Tenant, Domain):
            for signal in (post_save, post_delete, rows_updated):
                signal.connect(domains.on_row_saved_or_deleted, sender=model,
                               dispatch_uid=f"tenancy.rows_changed.{model.__name__}")
