from django.urls import path

from rbac.api import ExplainView

urlpatterns = [
    path("explain/", ExplainView.as_view(), name="rbac-explain"),
]
