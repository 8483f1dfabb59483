"""POST /api/v1/scripts/<key>/run/: run a script with params (and a record) as the caller (SC-1)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from dynamic_models.records_api import RecordsApiError
from rbac import services as rbac
from scripts import services
from scripts.models import ScriptRun


class RunRequestSerializer(serializers.Serializer):
    params = serializers.DictField(required=False, default=dict, help_text="What the script gets as `params`.")
    record = serializers.DictField(required=False, allow_null=True, default=None, help_text=(
        'A record the script gets as `record`, read as the caller may see it: {"entity": "expense", "id": 3}.'))


class ScriptRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = ScriptRun
        fields = ["id", "status", "output", "logs", "error", "message", "duration_ms", "created_at"]


class RunView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Run a script", tags=["scripts"], request=RunRequestSerializer, responses={
        200: ScriptRunSerializer, 400: OpenApiResponse(description="Bad params or record."),
        403: OpenApiResponse(description="The caller may not run scripts."),
        404: OpenApiResponse(description="No enabled script of this key.")})
    def post(self, request, key: str):
        if not rbac.check(request.user, "scripts.run"):
            raise PermissionDenied(rbac.denial("scripts.run"))
        script = services.get_script(key)
        body = RunRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            record = services.load_record(request.user, body.validated_data["record"])
        except RecordsApiError as error:
            raise serializers.ValidationError({"record": [str(error)]}) from None
        run = services.run(script, user=request.user, params=body.validated_data["params"], record=record,
                           trigger=ScriptRun.Trigger.API)
        return Response(ScriptRunSerializer(run).data)
