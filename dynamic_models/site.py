"""dynamic_models' share of each tenant's site: the metadata API, and the admin and data API of
the tenant's published entities, rebuilt with its runtime snapshot.

The admin and API modules are imported on the first build, not at start-up: they pull in DRF,
django-filter and openpyxl, which a worker, a beat or a `manage.py` command may never need.
"""

from django.urls import include, path

from dynamic_models import runtime
from lowcode.site import SitePart


class EntitySitePart(SitePart):
    def __init__(self):
        super().__init__("dynamic_models", api_urls={"meta/": "dynamic_models.api.meta_urls"},
                         admin_mixins=("dynamic_models.admin.RuntimeProtectionMixin",))

    def tenant_token(self) -> int:
        # The snapshot's serial, not its definition token: a snapshot rebuilt for the same token
        # (after runtime.forget()) holds new model classes, which the admin and API must serve.
        return runtime.current().serial

    def tenant_api_urlpatterns(self) -> list:
        from dynamic_models.api.records import build_urlpatterns

        return [path("data/", include(build_urlpatterns(runtime.current().record_viewsets)))]

    def register_tenant_admin(self, admin_site) -> None:
        from dynamic_models.admin import register_entity_admins

        register_entity_admins(admin_site, runtime.current())
