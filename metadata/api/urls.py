"""Routes of the metadata API that serve every kind, included at `api/v1/meta/` (MD-4)."""

from rest_framework.routers import SimpleRouter

from metadata.api.views import BundleViewSet

router = SimpleRouter()
router.register("bundles", BundleViewSet, basename="meta-bundle")

urlpatterns = router.urls
