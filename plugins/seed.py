"""The scenario's plugin in the demo: `lowcode seed_demo` registers the example publisher key,
installs examples/plugins/fx-tools and enables it in acme (only)."""

from pathlib import Path

from django.conf import settings
from django_tenants.utils import get_tenant_model

from plugins import services

EXAMPLES = Path(settings.BASE_DIR) / "examples" / "plugins"
PUBLISHER = "Lowcode examples (test key)"
DEMO_PLUGIN, DEMO_PACKAGE, DEMO_TENANT = "fx-tools", "fx-tools-1.0.0.zip", "acme"


def seed_demo_plugin() -> None:
    services.register_key(PUBLISHER, (EXAMPLES / "test-publisher.pub").read_text(), actor="seed_demo")
    services.install((EXAMPLES / DEMO_PACKAGE).read_bytes(), actor="seed_demo")
    tenant = get_tenant_model().objects.filter(schema_name=DEMO_TENANT).first()
    if tenant is not None:
        services.enable(tenant, DEMO_PLUGIN)


def on_demo_seeded(sender, **kwargs) -> None:
    seed_demo_plugin()
