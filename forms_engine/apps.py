from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FormsEngineConfig(AppConfig):
    """Forms (issue 13): `form` definitions, widgets, validation, conditions, the renderer."""

    name = "forms_engine"
    verbose_name = _("Forms")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        pass
