"""Routes of the static twins; `middleware.StaticRoutesMiddleware` mounts them at /api/v1/static/."""

from rest_framework import routers

from benchmarks.static_expense.api import ExpenseViewSet, ProjectViewSet

router = routers.DefaultRouter(trailing_slash=True)
router.include_format_suffixes = False  # As the dynamic resource's router.
router.root_view_name = "static-api-root"
router.register("project", ProjectViewSet, basename="static-project")
router.register("expense", ExpenseViewSet, basename="static-expense")

urlpatterns = router.urls
