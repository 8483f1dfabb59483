from django.urls import path

from datafactory import api

urlpatterns = [
    path("<slug:space>/<slug:action>/", api.ModuleView.as_view(), name="datafactory-module"),
]
