"""The metadata REST API (DM-5, MD-2, MD-3, MD-4): what a builder does in admin, an integrator does here.

The entity kind's share of `/api/v1/meta/`: entity designs and their fields, preview, publish,
roll back, purge, versions, diffs, ejected code and schema migrations, on the kind-agnostic
pieces of `metadata.api` (errors, designer permission, versions, bundles). Views are thin: they
parse the request, call one function of `dynamic_models.services` or `metadata.services`, map
its exceptions to HTTP answers and serialize the result.

Errors follow `metadata.api.errors`; field endpoints give paths relative to the field
(`{"key": [...]}`); deleting a published entity answers 409.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from dynamic_models import keys, services
from dynamic_models.models import Entity, SchemaMigration
from dynamic_models.registries import field_type_registry
from dynamic_models.schema import MigrationRefused
from lowcode.api.exceptions import Conflict
from lowcode.api.pagination import PageNumbers
from lowcode.api.serializers import JSONBodySerializer
from metadata import services as metadata
from metadata.api import views as metadata_views
from metadata.api.errors import CONFLICT, NOT_FOUND, VALIDATION_ERRORS, metadata_errors, path_errors, register_answer
from metadata.api.permissions import MetaViewMixin
from metadata.api.serializers import (
    DiffQuerySerializer,
    DiffSerializer,
    PublishSerializer,
    RollbackSerializer,
    VersionSerializer,
)
from metadata.exceptions import DefinitionNotFound

KIND = services.KIND
#: Anything but a slash: a hostile key reaches the view and gets a JSON 404, not an HTML page.
KEY_REGEX = r"[^/]+"


def _refused_rows(error: MigrationRefused) -> ValidationError:
    # Keyed by the field whose rows would break; the preview lists sample ids.
    return ValidationError(path_errors([{"path": item["field"], "code": item["code"], "message": item["message"]}
                                        for item in error.impact if item["blocking"]]))


register_answer(MigrationRefused, _refused_rows)
register_answer(services.DesignConflict, lambda error: Conflict(str(error)))


class EntityViewMixin(MetaViewMixin):
    """Entity views: the entity model permissions, and the entity named by the URL."""

    read_permissions = ("dynamic_models.view_entity",)
    write_permissions = ("dynamic_models.change_entity",)

    def get_entity(self, key: str) -> Entity:
        try:
            if "\x00" in key:  # PostgreSQL refuses the query; no key holds one anyway.
                raise Entity.DoesNotExist
            return Entity.objects.get(key=key)
        except Entity.DoesNotExist:
            raise NotFound(_("No entity %(key)r in this workspace.") % {"key": key[:100]}) from None


# --- Serializers: entity designs ------------------------------------------------------------

_FLAG_HELP = {
    "required": gettext_lazy("Every record must have a value."),
    "unique": gettext_lazy("No two records share a value."),
    "index": gettext_lazy("Indexed in the database."),
    "read_only": gettext_lazy("Not editable in forms and the data API."),
    "encrypted": gettext_lazy("Stored encrypted; found by exact value only."),
    "show_in_list": gettext_lazy("A column of the admin list."),
    "filterable": gettext_lazy("A filter of the admin list."),
    "searchable": gettext_lazy("Searched by the admin list's and the API's search."),
}


def _field_spec_fields(*, write: bool) -> dict:
    optional = {"required": False} if write else {}
    fields = {
        "id": serializers.RegexField(r"^[a-z0-9]{6,32}$", required=not write, help_text=gettext_lazy(
            "Stable id linking the field to its column (a rename keeps the data). Generated if omitted.")),
        "key": serializers.RegexField(keys.KEY_RE.pattern, max_length=keys.FIELD_KEY_MAX, help_text=gettext_lazy(
            "Lowercase identifier: the column's name. Not a SQL or Python keyword nor a system field.")),
        "type": serializers.ChoiceField(choices=field_type_registry.get_types()),
        "label": serializers.CharField(max_length=200, allow_blank=True, **optional),
        "help_text": serializers.CharField(max_length=500, allow_blank=True, **optional),
        **{flag: serializers.BooleanField(help_text=text, **optional) for flag, text in _FLAG_HELP.items()},
        "default": serializers.JSONField(allow_null=True, required=not write, help_text=gettext_lazy(
            "The value of new records (any JSON); null for none.")),
        "options": serializers.DictField(help_text=gettext_lazy(
            'Options of the type, e.g. {"max_length": 120}, {"choices": [{"value": "travel"}]}, '
            '{"target": "project", "on_delete": "protect"}.'), **optional),
    }
    return fields


class FieldSpecSerializer(serializers.Serializer):
    """A field of an entity design."""

    def get_fields(self):
        return _field_spec_fields(write=False)


class FieldSpecWriteSerializer(serializers.Serializer):
    """A field to add to a design (only `key` and `type` are needed)."""

    def get_fields(self):
        return _field_spec_fields(write=True)


class RuleSerializer(serializers.Serializer):
    key = serializers.RegexField(r"^[a-z][a-z0-9_]{0,39}$")
    expression = serializers.CharField(max_length=2000, help_text=gettext_lazy(
        'Must be true for a record to be saved, e.g. "end_date >= start_date".'))
    message = serializers.CharField(max_length=500)
    field = serializers.CharField(required=False, help_text=gettext_lazy(
        "The field the error is shown on; else the whole record."))
    translations = serializers.DictField(child=serializers.CharField(max_length=500), required=False,
                                         help_text=gettext_lazy("The message per language code."))


class _EntityDesignFields(serializers.Serializer):
    key = serializers.RegexField(keys.KEY_RE.pattern, max_length=keys.ENTITY_KEY_MAX, help_text=gettext_lazy(
        "Lowercase identifier; the table is named dm_ followed by the key. Fixed once created."))
    label = serializers.CharField(max_length=200, allow_blank=True, required=False)
    label_plural = serializers.CharField(max_length=200, allow_blank=True, required=False)
    description = serializers.CharField(max_length=2000, allow_blank=True, required=False)
    app = serializers.CharField(max_length=63, allow_blank=True, required=False,
                                help_text=gettext_lazy("Groups entities in bundles."))
    display_field = serializers.CharField(allow_blank=True, required=False,
                                          help_text=gettext_lazy("The field that names a record."))
    ordering = serializers.ListField(child=serializers.CharField(), max_length=5, required=False,
                                     help_text=gettext_lazy("Field keys; prefix with - for descending."))
    translations = serializers.DictField(child=serializers.DictField(), required=False, help_text=gettext_lazy(
        'Labels per language, e.g. {"zh-hans": {"label": "费用", "fields": {"title": "标题"}}}.'))
    rules = RuleSerializer(many=True, required=False, help_text=gettext_lazy("Cross-field rules (DM-6)."))


class EntityDesignWriteSerializer(_EntityDesignFields):
    """A full entity design; fields without an id keep the id of the field of the same key."""

    fields = FieldSpecWriteSerializer(many=True)


class EntityBodySerializer(_EntityDesignFields):
    """An entity's metadata body, as stored in a version."""

    fields = FieldSpecSerializer(many=True)


class EntityDesignSerializer(EntityBodySerializer):
    """An entity's current design (the draft) with its published version."""

    label = serializers.CharField()
    label_plural = serializers.CharField()
    description = serializers.CharField()
    app = serializers.CharField()
    display_field = serializers.CharField()
    ordering = serializers.ListField(child=serializers.CharField())
    translations = serializers.DictField(child=serializers.DictField())
    rules = RuleSerializer(many=True)
    published_version = serializers.IntegerField(allow_null=True, help_text=gettext_lazy(
        "The live version; null if never published."))
    pending_changes = serializers.BooleanField(help_text=gettext_lazy("The design differs from the live version."))


class EntitySummarySerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    app = serializers.CharField()
    published_version = serializers.IntegerField(allow_null=True)
    pending_changes = serializers.BooleanField()
    fields = serializers.IntegerField(help_text=gettext_lazy("Number of fields in the design."))
    rows = serializers.IntegerField(allow_null=True, help_text=gettext_lazy(
        "Records in the table, deleted ones included; null if not published."))
    removed_columns = serializers.IntegerField(help_text=gettext_lazy("Columns of removed fields kept until a purge."))


# --- Serializers: publishing ------------------------------------------------------------------


class ImpactSerializer(serializers.Serializer):
    field = serializers.CharField()
    code = serializers.CharField(help_text=gettext_lazy("null, unique, invalid_cast, max_length, regex, ..."))
    count = serializers.IntegerField(help_text=gettext_lazy("Rows affected."))
    sample_ids = serializers.ListField(child=serializers.IntegerField())
    blocking = serializers.BooleanField(help_text=gettext_lazy("Publishing is refused while these rows exist."))
    message = serializers.CharField()


class PreviewSerializer(serializers.Serializer):
    entity = serializers.CharField()
    from_version = serializers.IntegerField(allow_null=True, help_text=gettext_lazy(
        "The live version the plan starts from; pass it as expected_version to publish."))
    summary = serializers.ListField(child=serializers.CharField())
    operations = serializers.ListField(child=serializers.DictField())
    sql = serializers.ListField(child=serializers.CharField())
    impact = ImpactSerializer(many=True)


@extend_schema_field({"type": "object", "additionalProperties": {"type": "object"}})
class DataChangesField(serializers.JSONField):
    """{field key: {what to do}}; one flat error when it is not an object of objects (the API's
    error format has a list of messages per field, never nested objects)."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not isinstance(value, dict) or not all(isinstance(item, dict) for item in value.values()):
            raise serializers.ValidationError(gettext_lazy(
                'Give an object by field key, e.g. {"category": {"value_map": {"meals": "other"}}}.'), code="invalid")
        return value


def _data_changes_field():
    return DataChangesField(required=False, default=dict, help_text=gettext_lazy(
        "What to do with rows the change would damage, by field key: {\"category\": {\"value_map\": "
        "{\"meals\": \"other\"}}} stores another value (or null) where a removed choice is held; "
        "{\"project\": {\"clear\": true}} empties a relation that now leads to another entity."))


class EntityPreviewRequestSerializer(JSONBodySerializer):
    data_changes = _data_changes_field()


class EntityPublishSerializer(PublishSerializer):
    data_changes = _data_changes_field()


class SchemaMigrationSerializer(serializers.ModelSerializer):
    entity = serializers.CharField(source="entity_key")
    author = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True,
                                          help_text=gettext_lazy("Who published; null if unknown."))
    operations = serializers.ListField(child=serializers.DictField())

    class Meta:
        model = SchemaMigration
        fields = ["id", "entity", "from_version", "to_version", "status", "operations", "forward_sql",
                  "backward_sql", "author", "duration_ms", "rows_affected", "created_at"]


class PurgeSerializer(serializers.Serializer):
    dropped_columns = serializers.ListField(child=serializers.CharField())


class EjectSerializer(serializers.Serializer):
    migration = serializers.CharField(help_text=gettext_lazy("A Django migration file."))
    models = serializers.CharField(help_text=gettext_lazy("A models.py snippet."))


# --- Serializers: versions and diffs -----------------------------------------------------------


class VersionDetailSerializer(VersionSerializer):
    body = EntityBodySerializer()

    class Meta(VersionSerializer.Meta):
        fields = [*VersionSerializer.Meta.fields, "body"]


class EjectQuerySerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, required=False)


# --- Views --------------------------------------------------------------------------------------

_ENTITY_KEY = OpenApiParameter("entity_key", OpenApiTypes.STR, OpenApiParameter.PATH,
                               description=gettext_lazy("The entity's key."))
_FIELD_KEY = OpenApiParameter("field_key", OpenApiTypes.STR, OpenApiParameter.PATH,
                              description=gettext_lazy("The field's key."))


@extend_schema(tags=["metadata"])
class EntityViewSet(EntityViewMixin, viewsets.GenericViewSet):
    """Entity designs (drafts) and their lifecycle: preview, publish, roll back, purge, diff, eject."""

    queryset = Entity.objects.all()
    lookup_field = "key"
    lookup_value_regex = KEY_REGEX
    serializer_class = EntityDesignSerializer
    action_permissions = {"create": ("dynamic_models.add_entity",), "destroy": ("dynamic_models.delete_entity",)}

    def _detail(self, entity: Entity) -> dict:
        return EntityDesignSerializer(services.design_detail(entity)).data

    @extend_schema(summary=gettext_lazy("List entities"), responses=EntitySummarySerializer(many=True),
                   parameters=[OpenApiParameter("app", OpenApiTypes.STR, description=gettext_lazy(
                       "Only the entities of this app."))])
    def list(self, request):
        rows = services.entity_overview()
        app = request.query_params.get("app")
        if app is not None:
            rows = [row for row in rows if row["app"] == app]
        return Response(EntitySummarySerializer(rows, many=True).data)

    @extend_schema(summary=gettext_lazy("An entity's design"), responses={200: EntityDesignSerializer, 404: NOT_FOUND})
    def retrieve(self, request, key):
        return Response(self._detail(self.get_entity(key)))

    @extend_schema(summary=gettext_lazy("Design a new entity"), request=EntityDesignWriteSerializer,
                   responses={201: EntityDesignSerializer, 400: VALIDATION_ERRORS})
    def create(self, request):
        with metadata_errors():
            entity = services.create_design(request.data)
        return Response(self._detail(entity), status=status.HTTP_201_CREATED)

    @extend_schema(summary=gettext_lazy("Replace an entity's design"), request=EntityDesignWriteSerializer,
                   responses={200: EntityDesignSerializer, 400: VALIDATION_ERRORS, 404: NOT_FOUND})
    def update(self, request, key):
        entity = self.get_entity(key)
        with metadata_errors():
            entity = services.replace_design(entity, request.data)
        return Response(self._detail(entity))

    @extend_schema(summary=gettext_lazy("Delete an unpublished design"),
                   responses={204: None, 404: NOT_FOUND, 409: CONFLICT})
    def destroy(self, request, key):
        entity = self.get_entity(key)
        with metadata_errors():
            services.delete_design(entity)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary=gettext_lazy("Preview publishing: operations, SQL and data impact"),
                   request=EntityPreviewRequestSerializer,
                   responses={200: PreviewSerializer, 400: VALIDATION_ERRORS, 404: NOT_FOUND})
    @action(detail=True, methods=["post"])
    def preview(self, request, key):
        entity = self.get_entity(key)
        params = EntityPreviewRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        with metadata_errors():
            plan = services.preview(entity, data_changes=params.validated_data["data_changes"])
        return Response(PreviewSerializer(plan).data)

    @extend_schema(summary=gettext_lazy("Publish the design as a new version"), request=EntityPublishSerializer,
                   responses={201: SchemaMigrationSerializer, 400: VALIDATION_ERRORS, 404: NOT_FOUND,
                              409: CONFLICT})
    @action(detail=True, methods=["post"])
    def publish(self, request, key):
        entity = self.get_entity(key)
        params = EntityPublishSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        expected = params.validated_data["expected_version"]  # 0: nothing published yet.
        with metadata_errors():
            migration = services.publish(entity, author=request.user, note=params.validated_data["note"],
                                         expected_version=expected,
                                         data_changes=params.validated_data["data_changes"])
        return Response(SchemaMigrationSerializer(migration).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary=gettext_lazy("Publish an earlier version again"), request=RollbackSerializer,
                   responses={201: SchemaMigrationSerializer, 400: VALIDATION_ERRORS, 404: NOT_FOUND,
                              409: CONFLICT})
    @action(detail=True, methods=["post"])
    def rollback(self, request, key):
        entity = self.get_entity(key)
        params = RollbackSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        to_version = params.validated_data["to_version"]
        # Without a version, "not found" means there is nothing to go back to: a state, not a URL.
        with metadata_errors(None if to_version else {DefinitionNotFound: Conflict}):
            migration = services.rollback(entity.key, to_version=to_version, author=request.user)
        return Response(SchemaMigrationSerializer(migration).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary=gettext_lazy("Drop the kept columns of removed fields (their data is lost)"),
                   request=None, responses={200: PurgeSerializer, 404: NOT_FOUND, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def purge(self, request, key):
        entity = self.get_entity(key)
        with metadata_errors({DefinitionNotFound: Conflict}):  # Not published: nothing to purge.
            columns = services.purge(entity.key)
        return Response(PurgeSerializer({"dropped_columns": columns}).data)

    @extend_schema(summary=gettext_lazy("Compare two versions"), responses={
        200: DiffSerializer, 400: VALIDATION_ERRORS, 404: NOT_FOUND}, parameters=[
        OpenApiParameter("from", OpenApiTypes.INT, required=True, description=gettext_lazy("The older version.")),
        OpenApiParameter("to", OpenApiTypes.INT, required=True, description=gettext_lazy("The newer version."))])
    @action(detail=True, methods=["get"])
    def diff(self, request, key):
        entity = self.get_entity(key)
        params = DiffQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        with metadata_errors():
            result = metadata.compare(KIND, entity.key, params.validated_data["from"], params.validated_data["to"])
        return Response(DiffSerializer(result).data)

    @extend_schema(summary=gettext_lazy("A migration as Django code"), responses={
        200: EjectSerializer, 400: VALIDATION_ERRORS, 404: NOT_FOUND}, parameters=[
        OpenApiParameter("version", OpenApiTypes.INT, description=gettext_lazy(
            "The version the migration led to (default: the latest)."))])
    @action(detail=True, methods=["get"])
    def eject(self, request, key):
        entity = self.get_entity(key)
        params = EjectQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        with metadata_errors():
            code = services.eject(entity.key, version=params.validated_data.get("version"))
        return Response(EjectSerializer(code).data)


@extend_schema(tags=["metadata"])
@extend_schema_view(
    list=extend_schema(summary=gettext_lazy("Fields of an entity's design"), parameters=[_ENTITY_KEY],
                       responses={200: FieldSpecSerializer(many=True), 404: NOT_FOUND}),
    create=extend_schema(summary=gettext_lazy("Add a field to the design"), parameters=[_ENTITY_KEY],
                         request=FieldSpecWriteSerializer,
                         responses={201: FieldSpecSerializer, 400: VALIDATION_ERRORS, 404: NOT_FOUND}),
    retrieve=extend_schema(summary=gettext_lazy("A field of the design"), parameters=[_ENTITY_KEY, _FIELD_KEY],
                           responses={200: FieldSpecSerializer, 404: NOT_FOUND}),
    partial_update=extend_schema(summary=gettext_lazy("Change a field of the design (a new key renames it)"),
                                 parameters=[_ENTITY_KEY, _FIELD_KEY], request=FieldSpecWriteSerializer,
                                 responses={200: FieldSpecSerializer, 400: VALIDATION_ERRORS, 404: NOT_FOUND}),
    destroy=extend_schema(summary=gettext_lazy("Remove a field from the design (its column is kept until a purge)"),
                          parameters=[_ENTITY_KEY, _FIELD_KEY],
                          responses={204: None, 400: VALIDATION_ERRORS, 404: NOT_FOUND}),
)
class FieldViewSet(EntityViewMixin, viewsets.ViewSet):
    """The fields of an entity's design; changes take effect when the design is published."""

    lookup_field = "key"
    lookup_url_kwarg = "field_key"
    lookup_value_regex = KEY_REGEX

    def list(self, request, entity_key):
        entity = self.get_entity(entity_key)
        return Response(FieldSpecSerializer(services.entity_body(entity)["fields"], many=True).data)

    def create(self, request, entity_key):
        entity = self.get_entity(entity_key)
        with metadata_errors():
            spec = services.add_field(entity, request.data)
        return Response(FieldSpecSerializer(spec).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request, entity_key, field_key):
        entity = self.get_entity(entity_key)
        with metadata_errors():
            spec = services.get_field(entity, field_key)
        return Response(FieldSpecSerializer(spec).data)

    def partial_update(self, request, entity_key, field_key):
        entity = self.get_entity(entity_key)
        with metadata_errors():
            spec = services.update_field(entity, field_key, request.data)
        return Response(FieldSpecSerializer(spec).data)

    def destroy(self, request, entity_key, field_key):
        entity = self.get_entity(entity_key)
        with metadata_errors():
            services.remove_field(entity, field_key)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["metadata"], parameters=[_ENTITY_KEY])
@extend_schema_view(
    list=extend_schema(summary=gettext_lazy("Versions of an entity, newest first"),
                       responses={200: VersionSerializer(many=True), 404: NOT_FOUND}),
    retrieve=extend_schema(summary=gettext_lazy("One version of an entity, with its body"),
                           responses={200: VersionDetailSerializer, 404: NOT_FOUND}),
)
class VersionViewSet(EntityViewMixin, metadata_views.VersionViewSet):
    """The versions of an entity (MD-1): draft, published and archived."""

    kind = KIND
    detail_serializer_class = VersionDetailSerializer

    def definition_key(self) -> str:
        return self.get_entity(self.kwargs["entity_key"]).key


class MigrationFilter(filters.FilterSet):
    entity = filters.CharFilter(field_name="entity_key", help_text=gettext_lazy("Only this entity's migrations."))

    class Meta:
        model = SchemaMigration
        fields = ["entity", "status"]


@extend_schema(tags=["metadata"])
@extend_schema_view(
    list=extend_schema(summary=gettext_lazy("Applied schema migrations, newest first")),
    retrieve=extend_schema(summary=gettext_lazy("One schema migration, with its SQL both ways"),
                           responses={200: SchemaMigrationSerializer, 404: NOT_FOUND}),
)
class MigrationViewSet(EntityViewMixin, viewsets.ReadOnlyModelViewSet):
    """Every change of an entity's table (DM-3)."""

    queryset = SchemaMigration.objects.select_related("author")
    serializer_class = SchemaMigrationSerializer
    filter_backends = [filters.DjangoFilterBackend]
    filterset_class = MigrationFilter
    pagination_class = PageNumbers
    read_permissions = ("dynamic_models.view_schemamigration",)
