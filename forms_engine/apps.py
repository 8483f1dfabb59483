from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FormsEngineConfig(AppConfig):
    """Forms (issue 13): `form` definitions, widgets, validation, conditions, the renderer."""

    name = "forms_engine"
    verbose_name = _("Forms")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from audit.actions import audit_action_registry
        from forms_engine import audit_actions
        from forms_engine.definitions import FormKind
        from forms_engine.widgets import BUILTIN_WIDGETS, widget_registry
        from lowcode.site import MenuEntry, SitePart, site_part_registry
        from metadata.registries import definition_kind_registry

        for widget in BUILTIN_WIDGETS:
            widget_registry.register(widget())
        definition_kind_registry.register(FormKind())
        audit_action_registry.register_all(audit_actions.ACTIONS)
        site_part_registry.register(SitePart("forms_engine", urls={"forms/": "forms_engine.urls"},
                                             menu_entries=(MenuEntry(_("Forms"), "forms_engine:list"),)))
