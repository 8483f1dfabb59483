"""`GET /api/v1/me/`: who the caller is, and with which key (AU-2)."""

from __future__ import annotations

from django.db import connection
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from lowcode.apikeys.models import ApiKey


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    tenant = serializers.CharField(help_text=_("The tenant's schema name."))
    auth = serializers.ChoiceField(choices=["api_key", "session"],
                                   help_text=_("How the request was authenticated."))
    scopes = serializers.ListField(child=serializers.CharField(), allow_null=True,
                                   help_text=_("The API key's scopes; null for a browser session."))
    expires_at = serializers.DateTimeField(allow_null=True,
                                           help_text=_("When the API key expires; null if it does not."))


class MeView(APIView):
    # Any valid key may call this: it reads nothing but the caller itself, so no scope applies.
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=MeSerializer, summary=_("The caller: user, tenant and API key scopes"))
    def get(self, request):
        key = request.auth if isinstance(request.auth, ApiKey) else None
        return Response(MeSerializer({
            "username": request.user.get_username(),
            "tenant": connection.schema_name,
            "auth": "api_key" if key else "session",
            "scopes": key.scopes if key else None,
            "expires_at": key.expires_at if key else None,
        }).data)
