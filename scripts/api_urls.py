from django.urls import path

from scripts import api

urlpatterns = [
    path("<slug:key>/run/", api.RunView.as_view(), name="scripts-run"),
]
