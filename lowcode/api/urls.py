from django.urls import path

from lowcode.api.views import TenantSchemaView, TenantSwaggerView

urlpatterns = [
    path("schema/", TenantSchemaView.as_view(), name="api-schema"),
    path("docs/", TenantSwaggerView.as_view(), name="api-docs"),
]
