"""/api/v1/dmm/<space>/<action>/: a module's description (GET) and a run (POST JSON), PL-4."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from datafactory import services


class ModuleRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    module = serializers.CharField()
    status = serializers.ChoiceField(choices=["ok", "warning", "error"])
    data = serializers.JSONField(source="output", allow_null=True)
    message = serializers.CharField()
    error = serializers.CharField(help_text="Why the handler gave no result: timeout, cpu, memory, forbidden, "
                                            "failed, crashed; empty when it did.")
    logs = serializers.ListField(child=serializers.CharField())
    duration_ms = serializers.FloatField()
    cached = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class ModuleView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Describe a data-factory module", tags=["data factory"], responses={200: inline_serializer(
        "DataFactoryModule", {"route": serializers.CharField(), "group": serializers.CharField(),
                              "label": serializers.CharField(), "help": serializers.CharField(),
                              "schema": serializers.JSONField(help_text="JSON Schema of the input.")})})
    def get(self, request, space: str, action: str):
        module = services.get_module(space, action, request.user)
        return Response({"route": module.type, "group": str(module.group), "label": str(module.label),
                         "help": str(module.help), "schema": module.form.get("schema", {})})

    @extend_schema(summary="Run a data-factory module", tags=["data factory"], request=OpenApiTypes.OBJECT,
                   responses={200: ModuleRunSerializer, 400: OpenApiResponse(description="The input's errors by field.")})
    def post(self, request, space: str, action: str):
        module = services.get_module(space, action, request.user)
        if not isinstance(request.data, dict):
            raise ValidationError(_("Send a JSON object of the form's fields."), code="invalid")
        result = services.run(module, request.data, None, user=request.user, request=request)
        if not result.ok:
            raise ValidationError(result.errors)  # {field: [messages]}, "__all__" for the whole input.
        return Response(ModuleRunSerializer(result.run).data)
