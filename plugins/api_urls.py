from django.urls import path

from plugins.api import PluginActionView, PluginListView

urlpatterns = [
    path("", PluginListView.as_view(), name="plugins-list"),
    path("<str:name>/start/", PluginActionView.as_view(action="start"), name="plugins-start"),
    path("<str:name>/stop/", PluginActionView.as_view(action="stop"), name="plugins-stop"),
]
