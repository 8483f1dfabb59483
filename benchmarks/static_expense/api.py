"""The hand-written DRF API of the static twins, at /api/v1/static/<project|expense>/.

What a developer would write for these models with plain DRF: a ModelSerializer and a
ModelViewSet each, with the same pagination, filters (every lookup the dynamic filter set of
`dynamic_models.api.records.filter_lookups` offers), search and ordering fields as the dynamic
resource, IsAuthenticated + DjangoModelPermissions, and the project's default authentication
(API key, session) and throttling (REST_FRAMEWORK settings).

Lists page with DRF's PageNumberPagination (a count of the matching rows), as a developer would
write; members (not superusers) see the expenses they submitted, with the IBAN masked as the
dynamic resource masks it (`****` and the last 4 characters), a hand-written scope and mask for
api_overhead.py's scoped member.

The filters are a FilterSet class written once (`filterset_class`), as the dynamic resource's
are built once per snapshot: with `filterset_fields` instead, DjangoFilterBackend builds a new
FilterSet class (60-odd filters) on every request, which costs the static API about as much as
the whole difference this benchmark looks for (see benchmarks/README.md).
"""

from __future__ import annotations

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend, FilterSet
from rest_framework import filters, permissions, serializers, viewsets
from rest_framework.pagination import PageNumberPagination

from audit import services as audit
from benchmarks.static_expense import audit_actions as static_actions
from benchmarks.static_expense.models import Expense, Project

SYSTEM_FIELDS = ["id", "created_at", "updated_at", "created_by", "updated_by"]

_RANGE = ["exact", "in", "range", "gt", "gte", "lt", "lte", "isnull"]
_TEXT = ["exact", "iexact", "icontains", "istartswith", "in", "isnull"]
_CHOICE = ["exact", "in", "isnull"]
_SYSTEM_LOOKUPS = {"id": ["exact", "in", "gt", "lt"], "created_at": ["range", "gt", "gte", "lt", "lte"],
                   "updated_at": ["range", "gt", "gte", "lt", "lte"], "created_by": ["exact", "in"],
                   "updated_by": ["exact", "in"]}


class ProjectFilterSet(FilterSet):
    class Meta:
        model = Project
        fields = {**_SYSTEM_LOOKUPS, "name": _TEXT, "code": _TEXT, "budget": _RANGE, "active": ["exact", "isnull"]}


class ExpenseFilterSet(FilterSet):
    class Meta:
        model = Expense
        fields = {
            **_SYSTEM_LOOKUPS,
            "number": ["exact", "in", "istartswith"],
            "title": _TEXT,
            "amount": _RANGE,
            "currency": _CHOICE,
            "spent_on": _RANGE,
            "category": _CHOICE,
            "project": ["exact", "in", "isnull"],
            "iban": _TEXT,
            "notes": _TEXT,
            "status": _CHOICE,
            "submitted_by": ["exact", "in", "isnull"],
        }


class ProjectSerializer(serializers.ModelSerializer):
    class Meta:
        model = Project
        fields = [*SYSTEM_FIELDS, "name", "code", "budget", "active"]
        read_only_fields = SYSTEM_FIELDS


class ExpenseSerializer(serializers.ModelSerializer):
    class Meta:
        model = Expense
        fields = [*SYSTEM_FIELDS, "number", "title", "amount", "currency", "spent_on", "category", "project", "iban",
                  "notes", "status", "submitted_by"]
        read_only_fields = [*SYSTEM_FIELDS, "number"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        if request is not None and not request.user.is_superuser and data["iban"]:
            iban = data["iban"]
            data["iban"] = "****" + iban[-4:] if len(iban) >= 8 else "****"
        return data


class Pages(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000


def _json(values: dict) -> dict:
    return json.loads(json.dumps({name: getattr(value, "pk", value) for name, value in values.items()},
                                 cls=DjangoJSONEncoder))


class RecordViewSet(viewsets.ModelViewSet):
    """Soft delete and who-did-it columns, like the dynamic resource."""

    pagination_class = Pages
    filter_backends = [DjangoFilterBackend, filters.SearchFilter, filters.OrderingFilter]
    permission_classes = [permissions.IsAuthenticated, permissions.DjangoModelPermissions]
    ordering = ["-id"]

    # Every change is audited in this product (AD-1): a hand-written viewset writes its event too.

    def perform_create(self, serializer):
        user = self.request.user
        with transaction.atomic():
            record = serializer.save(created_by=user, updated_by=user)
            audit.record(static_actions.RECORD_CREATE.of(record._meta.model_name), target=record, actor=user,
                         after=_json(serializer.validated_data))

    def perform_update(self, serializer):
        with transaction.atomic():
            record = serializer.save(updated_by=self.request.user)
            audit.record(static_actions.RECORD_UPDATE.of(record._meta.model_name), target=record, actor=self.request.user,
                         after=_json(serializer.validated_data))

    def perform_destroy(self, instance):
        instance.deleted_at = timezone.now()
        instance.save(update_fields=["deleted_at", "updated_at"])


class ProjectViewSet(RecordViewSet):
    queryset = Project.objects.all()
    serializer_class = ProjectSerializer
    filterset_class = ProjectFilterSet
    search_fields = ["name"]
    ordering_fields = ["id", "created_at", "updated_at", "name", "code", "budget", "active"]


class ExpenseViewSet(RecordViewSet):
    queryset = Expense.objects.all()
    serializer_class = ExpenseSerializer

    def get_queryset(self):
        user = self.request.user
        return self.queryset.all() if user.is_superuser else self.queryset.filter(submitted_by=user)

    def perform_create(self, serializer):
        serializer.validated_data.setdefault("submitted_by", self.request.user)
        super().perform_create(serializer)
    filterset_class = ExpenseFilterSet
    search_fields = ["title"]
    ordering_fields = ["id", "created_at", "updated_at", "number", "title", "amount", "currency", "spent_on",
                       "category", "project", "iban", "notes", "status", "submitted_by"]
