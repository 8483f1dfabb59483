"""The metadata REST API (DM-5, MD-2, MD-3, MD-4): what a builder does in admin, an integrator does here.

Entity designs and their fields, preview, publish, roll back, purge, versions, diffs, ejected
code, schema migrations and app bundles, under `/api/v1/meta/`. Views are thin: they parse
the request, call one function of `dynamic_models.services`, `metadata.services` or
`metadata.bundles`, map its exceptions to HTTP answers and serialize the result.

Errors use the project format (lowcode/api/exceptions.py). An invalid design answers 400
with the paths of the entity's JSON Schema, `{"fields/2/options/max_length": [{"code",
"message"}]}` (field endpoints: relative to the field, `{"key": [...]}`); a change the
current state refuses (a stale `expected_version`, deleting a published entity) answers 409.
"""

from __future__ import annotations

from contextlib import contextmanager

from django.http import QueryDict
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_filters import rest_framework as filters
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.plumbing import get_doc
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ErrorDetail, NotFound, ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.settings import api_settings

from dynamic_models import keys, services
from dynamic_models.models import Entity, SchemaMigration
from dynamic_models.registries import field_type_registry
from dynamic_models.schema import MigrationRefused
from lowcode.api.exceptions import Conflict
from lowcode.api.fields import FlatListField
from lowcode.api.pagination import PageNumbers
from lowcode.api.parsers import JSONParser
from lowcode.api.serializers import JSONBodySerializer
from lowcode.apikeys.permissions import ApiKeyScope
from metadata import bundles
from metadata import services as metadata
from metadata.exceptions import (
    BundleError,
    DefinitionNotFound,
    DefinitionValidationError,
    DependencyError,
    InvalidBundle,
    MetadataError,
    PublishConflict,
)
from metadata.models import Definition
from rbac import services as rbac

KIND = services.KIND
#: Anything but a slash: a hostile key reaches the view and gets a JSON 404, not an HTML page.
KEY_REGEX = r"[^/]+"
#: An uploaded bundle larger than this is refused before it is read.
MAX_BUNDLE_BYTES = 10 * 1024 * 1024

# --- Errors -------------------------------------------------------------------------------


def _path_errors(errors: list[dict], default_code: str = "invalid") -> dict:
    """Group {"path", "code", "message"} errors by path, as the API's validation detail."""
    detail: dict[str, list] = {}
    for error in errors:
        path = error.get("path") or api_settings.NON_FIELD_ERRORS_KEY
        detail.setdefault(path, []).append(ErrorDetail(error["message"], code=error.get("code") or default_code))
    return detail


def _as_api_error(error: MetadataError, overrides: dict) -> Exception:
    for error_class, api_error in overrides.items():
        if isinstance(error, error_class):
            return api_error(str(error))
    if isinstance(error, DefinitionValidationError):
        return ValidationError(_path_errors(error.errors))
    if isinstance(error, InvalidBundle):
        return ValidationError(_path_errors(error.errors, "invalid_bundle"))
    if isinstance(error, MigrationRefused):
        # Keyed by the field whose rows would break; the preview lists sample ids.
        return ValidationError(_path_errors([{"path": item["field"], "code": item["code"], "message": item["message"]}
                                             for item in error.impact if item["blocking"]]))
    if isinstance(error, DefinitionNotFound):
        return NotFound(str(error))
    if isinstance(error, PublishConflict | DependencyError | services.DesignConflict):
        return Conflict(str(error))
    return ValidationError({api_settings.NON_FIELD_ERRORS_KEY: [ErrorDetail(str(error), code="refused")]})


@contextmanager
def _metadata_errors(overrides: dict | None = None):
    """Turn a service's MetadataError into the API error for it.

    :param overrides: {MetadataError subclass: APIException subclass} for a refusal that means
        something else in this view ({DefinitionNotFound: Conflict}: nothing to roll back to).
    """
    try:
        yield
    except MetadataError as error:
        raise _as_api_error(error, overrides or {}) from error


# Named like the components lowcode.api.openapi adds to every schema, and shaped the same.
class ErrorSerializer(serializers.Serializer):
    """An error of the whole request."""

    detail = serializers.CharField()
    code = serializers.CharField()


class ValidationErrorsSerializer(serializers.Serializer):
    """Invalid input: errors by path, e.g. {"fields/0/key": [{"code": "key", "message": "..."}]}.

    `non_field_errors` holds the errors of the whole body. (Documented by the extension below:
    its keys are paths, which a serializer cannot declare.)
    """


class _ValidationErrorsExtension(OpenApiSerializerExtension):
    target_class = ValidationErrorsSerializer

    def map_serializer(self, auto_schema, direction):
        return {"type": "object", "description": get_doc(ValidationErrorsSerializer),
                "additionalProperties": {"type": "array", "items": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}


VALIDATION_ERRORS = OpenApiResponse(ValidationErrorsSerializer, description=gettext_lazy("Invalid input."))
NOT_FOUND = OpenApiResponse(ErrorSerializer, description=gettext_lazy("No such entity, field or version."))
CONFLICT = OpenApiResponse(ErrorSerializer, description=gettext_lazy(
    "Refused by the current state: published since the preview, another publish running, ..."))

# --- Permissions ----------------------------------------------------------------------------


class DesignerPermission(BasePermission):
    """Staff designers (rbac `designer.access`) with the model permissions the view asks for."""

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated and user.is_staff and rbac.check(user, "designer.access")):
            self.message = _("The metadata API is for designers: staff users with designer access.")
            return False
        missing = [perm for perm in view.get_design_permissions(request) if not user.has_perm(perm)]
        if missing:
            self.message = _("You lack the permission %(permissions)s.") % {"permissions": ", ".join(missing)}
            return False
        return True


class MetaViewMixin:
    """What every metadata view shares: the API-key resource, permissions and parsers."""

    api_resource = "metadata"  # Read by ApiKeyScope: metadata:read for GET, metadata:write otherwise.
    permission_classes = [IsAuthenticated, ApiKeyScope, DesignerPermission]
    parser_classes = [JSONParser]
    read_permissions: tuple[str, ...] = ("dynamic_models.view_entity",)
    write_permissions: tuple[str, ...] = ("dynamic_models.change_entity",)
    #: Per action, instead of the read or write permissions.
    action_permissions: dict[str, tuple[str, ...]] = {}

    def get_design_permissions(self, request) -> tuple[str, ...]:
        if getattr(self, "action", None) in self.action_permissions:
            return self.action_permissions[self.action]
        return self.read_permissions if request.method in SAFE_METHODS else self.write_permissions

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


class PublishSerializer(JSONBodySerializer):
    note = serializers.CharField(max_length=255, allow_blank=True, required=False, default="")
    expected_version = serializers.IntegerField(min_value=0, allow_null=True, required=False, default=None,
                                                help_text=gettext_lazy(
                                                    "The live version you previewed (the preview's from_version; "
                                                    "0 for none): if it changed since, the answer is 409. Null or "
                                                    "absent: no check."))


class RollbackSerializer(JSONBodySerializer):
    to_version = serializers.IntegerField(min_value=1, allow_null=True, required=False, default=None,
                                          help_text=gettext_lazy("Default: the version before the live one."))


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


class VersionSerializer(serializers.ModelSerializer):
    author = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True,
                                          help_text=gettext_lazy("Who saved or published it; null if unknown."))
    note = serializers.CharField(source="change_note")
    created = serializers.DateTimeField(source="created_at")

    class Meta:
        model = Definition
        fields = ["version", "status", "checksum", "author", "note", "created", "published_at"]


class VersionDetailSerializer(VersionSerializer):
    body = EntityBodySerializer()

    class Meta(VersionSerializer.Meta):
        fields = [*VersionSerializer.Meta.fields, "body"]


class ChangeSerializer(serializers.Serializer):
    op = serializers.ChoiceField(choices=["added", "removed", "changed", "reordered"])
    path = serializers.CharField(help_text=gettext_lazy("e.g. fields[category].options"))
    old = serializers.JSONField(allow_null=True)
    new = serializers.JSONField(allow_null=True)


class DiffSerializer(serializers.Serializer):
    changes = ChangeSerializer(many=True)
    summary = serializers.ListField(child=serializers.CharField())


class DiffQuerySerializer(serializers.Serializer):
    def get_fields(self):
        return {"from": serializers.IntegerField(min_value=1), "to": serializers.IntegerField(min_value=1)}


class EjectQuerySerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, required=False)


# --- Serializers: bundles -----------------------------------------------------------------------


class BundleDefinitionSerializer(serializers.Serializer):
    kind = serializers.CharField(max_length=40)
    key = serializers.CharField(max_length=63)
    version = serializers.IntegerField(min_value=1, required=False)
    checksum = serializers.RegexField(r"^[0-9a-f]{64}$", required=False, help_text=gettext_lazy(
        "SHA-256 of the body; an import refuses a body edited by hand unless it is removed."))
    body = serializers.DictField()


class BundleSerializer(serializers.Serializer):
    """An app bundle: published definitions, each after the ones it depends on."""

    format = serializers.ChoiceField(choices=[bundles.FORMAT])
    format_version = serializers.ChoiceField(choices=[bundles.FORMAT_VERSION])
    app = serializers.CharField(max_length=63, allow_null=True, allow_blank=True, required=False)
    exported_at = serializers.CharField(max_length=64, allow_null=True, allow_blank=True, required=False)
    definitions = BundleDefinitionSerializer(many=True)


class BundleImportSerializer(BundleSerializer):
    dry_run = serializers.BooleanField(required=False, help_text=gettext_lazy(
        "Report what would happen and change nothing (also ?dry_run=true)."))


class BundleUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text=gettext_lazy("The bundle's JSON file."))
    dry_run = serializers.BooleanField(required=False)


class ExportQuerySerializer(serializers.Serializer):
    app = serializers.CharField(max_length=63, required=False)
    entity = FlatListField(child=serializers.CharField(max_length=63), required=False)


class ImportRowSerializer(serializers.Serializer):
    kind = serializers.CharField()
    key = serializers.CharField()
    action = serializers.ChoiceField(choices=[a.value for a in bundles.Action])
    message = serializers.CharField(allow_blank=True)
    preview = serializers.DictField(allow_null=True, help_text=gettext_lazy(
        "For an entity: the planned operations, SQL, impact and conflicts."))


class ImportReportSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    report = ImportRowSerializer(many=True)


class ImportRefusedSerializer(ErrorSerializer):
    report = ImportRowSerializer(many=True)


# --- Views --------------------------------------------------------------------------------------

_ENTITY_KEY = OpenApiParameter("entity_key", OpenApiTypes.STR, OpenApiParameter.PATH,
                               description=gettext_lazy("The entity's key."))
_FIELD_KEY = OpenApiParameter("field_key", OpenApiTypes.STR, OpenApiParameter.PATH,
                              description=gettext_lazy("The field's key."))


@extend_schema(tags=["metadata"])
class EntityViewSet(MetaViewMixin, viewsets.GenericViewSet):
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
        with _metadata_errors():
            entity = services.create_design(request.data)
        return Response(self._detail(entity), status=status.HTTP_201_CREATED)

    @extend_schema(summary=gettext_lazy("Replace an entity's design"), request=EntityDesignWriteSerializer,
                   responses={200: EntityDesignSerializer, 400: VALIDATION_ERRORS, 404: NOT_FOUND})
    def update(self, request, key):
        entity = self.get_entity(key)
        with _metadata_errors():
            entity = services.replace_design(entity, request.data)
        return Response(self._detail(entity))

    @extend_schema(summary=gettext_lazy("Delete an unpublished design"),
                   responses={204: None, 404: NOT_FOUND, 409: CONFLICT})
    def destroy(self, request, key):
        entity = self.get_entity(key)
        with _metadata_errors():
            services.delete_design(entity)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary=gettext_lazy("Preview publishing: operations, SQL and data impact"), request=None,
                   responses={200: PreviewSerializer, 400: VALIDATION_ERRORS, 404: NOT_FOUND})
    @action(detail=True, methods=["post"])
    def preview(self, request, key):
        entity = self.get_entity(key)
        with _metadata_errors():
            plan = services.preview(entity)
        return Response(PreviewSerializer(plan).data)

    @extend_schema(summary=gettext_lazy("Publish the design as a new version"), request=PublishSerializer,
                   responses={201: SchemaMigrationSerializer, 400: VALIDATION_ERRORS, 404: NOT_FOUND,
                              409: CONFLICT})
    @action(detail=True, methods=["post"])
    def publish(self, request, key):
        entity = self.get_entity(key)
        params = PublishSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        expected = params.validated_data["expected_version"]  # 0: nothing published yet.
        with _metadata_errors():
            migration = services.publish(entity, author=request.user, note=params.validated_data["note"],
                                                expected_version=expected)
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
        with _metadata_errors(None if to_version else {DefinitionNotFound: Conflict}):
            migration = services.rollback(entity.key, to_version=to_version, author=request.user)
        return Response(SchemaMigrationSerializer(migration).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary=gettext_lazy("Drop the kept columns of removed fields (their data is lost)"),
                   request=None, responses={200: PurgeSerializer, 404: NOT_FOUND, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def purge(self, request, key):
        entity = self.get_entity(key)
        with _metadata_errors({DefinitionNotFound: Conflict}):  # Not published: nothing to purge.
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
        with _metadata_errors():
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
        with _metadata_errors():
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
class FieldViewSet(MetaViewMixin, viewsets.ViewSet):
    """The fields of an entity's design; changes take effect when the design is published."""

    lookup_field = "key"
    lookup_url_kwarg = "field_key"
    lookup_value_regex = KEY_REGEX

    def list(self, request, entity_key):
        entity = self.get_entity(entity_key)
        return Response(FieldSpecSerializer(services.entity_body(entity)["fields"], many=True).data)

    def create(self, request, entity_key):
        entity = self.get_entity(entity_key)
        with _metadata_errors():
            spec = services.add_field(entity, request.data)
        return Response(FieldSpecSerializer(spec).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request, entity_key, field_key):
        entity = self.get_entity(entity_key)
        with _metadata_errors():
            spec = services.get_field(entity, field_key)
        return Response(FieldSpecSerializer(spec).data)

    def partial_update(self, request, entity_key, field_key):
        entity = self.get_entity(entity_key)
        with _metadata_errors():
            spec = services.update_field(entity, field_key, request.data)
        return Response(FieldSpecSerializer(spec).data)

    def destroy(self, request, entity_key, field_key):
        entity = self.get_entity(entity_key)
        with _metadata_errors():
            services.remove_field(entity, field_key)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["metadata"], parameters=[_ENTITY_KEY])
@extend_schema_view(
    list=extend_schema(summary=gettext_lazy("Versions of an entity, newest first"),
                       responses={200: VersionSerializer(many=True), 404: NOT_FOUND}),
    retrieve=extend_schema(summary=gettext_lazy("One version of an entity, with its body"),
                           responses={200: VersionDetailSerializer, 404: NOT_FOUND}),
)
class VersionViewSet(MetaViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The versions of an entity (MD-1): draft, published and archived."""

    lookup_field = "version"
    lookup_value_regex = r"[0-9]+"
    serializer_class = VersionSerializer
    pagination_class = None

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular asks for the model only.
            return Definition.objects.none()
        entity = self.get_entity(self.kwargs["entity_key"])
        return Definition.objects.filter(kind=KIND, key=entity.key).select_related("author").order_by("-version")

    def get_serializer_class(self):
        return VersionDetailSerializer if self.action == "retrieve" else VersionSerializer

    def get_object(self):
        try:
            return self.get_queryset().get(version=self.kwargs["version"])
        except Definition.DoesNotExist:
            raise NotFound(_("%(key)s has no version %(version)s.")
                           % {"key": self.kwargs["entity_key"], "version": self.kwargs["version"]}) from None


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
class MigrationViewSet(MetaViewMixin, viewsets.ReadOnlyModelViewSet):
    """Every change of an entity's table (DM-3)."""

    queryset = SchemaMigration.objects.select_related("author")
    serializer_class = SchemaMigrationSerializer
    filter_backends = [filters.DjangoFilterBackend]
    filterset_class = MigrationFilter
    pagination_class = PageNumbers
    read_permissions = ("dynamic_models.view_schemamigration",)


@extend_schema(tags=["metadata"])
class BundleViewSet(MetaViewMixin, viewsets.ViewSet):
    """App bundles (MD-4): export published definitions, import them into this workspace."""

    action_permissions = {"import_": ("dynamic_models.add_entity", "dynamic_models.change_entity")}

    @extend_schema(summary=gettext_lazy("Export published definitions as a bundle"),
                   responses={200: BundleSerializer, 400: VALIDATION_ERRORS, 404: NOT_FOUND, 409: CONFLICT},
                   parameters=[
                       OpenApiParameter("app", OpenApiTypes.STR, description=gettext_lazy(
                           "Only this app's definitions (with their dependencies).")),
                       OpenApiParameter("entity", OpenApiTypes.STR, many=True, explode=True,
                                        description=gettext_lazy("Only these entities (with their dependencies); "
                                                                 "repeat for several. Default: everything."))])
    @action(detail=False, methods=["get"])
    def export(self, request):
        params = ExportQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        entities = params.validated_data.get("entity")
        with _metadata_errors():
            bundle = bundles.export_bundle(app=params.validated_data.get("app"),
                                           keys=[(KIND, key) for key in entities] if entities else None)
        return Response(bundle)

    @extend_schema(summary=gettext_lazy("Import a bundle (dry run: report only)"),
                   request={"application/json": BundleImportSerializer, "multipart/form-data": BundleUploadSerializer},
                   parameters=[OpenApiParameter("dry_run", OpenApiTypes.BOOL, description=gettext_lazy(
                       "Report what would happen and change nothing."))],
                   responses={200: ImportReportSerializer, 409: CONFLICT, 400: OpenApiResponse(
                       PolymorphicProxySerializer(component_name="ImportError", resource_type_field_name=None,
                                                  serializers=[ImportRefusedSerializer, ValidationErrorsSerializer]),
                       description=gettext_lazy("The import was refused and nothing changed (a report per "
                                                "definition), or the bundle is invalid (errors by path)."))})
    @action(detail=False, methods=["post"], url_path="import", url_name="import",
            parser_classes=[JSONParser, MultiPartParser])
    def import_(self, request):
        bundle, dry_run = self._read_bundle(request)
        with _metadata_errors():
            try:
                report = bundles.import_bundle(bundle, dry_run=dry_run, author=request.user)
            except BundleError as error:  # Nothing was changed: say why, row by row.
                return Response(ImportRefusedSerializer({"detail": str(error), "code": "import_refused",
                                                         "report": error.report}).data,
                                status=status.HTTP_400_BAD_REQUEST)
        return Response(ImportReportSerializer({"dry_run": dry_run, "report": report}).data)

    @staticmethod
    def _read_bundle(request) -> tuple[dict, bool]:
        """Return the bundle of a JSON body or an uploaded `file`, and whether this is a dry run."""
        data = request.data
        upload = request.FILES.get("file")
        dry_run = False
        # Text flags (query and form); each is checked, wherever it came from.
        texts = [request.query_params["dry_run"]] if "dry_run" in request.query_params else []
        if isinstance(data, QueryDict):  # A form: the bundle is its file.
            if upload is None:
                raise ValidationError({"file": [ErrorDetail(_("Attach the bundle as a file named \"file\"."),
                                                            code="required")]})
            if upload.size > MAX_BUNDLE_BYTES:
                raise ValidationError({"file": [ErrorDetail(_("A bundle file may have at most %(size)d MB.")
                                                            % {"size": MAX_BUNDLE_BYTES // 2**20}, code="too_large")]})
            with _metadata_errors():
                bundle = bundles.load_bundle(upload.read())
            texts += [data["dry_run"]] if "dry_run" in data else []
        elif isinstance(data, dict):
            bundle = dict(data)
            dry_run = bundle.pop("dry_run", False)
            if not isinstance(dry_run, bool):  # JSON has true and false: no null, 0 or "yes".
                raise ValidationError({"dry_run": [ErrorDetail(
                    serializers.BooleanField.default_error_messages["invalid"], code="invalid")]})
        else:
            raise ValidationError({api_settings.NON_FIELD_ERRORS_KEY: [ErrorDetail(_(
                "Send the bundle as a JSON object, or as a multipart file named \"file\"."), code="no_bundle")]})
        for text in texts:
            try:
                dry_run |= serializers.BooleanField().to_internal_value(text)
            except ValidationError as error:
                raise ValidationError({"dry_run": error.detail}) from None
        return bundle, dry_run
