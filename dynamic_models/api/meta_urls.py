"""URLs of the entity kind's metadata API, included at `api/v1/meta/` of each tenant's site (DM-5);
the routes every kind shares are in metadata.api.urls."""

from rest_framework.routers import SimpleRouter

from dynamic_models.api.meta import (
    KEY_REGEX,
    EntityViewSet,
    FieldViewSet,
    MigrationViewSet,
    VersionViewSet,
)

router = SimpleRouter()
router.register("entities", EntityViewSet, basename="meta-entity")
router.register(rf"entities/(?P<entity_key>{KEY_REGEX})/fields", FieldViewSet, basename="meta-field")
router.register(rf"entities/(?P<entity_key>{KEY_REGEX})/versions", VersionViewSet, basename="meta-version")
router.register("migrations", MigrationViewSet, basename="meta-migration")

urlpatterns = router.urls
