from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DataConfig(AppConfig):
    """The app label of runtime models: `data.expense` answers from the current tenant.

    Its models stay out of the global registry (migrations, `create_contenttypes` and
    `apps.get_models()` never see them); `get_model()` looks them up in the snapshot of the
    tenant on the connection, so ContentType.model_class(), admin log entries, generic
    relations and pickling work for runtime models like for static ones.
    """

    name = "dynamic_models.data"
    label = "data"
    verbose_name = _("Data")

    def get_model(self, model_name, require_ready=True):
        from dynamic_models import runtime

        if getattr(self.apps, "ready", False) and connection_has_tenant():
            try:
                return runtime.get_model(model_name.lower())
            except LookupError:
                pass
        raise LookupError(f"No entity {model_name!r} is published in this tenant.")


def connection_has_tenant() -> bool:
    from django.db import connection

    tenant = getattr(connection, "tenant", None)
    return tenant is not None and not getattr(tenant, "is_public", True)
