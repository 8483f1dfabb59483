from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PluginsConfig(AppConfig):
    """Plugins (issue 18): signed packages installed platform-wide, enabled per tenant."""

    name = "plugins"
    verbose_name = _("Plugins")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from audit.actions import audit_action_registry
        from dynamic_models.signals import demo_seeded
        from lowcode.cli import subcommand_registry
        from lowcode.registry import set_plugin_visibility
        from lowcode.site import SitePart, site_part_registry
        from plugins import audit_actions, seed, services
        from plugins.commands import PluginCommand
        from plugins.extension_points import EXTENSION_POINTS, extension_point_registry

        for point in EXTENSION_POINTS:
            extension_point_registry.register(point)
        audit_action_registry.register_all(audit_actions.ACTIONS)
        subcommand_registry.register(PluginCommand())
        site_part_registry.register(SitePart("plugins", urls={"plugins/": "plugins.urls"},
                                             api_urls={"plugins/": "plugins.api_urls"}))
        set_plugin_visibility(services.visible_plugins)
        demo_seeded.connect(seed.on_demo_seeded, dispatch_uid="plugins.demo_seeded")
