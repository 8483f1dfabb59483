"""`GET /api/v1/rbac/explain/`: why a user can or cannot do an operation (RB-8)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from lowcode.apikeys.permissions import ApiKeyScope
from rbac import services
from rbac.registries import UnknownOperation


class CanManageRbac(BasePermission):
    """Superusers, and staff users whose roles grant "rbac.manage"."""

    message = gettext_lazy("Explaining access needs the operation rbac.manage.")

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        return user.is_superuser or (user.is_staff and services.check(user, "rbac.manage", request=request))


class ExplainQuery(serializers.Serializer):
    user = serializers.CharField(help_text=gettext_lazy("The username."))
    operation = serializers.CharField(help_text=gettext_lazy("e.g. data.expense.view or designer.access."))
    record = serializers.CharField(required=False, allow_blank=True,
                                   help_text=gettext_lazy("A record id, for an entity operation."))


class StepSerializer(serializers.Serializer):
    kind = serializers.CharField()
    message = serializers.CharField()
    ok = serializers.BooleanField(allow_null=True, help_text=gettext_lazy("True grants, false refuses, null informs."))


class ExplanationSerializer(serializers.Serializer):
    user = serializers.CharField()
    operation = serializers.CharField()
    record = serializers.CharField(allow_null=True)
    allowed = serializers.BooleanField()
    steps = StepSerializer(many=True)


class ExplainView(APIView):
    permission_classes = [IsAuthenticated, CanManageRbac, ApiKeyScope]
    api_resource = "metadata"

    @extend_schema(
        parameters=[OpenApiParameter("user", str, required=True, description="The username."),
                    OpenApiParameter("operation", str, required=True, description="e.g. data.expense.view."),
                    OpenApiParameter("record", str, required=False, description="A record id (entity operations).")],
        responses=ExplanationSerializer, operation_id="rbac_explain",
        summary=gettext_lazy("Why a user can or cannot do an operation"),
        description=gettext_lazy("The permission check's decision with its rule chain: roles (and the departments "
                                 "they come through), data scopes, object grants and column rules."))
    def get(self, request):
        query = ExplainQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        User = get_user_model()
        try:
            user = User.objects.get_by_natural_key(query.validated_data["user"])
        except User.DoesNotExist:
            raise NotFound(_("No user %(user)s in this tenant.") % {"user": query.validated_data["user"]}) from None
        operation = query.validated_data["operation"]
        record = None
        try:
            if query.validated_data.get("record"):
                record = services.find_record(operation, query.validated_data["record"])
            explanation = services.explain(user, operation, record)
        except UnknownOperation as error:
            raise ValidationError({"operation": [str(error)]}) from error
        except ObjectDoesNotExist as error:
            raise NotFound(str(error)) from error
        return Response(ExplanationSerializer(explanation.as_dict()).data)
