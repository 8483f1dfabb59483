from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DataFactoryConfig(AppConfig):
    """Data-factory modules (PL-4): small tools with a generated form and a sandboxed handler."""

    name = "datafactory"
    verbose_name = _("Data factory")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from audit.actions import audit_action_registry
        from datafactory import audit_actions
        from lowcode.site import MenuEntry, SitePart, site_part_registry
        from rbac.registries import OperationType, operation_type_registry

        audit_action_registry.register_all(audit_actions.ACTIONS)
        operation_type_registry.register(OperationType("datafactory.run", _("Run data-factory modules")))
        site_part_registry.register(SitePart("datafactory", urls={"dmm/": "datafactory.urls"},
                                             api_urls={"dmm/": "datafactory.api_urls"},
                                             menu_entries=(MenuEntry(_("Data factory"), "datafactory:list",
                                                                     visible="datafactory.services.in_menu"),)))
