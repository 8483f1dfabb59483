"""dynamic_models' share of each tenant's site: the metadata API, and the admin and data API of
the tenant's published entities, rebuilt with its runtime snapshot."""

from django.urls import include, path

from dynamic_models import runtime
from dynamic_models.admin import RuntimeProtectionMixin, register_entity_admins
from dynamic_models.api.records import build_urlpatterns
from lowcode.site import SitePart


class EntitySitePart(SitePart):
    def __init__(self):
        super().__init__("dynamic_models", api_urls={"meta/": "dynamic_models.api.meta_urls"},
                         admin_mixins=(RuntimeProtectionMixin,))

    def tenant_token(self) -> int:
        # The snapshot's serial, not its definition token: a snapshot rebuilt for the same token
        # (after runtime.forget()) holds new model classes, which the admin and API must serve.
        return runtime.current().serial

    def tenant_api_urlpatterns(self) -> list:
        return [path("data/", include(build_urlpatterns(runtime.current().record_serializers)))]

    def register_tenant_admin(self, admin_site) -> None:
        register_entity_admins(admin_site, runtime.current())
