"""A plugin's static files (its browser code), served to the tenants that enable it."""

from pathlib import Path

from django.http import Http404
from django.views.static import serve

from plugins import services
from plugins.models import Plugin


def static_file(request, name: str, version: str, path: str):
    if name not in (services.visible_plugins() or ()):
        raise Http404
    plugin = Plugin.objects.filter(name=name, version=version).first()
    if plugin is None:
        raise Http404
    response = serve(request, path, document_root=Path(plugin.path) / "static")
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    return response
