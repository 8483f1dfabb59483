"""The REST resource of each published entity at /api/v1/data/<entity>/ (DM-5).

`build_urlpatterns(viewsets)` routes each entity of the snapshot; its viewset (with its serializer
and, on the first filtered request, its filter set) is built on its first request and cached by
the snapshot: a publish shows in the API (and its OpenAPI schema) on the next request, no class
is built per request, and a tenant's site costs little to build however many entities it has.
"""

from __future__ import annotations

import django_filters
from django.db import transaction
from django.db.models import Prefetch
from django.urls import re_path
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django_filters.filterset import filterset_factory
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.utils import verbose_lookup_expr
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view, inline_serializer
from rest_framework import filters, permissions, routers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.response import Response

from audit import services as audit
from dynamic_models import audit_actions as dm_actions
from dynamic_models import business_types, file_fields, formulas, records
from dynamic_models.api import parameters, rows
from dynamic_models.api.schema import RecordAutoSchema
from dynamic_models.api.serializers import SYSTEM_FIELDS
from dynamic_models.api.transfer import TransferActions, transfer_urlpatterns
from dynamic_models.registries import field_type_registry
from lowcode.api.filters import PostgresFilterSet
from lowcode.api.pagination import PageNumbers, PageOrCursorPagination
from lowcode.api.parsers import JSONParser
from lowcode.api.renderers import FastJSONRenderer
from lowcode.apikeys.models import ApiKey
from lowcode.apikeys.permissions import ApiKeyScope
from rbac import columns as rbac_columns
from rbac import services as rbac

BULK_MAX_ROWS = 1000
#: Filter sets of the filters a request uses, kept per entity and caller's rules (most recent combinations).
FILTER_SETS_KEPT = 64

_TIME_RANGE = ["range", "gt", "gte", "lt", "lte"]
SYSTEM_LOOKUPS = {"id": ["exact", "in", "gt", "lt"], "created_at": _TIME_RANGE, "updated_at": _TIME_RANGE,
                  "created_by": ["exact", "in"], "updated_by": ["exact", "in"]}


def filter_lookups(body: dict) -> dict[str, list[str]]:
    """The filters of an entity: every stored field with the lookups its type offers."""
    lookups = dict(SYSTEM_LOOKUPS)
    for spec in body["fields"]:
        field_lookups = field_type_registry.get(spec["type"]).filter_lookups(spec)
        if field_lookups:
            lookups[spec["key"]] = field_lookups
    return lookups


class RecordFilterSet(PostgresFilterSet):
    """Filters take what their column holds: whole numbers, decimals of its digits, PostgreSQL's offsets."""

    FILTER_DEFAULTS = {**PostgresFilterSet.FILTER_DEFAULTS, **business_types.FILTER_DEFAULTS}

    @classmethod
    def computed_filters(cls, model, keys=None) -> dict[str, django_filters.Filter]:
        """Filters of the entity's formulas, lookups, rollups and counts (of `keys`, else all), by
        parameter: on the values the manager annotates, with the lookups that fit them
        (`formulas.value_kind`); their querysets must hold those values (`formulas.annotated`)."""
        labels = {spec["key"]: spec.get("label") or spec["key"] for spec in model.lowcode_entity["fields"]}
        result = {}
        for key in model.lowcode_formulas if keys is None else keys:
            kind = formulas.value_kind(model, key)
            for lookup in kind.lookups if kind else ():
                # One lookup, no transform: django-filter's filter_for_field() would resolve it on the model.
                filter_class, params = cls.filter_for_lookup(kind.field, lookup)
                if filter_class is not None:
                    result[key if lookup == "exact" else f"{key}__{lookup}"] = filter_class(
                        field_name=key, lookup_expr=lookup, label=capfirst(f"{labels[key]} {verbose_lookup_expr(lookup)}"),
                        **params)
        return result


def _not_allowed() -> list:
    return [serializers.ErrorDetail(
        _("You may not filter, order or search by a field you cannot read in clear."), code="field_not_allowed")]


def _access(view, request):
    return rbac_columns.column_access(request.user, view.model, request=request)


class StrictFilterBackend(DjangoFilterBackend):
    """django-filter, answering 400 to query parameters that are not filters or options, and to
    filters on fields the caller cannot read in clear (RB-5: a filter would reveal them)."""

    def get_filterset_class(self, view, queryset=None):
        """The entity's filter set without the filters of the caller's hidden and masked fields
        (the caller's OpenAPI schema lists these filters too)."""
        full = view.record_filterset()
        request = getattr(view, "request", None)
        if request is None:
            return full
        access = _access(view, request)
        refused = frozenset(name for name, query_filter in full.base_filters.items()
                            if not access.can_query(query_filter.field_name))
        if not refused:
            return full
        by_refused = full.__dict__.get("_for_callers")
        if by_refused is None:
            by_refused = full._for_callers = {}
        if refused not in by_refused:
            narrowed = type(full.__name__, (full,), {})
            # Set after the class exists: django-filter's metaclass rebuilds base_filters from Meta.
            narrowed.base_filters = {name: query_filter for name, query_filter in full.base_filters.items()
                                     if name not in refused}
            by_refused[refused] = narrowed
        return by_refused[refused]

    def filter_queryset(self, request, queryset, view):
        if not set(request.query_params) - view.query_options:
            return queryset  # No filter asked for: the filter set is not built (a third of a tenant's first list).
        filterset_class = self.get_filterset_class(view, queryset)
        all_filters = view.record_filterset().base_filters
        known = set(filterset_class.base_filters) | view.query_options
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            raise ValidationError({name: _not_allowed() if name in all_filters else [serializers.ErrorDetail(
                _("Unknown filter or option. Filters are field names with lookups such as amount__gte."),
                code="unknown_filter")] for name in unknown})
        errors = {}
        for name, value in request.query_params.items():
            query_filter = filterset_class.base_filters.get(name)
            if query_filter is None:
                continue
            if value == "":  # django-filter skips empty values, as HTML forms send them; a client meant one.
                errors[name] = [serializers.ErrorDetail(_("A filter needs a value."), code="blank")]
            elif isinstance(query_filter, django_filters.BooleanFilter) and value not in ("true", "false"):
                errors[name] = [serializers.ErrorDetail(_("Use true or false."), code="invalid")]
        if errors:
            raise ValidationError(errors)
        return super().filter_queryset(request, queryset, view)

    def get_filterset(self, request, queryset, view):
        """A filter set of only the filters the request uses: django-filter copies every filter of
        its class into each instance (60-odd for the scenario's expense, a third of a list's time)."""
        filterset_class = self.get_filterset_class(view, queryset)
        used = frozenset(name for name in request.query_params if name in filterset_class.base_filters)
        by_used = filterset_class.__dict__.get("_by_used")
        if by_used is None:
            by_used = filterset_class._by_used = {}
        only = by_used.get(used)
        if only is None:  # Two threads may both build it; either result serves.
            # No fields in Meta: django-filter would resolve every lookup of the model again.
            only = type(filterset_class.__name__, (filterset_class,), {
                "Meta": type("Meta", (filterset_class.Meta,), {"fields": []})})
            only.base_filters = {name: filterset_class.base_filters[name] for name in used}
            if len(by_used) >= FILTER_SETS_KEPT:
                by_used.pop(next(iter(by_used)), None)
            by_used[used] = only
        return only(**self.get_filterset_kwargs(request, queryset, view))


class StrictOrderingFilter(filters.OrderingFilter):
    def get_valid_fields(self, queryset, view, context=None):
        request = (context or {}).get("request") or getattr(view, "request", None)
        valid = super().get_valid_fields(queryset, view, context)
        if request is None:
            return valid
        access = _access(view, request)
        return [(name, label) for name, label in valid if access.can_query(name)]

    def remove_invalid_fields(self, queryset, fields, view, request):
        valid = super().remove_invalid_fields(queryset, fields, view, request)
        if len(valid) != len(fields):
            access = _access(view, request)
            if any(not access.can_query(term.lstrip("-")) for term in fields):
                raise ValidationError({self.ordering_param: _not_allowed()})
            raise ValidationError({self.ordering_param: [serializers.ErrorDetail(
                _("Order by one of: %s (prefix - for descending).") % ", ".join(
                    name for name, _label in self.get_valid_fields(queryset, view, {"request": request})),
                code="invalid_ordering")]})
        return valid


class ReadableSearchFilter(filters.SearchFilter):
    """Search only the fields the caller reads in clear: a match on a hidden value would reveal it."""

    def get_search_fields(self, view, request):
        access = _access(view, request)
        return [name for name in super().get_search_fields(view, request) or () if access.can_query(name)]

    def get_search_terms(self, request):
        if "\x00" in request.query_params.get(self.search_param, ""):  # PostgreSQL refuses NUL in text.
            raise ValidationError({self.search_param: [serializers.ErrorDetail(
                _("Search terms cannot contain the NUL character."), code="null_characters_not_allowed")]})
        return super().get_search_terms(request)


class RecordPermissions(permissions.BasePermission):
    """The entity operation of each endpoint, decided by rbac (roles, scopes, object grants)."""

    actions = {"list": "view", "retrieve": "view", "export": "export", "create": "add", "import_records": "import",
               "update": "change", "partial_update": "change", "restore": "change", "destroy": "delete",
               "bulk_delete": "delete"}

    @classmethod
    def action_of(cls, view, request) -> str:
        if view.action == "bulk":
            return "add" if request.method == "POST" else "change"
        return cls.actions.get(view.action, "view")  # OPTIONS and the like: the entity's shape.

    def has_permission(self, request, view):
        operation = rbac.entity_operation(view.entity_key, self.action_of(view, request))
        if rbac.check(request.user, operation, request=request):
            return True
        self.message = rbac.denial(operation)  # The 403 names the missing operation.
        return False

    def has_object_permission(self, request, view, obj):
        # Visible records were found through the view scope; changing one needs the change scope.
        operation = rbac.entity_operation(view.entity_key, self.action_of(view, request))
        return rbac.check(request.user, operation, obj, request=request)


def _is_record_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not record 1.


class RecordViewSet(TransferActions, viewsets.ModelViewSet):
    """Base of the generated viewsets; subclasses set model and serializer_class."""

    model = None
    entity_key = ""
    #: Relation fields that `expand=` accepts: entity relations and user fields (not created_by/updated_by).
    relations: dict = {}
    selected_fields: set[str] = set()
    expanded: set[str] = set()
    search_fields: list[str] = []
    ordering_fields: list[str] = []
    pagination_class = PageOrCursorPagination
    renderer_classes = [FastJSONRenderer, BrowsableAPIRenderer]
    filter_backends = [StrictFilterBackend, ReadableSearchFilter, StrictOrderingFilter]
    permission_classes = [permissions.IsAuthenticated, RecordPermissions, ApiKeyScope]
    lookup_value_regex = r"[0-9]{1,18}"
    schema = RecordAutoSchema()

    @property
    def query_options(self) -> frozenset[str]:
        """Query parameters besides filters: `count=false` too, unless the entity has a field
        called `count` (keys that predate the option stay filters)."""
        if any(spec["key"] == PageNumbers.count_query_param for spec in self.model.lowcode_entity["fields"]):
            return parameters.RESERVED
        return parameters.RESERVED | {PageNumbers.count_query_param}

    def get_api_resource(self) -> str:
        return self.entity_key

    @classmethod
    def record_filterset(cls):
        """The entity's filter set, built on first use: django-filter resolves every lookup of
        every field as it builds one (about 20 ms for 30 fields), which would slow down building
        a tenant's URLs for entities nobody filters yet."""
        built = cls.__dict__.get("_record_filterset")
        if built is None:  # Two threads may both build it; either result serves.
            built = filterset_factory(cls.model, filterset=RecordFilterSet, fields=filter_lookups(cls.model.lowcode_entity))
            built.base_filters.update(RecordFilterSet.computed_filters(cls.model))
            cls._record_filterset = built
        return built

    # --- fields=, expand= and the queries they need --------------------------------------

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.selected_fields = self._names("fields", set(self.serializer_class.Meta.fields))
        self.expanded = self._names("expand", set(self.relations))

    def _names(self, parameter: str, allowed: set[str]) -> set[str]:
        raw = self.request.query_params.get(parameter)
        if not raw:
            return set()
        names = {name.strip() for name in raw.split(",") if name.strip()}
        unknown = names - allowed
        if unknown:
            raise ValidationError({parameter: [serializers.ErrorDetail(
                _("Unknown field(s): %(names)s. Allowed: %(allowed)s.") % {
                    "names": ", ".join(sorted(unknown)), "allowed": ", ".join(sorted(allowed))},
                code="invalid")]})
        return names

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["fields"] = getattr(self, "selected_fields", None) or None
        context["expand"] = getattr(self, "expanded", set())
        return context

    def scoped_queryset(self):
        """The records the caller may see (rbac data scope): others answer 404, never 403."""
        if self._wants_deleted():  # With the computed values, that filters and ordering may read.
            queryset = formulas.annotated(self.model.all_objects.filter(deleted_at__isnull=False))
        else:
            queryset = self.model.objects.all()
        return rbac.scope_queryset(self.request.user, queryset, request=self.request)

    def get_queryset(self):
        """The records the caller may see, with what reads show of their relations and files."""
        queryset = self.scoped_queryset()
        if self.action not in ("list", "retrieve", "export"):
            return queryset
        return self._with_relations(queryset)

    def _with_relations(self, queryset):
        """Files and relations joined or prefetched for the serializer (the row path reads them per page)."""
        user = self.request.user
        for name in file_fields.file_specs(self.model):
            if (not self.selected_fields or name in self.selected_fields) \
                    and not self.model._meta.get_field(name).many_to_many:
                queryset = queryset.select_related(name)
        for name, field in self.relations.items():
            if self.selected_fields and name not in self.selected_fields:
                continue
            target = field.related_model
            if not hasattr(target, "lowcode_entity"):  # A user: no data scope applies.
                if name in self.expanded:
                    queryset = queryset.select_related(name)
                continue
            if field.many_to_many or name in self.expanded:
                # Related records are expanded only within the caller's scope of their entity.
                related = target.objects.all()
                if name in self.expanded:
                    related = rbac.scope_queryset(user, related, request=self.request).prefetch_related(
                        *(other.name for other in target._meta.many_to_many))
                queryset = queryset.prefetch_related(Prefetch(name, queryset=related))
        return queryset

    def row_reader(self, queryset) -> rows.RowReader | None:
        """The compiled row reader of this request, or None where only the serializer shows the records."""
        reader = rows.reader_for(self.serializer_class, self.get_serializer_context(), self.request)
        return reader if reader is not None and reader.can_read(queryset) else None

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.scoped_queryset())
        reader = self.row_reader(queryset)
        if reader is None:
            page = self.paginate_queryset(self._with_relations(queryset))
            self._audit_reads([record.pk for record in page])
            return self.get_paginated_response(self.get_serializer(page, many=True).data)
        page = self.paginate_queryset(reader.rows(queryset))
        self._audit_reads([row["id"] for row in page])
        return self.get_paginated_response(reader.represent(page, request, self.get_serializer_context()))

    def retrieve(self, request, *args, **kwargs):
        queryset = self.scoped_queryset()
        if set(request.query_params) - {parameters.FIELDS, parameters.EXPAND}:
            queryset = self.filter_queryset(queryset)  # Else no filter applies and the order does not matter.
        reader = self.row_reader(queryset)
        if reader is None:
            record = self.get_object()
            self._audit_reads([record.pk])
            return Response(self.get_serializer(record).data)
        # As get_object(), from a row: the URL's id within the filtered scope, then the object permission.
        row = get_object_or_404(reader.rows(queryset), pk=self.kwargs[self.lookup_url_kwarg or self.lookup_field])
        record = reader.record(row)
        self.check_object_permissions(request, record)
        self._audit_reads([record.pk])
        return Response(reader.represent([row], request, self.get_serializer_context(), records=[record])[0])

    def _audit_reads(self, ids: list) -> None:
        """Reads of a sensitive entity through an API key leave an event (AD-1)."""
        if self.model.lowcode_entity.get("sensitive") and isinstance(self.request.auth, ApiKey) and ids:
            audit.record(dm_actions.RECORD_VIEW.of(self.entity_key), target_type=f"data.{self.entity_key}",
                         actor=self.request.user, data={"ids": ids})

    def _wants_deleted(self) -> bool:
        value = self.request.query_params.get("deleted") if self.request else None
        if value not in (None, "only"):
            raise ValidationError({"deleted": [serializers.ErrorDetail(
                _("Use deleted=only to list soft-deleted records."), code="invalid")]})
        return value == "only" and self.action == "list"

    # --- writes ---------------------------------------------------------------------------

    def perform_destroy(self, instance):
        records.delete(instance, user=self.request.user, request=self.request)

    @extend_schema(request=None, responses={200: None}, description=_("Bring back a soft-deleted record."))
    @action(detail=True, methods=["post"])
    def restore(self, request, pk=None):
        record = rbac.scope_queryset(request.user, self.model.all_objects.filter(pk=pk, deleted_at__isnull=False)).first()
        if record is None:
            raise NotFound(_("No deleted record with this id."))
        self.check_object_permissions(request, record)
        records.restore(self.model.all_objects.filter(pk=record.pk), user=request.user, request=request)
        return Response(self.get_serializer(self.model.objects.get(pk=record.pk)).data)

    def _bulk_rows(self, request) -> list:
        rows = request.data
        if not isinstance(rows, list) or not rows:
            raise ValidationError({"non_field_errors": [serializers.ErrorDetail(
                _("Send a non-empty JSON list of records."), code="not_a_list")]})
        if len(rows) > BULK_MAX_ROWS:
            raise ValidationError({"non_field_errors": [serializers.ErrorDetail(
                _("At most %(max)d records per request; use the import for more.") % {"max": BULK_MAX_ROWS},
                code="too_many")]})
        return rows

    @action(detail=False, methods=["post", "patch"], url_path="bulk", parser_classes=[JSONParser])
    def bulk(self, request):
        """Create (POST) or update (PATCH, each row with its `id`) many records, all or nothing."""
        rows = self._bulk_rows(request)
        if request.method == "POST":
            serializer = self.get_serializer(data=rows, many=True)
            serializer.is_valid(raise_exception=True)
            with transaction.atomic():
                records = serializer.save()
            return Response(self.get_serializer(records, many=True).data, status=status.HTTP_201_CREATED)
        ids = [row.get("id") if isinstance(row, dict) and _is_record_id(row.get("id")) else None for row in rows]
        found = self.get_queryset().in_bulk([i for i in ids if i is not None])
        errors, validated = {}, []
        for index, (row, record_id) in enumerate(zip(rows, ids, strict=True)):
            record = found.get(record_id)
            if record is None:
                errors[index] = {"id": [serializers.ErrorDetail(_("No record with this id."), code="not_found")]}
                continue
            if not rbac.check(request.user, rbac.entity_operation(self.entity_key, "change"), record):
                errors[index] = {"id": [serializers.ErrorDetail(_("You may not change this record."),
                                                                code="permission_denied")]}
                continue
            serializer = self.get_serializer(record, data=row, partial=True)
            if not serializer.is_valid():
                errors[index] = serializer.errors
            validated.append(serializer)
        if errors:  # By row index, as for a bulk create.
            raise ValidationError(errors)
        with transaction.atomic():
            records = [serializer.save() for serializer in validated]
        return Response(self.get_serializer(records, many=True).data)

    @extend_schema(request=inline_serializer("BulkDelete", {"ids": serializers.ListField(
        child=serializers.IntegerField(), max_length=BULK_MAX_ROWS)}), responses={204: None})
    @action(detail=False, methods=["post"], url_path="bulk-delete", parser_classes=[JSONParser])
    def bulk_delete(self, request):
        """Soft-delete many records by id, all or nothing."""
        ids = request.data.get("ids") if isinstance(request.data, dict) else None
        if not isinstance(ids, list) or not ids or not all(_is_record_id(i) for i in ids) \
                or len(ids) > BULK_MAX_ROWS:
            raise ValidationError({"ids": [serializers.ErrorDetail(
                _("Send a list of 1 to %(max)d record ids.") % {"max": BULK_MAX_ROWS}, code="invalid")]})
        found = self.get_queryset().in_bulk(ids)
        missing = sorted(set(ids) - set(found))
        if missing:
            raise ValidationError({"ids": [serializers.ErrorDetail(
                _("No record with id %(ids)s.") % {"ids": ", ".join(map(str, missing[:20]))}, code="not_found")]})
        operation = rbac.entity_operation(self.entity_key, "delete")
        refused = sorted(pk for pk, record in found.items() if not rbac.check(request.user, operation, record))
        if refused:
            raise ValidationError({"ids": [serializers.ErrorDetail(
                _("You may not delete record %(ids)s.") % {"ids": ", ".join(map(str, refused[:20]))},
                code="permission_denied")]})
        with transaction.atomic():
            for record in found.values():
                records.delete(record, user=request.user, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _list_parameters(model, relations: list[str]) -> list[OpenApiParameter]:
    fields = [f.name for f in model._meta.fields if f.name != "deleted_at"] + [
        spec["key"] for spec in model.lowcode_entity["fields"] if not field_type_registry.get(spec["type"]).has_column]
    fields += [f.name for f in model._meta.many_to_many]
    parameters = [
        OpenApiParameter("fields", OpenApiTypes.STR, description=_("Comma-separated fields to return, of: %s")
                         % ", ".join(fields)),
        OpenApiParameter("expand", OpenApiTypes.STR, description=_("Comma-separated relations to return as "
                                                                   "records instead of ids, of: %s")
                         % ", ".join(relations) if relations else _("No relation to expand.")),
    ]
    return parameters


def build_viewset(key: str, serializer_class) -> type[RecordViewSet]:
    """The viewset of one entity (built on its first request, `runtime.Snapshot.record_viewsets`)."""
    model = serializer_class.Meta.model
    body = model.lowcode_entity
    searchable = [spec["key"] for spec in body["fields"] if spec.get("searchable") and not spec.get("encrypted")
                  and field_type_registry.get(spec["type"]).searchable]
    ordering = [*SYSTEM_FIELDS[:3], *(spec["key"] for spec in body["fields"]
                                      if field_type_registry.get(spec["type"]).can_order(spec)
                                      or spec["key"] in model.lowcode_formulas and formulas.can_order(model, spec["key"]))]
    relations = {f.name: f for f in model._meta.get_fields() if f.is_relation and not f.auto_created
                 and f.name not in ("created_by", "updated_by") and not isinstance(f, file_fields.FILE_MODEL_FIELDS)}
    parameters = _list_parameters(model, list(relations))
    viewset = type(f"{key}ViewSet", (RecordViewSet,), {
        "model": model, "entity_key": key, "queryset": model.objects.all(),
        "serializer_class": serializer_class,
        "search_fields": searchable, "ordering_fields": ordering, "ordering": model._meta.ordering,
        "relations": relations,
        # Its own: DRF's inspector keeps the last view it described, which would keep a replaced snapshot alive.
        "schema": RecordAutoSchema(),
    })
    return _document(viewset, parameters, body)


def _document(viewset, parameters, body):
    deleted = OpenApiParameter("deleted", OpenApiTypes.STR, enum=["only"],
                               description=_("`only` lists soft-deleted records (to restore them)."))
    label = body.get("label_plural") or body["key"]
    return extend_schema_view(
        list=extend_schema(parameters=[*parameters, deleted], summary=_("List %s") % label),
        retrieve=extend_schema(parameters=parameters),
    )(viewset)


class EntityView:
    """The view of one route of an entity's resource, whose viewset is built on its first request.

    It answers like the view `as_view()` makes (DRF's `cls`, `actions` and `initkwargs` for
    drf-spectacular; CSRF left to DRF's session authentication), so the URL names and the
    OpenAPI schema are those of a router over built viewsets.
    """

    csrf_exempt = True

    def __init__(self, viewsets, key: str, actions: dict, initkwargs: dict):
        self.viewsets, self.key, self.actions, self.initkwargs = viewsets, key, actions, initkwargs
        self._view = None

    @property
    def cls(self):
        return self.viewsets[self.key]

    def __call__(self, request, *args, **kwargs):
        if self._view is None:  # Two threads may both build it; either serves.
            self._view = self.cls.as_view(self.actions, **self.initkwargs)
        return self._view(request, *args, **kwargs)


#: Stands for an entity key in the routes computed once from RecordViewSet (keys are [a-z0-9_]).
_KEY = "LOWCODEENTITYKEY"


def _entity_routes() -> list:
    """The routes of any entity's resource: a router's over RecordViewSet (every entity has its actions)."""
    router = routers.SimpleRouter(trailing_slash=True)
    router.register(_KEY, RecordViewSet, basename=f"data-{_KEY}")
    return router.urls


def build_urlpatterns(viewsets) -> list:
    """The URLs of every entity's resource, from the snapshot's viewsets (`PerEntity`: built on first use)."""
    patterns = []
    routes = _entity_routes()
    for key in viewsets:
        for route in routes:
            initkwargs = {**route.callback.initkwargs, "basename": f"data-{key}"}
            view = EntityView(viewsets, key, route.callback.actions, initkwargs)
            patterns.append(re_path(route.pattern.regex.pattern.replace(_KEY, key), view,
                                    name=route.name.replace(_KEY, key)))
    root = routers.APIRootView.as_view(api_root_dict={key: f"data-{key}-list" for key in viewsets})
    return [*transfer_urlpatterns(), re_path(r"^$", root, name="api-root"), *patterns]
