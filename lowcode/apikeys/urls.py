from django.urls import path

from lowcode.apikeys.views import MeView

urlpatterns = [
    path("me/", MeView.as_view(), name="api-me"),
]
