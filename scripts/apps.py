from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ScriptsConfig(AppConfig):
    """Builders' small JavaScript scripts on QuickJS (SC-1): workflow steps and API endpoints."""

    name = "scripts"
    verbose_name = _("Scripts")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from audit.actions import audit_action_registry
        from lowcode.site import SitePart, site_part_registry
        from rbac.registries import OperationType, operation_type_registry
        from scripts import audit_actions
        from scripts.workflow_action import RunScript
        from workflows.registries import service_action_registry

        audit_action_registry.register_all(audit_actions.ACTIONS)
        operation_type_registry.register(OperationType("scripts.run", _("Run scripts through the API")))
        service_action_registry.register(RunScript())
        site_part_registry.register(SitePart("scripts", api_urls={"scripts/": "scripts.api_urls"}))
