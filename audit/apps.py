from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = _("Audit trail")

    def ready(self):
        from django.contrib.auth import signals
        from django.db.models.signals import post_delete, post_migrate, post_save
        from django_tenants.utils import get_tenant_model

        from audit import audit_actions, receivers, services
        from audit.actions import audit_action_registry
        from audit.commands import AuditCommand
        from audit.models import AlertRule
        from lowcode.cli import subcommand_registry

        audit_action_registry.register_all(audit_actions.ACTIONS)
        subcommand_registry.register(AuditCommand())
        signals.user_logged_in.connect(receivers.user_logged_in, dispatch_uid="audit.user_logged_in")
        signals.user_logged_out.connect(receivers.user_logged_out, dispatch_uid="audit.user_logged_out")
        signals.user_login_failed.connect(receivers.user_login_failed, dispatch_uid="audit.user_login_failed")
        post_save.connect(services.forget_rules, sender=AlertRule, dispatch_uid="audit.forget_rules_on_save")
        post_delete.connect(services.forget_rules, sender=AlertRule, dispatch_uid="audit.forget_rules_on_delete")
        post_migrate.connect(receivers.seal_trail, sender=self, dispatch_uid="audit.seal_trail")
        post_delete.connect(receivers.forget_checkpoints, sender=get_tenant_model(),
                            dispatch_uid="audit.forget_checkpoints")
