"""`/api/v1/plugins/`: the installed plugins and whether this tenant enables them; `start` and
`stop` enable and disable one here (tenant administrators: superusers of the tenant). Installing,
upgrading and uninstalling are the platform's (`lowcode plugin`, the platform admin)."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from plugins import services
from plugins.models import Plugin

_FIELDS = {
    "name": serializers.CharField(),
    "version": serializers.CharField(),
    "description": serializers.CharField(),
    "author": serializers.CharField(),
    "permissions": serializers.ListField(child=serializers.CharField()),
    "dependencies": serializers.DictField(child=serializers.CharField()),
    "enabled": serializers.BooleanField(),
}


class IsTenantAdmin(BasePermission):
    def has_permission(self, request, view):
        return bool(request.user and request.user.is_superuser)


def _describe(plugin: Plugin, enabled: bool) -> dict:
    return {"name": plugin.name, "version": plugin.version, "description": plugin.description,
            "author": plugin.author, "permissions": plugin.manifest.get("permissions", []),
            "dependencies": plugin.dependencies, "enabled": enabled}


class PluginListView(APIView):
    permission_classes = [IsAuthenticated, IsTenantAdmin]

    @extend_schema(responses={200: inline_serializer("Plugins", _FIELDS, many=True)})
    def get(self, request):
        return Response([_describe(plugin, enabled) for plugin, enabled in services.tenant_plugins(request.tenant)])


class PluginActionView(APIView):
    """POST start|stop: idempotent; answers the plugin as it is now."""

    permission_classes = [IsAuthenticated, IsTenantAdmin]
    action = ""

    @extend_schema(request=None, responses={200: inline_serializer("Plugin", _FIELDS)})
    def post(self, request, name):
        if not Plugin.objects.filter(name=name).exists():
            raise Http404
        user = request.user if request.user.is_authenticated else None
        if self.action == "start":
            services.enable(request.tenant, name, user=user)
        else:
            services.disable(request.tenant, name, user=user)
        plugin, enabled = next(row for row in services.tenant_plugins(request.tenant) if row[0].name == name)
        return Response(_describe(plugin, enabled))
