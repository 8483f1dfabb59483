"""Views of the metadata API shared by every kind: versions of a definition and app bundles."""

from __future__ import annotations

import io

from django.http import QueryDict
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ErrorDetail, NotFound, ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.settings import api_settings

from lowcode.api.fields import FlatListField
from lowcode.api.parsers import JSONParser
from metadata import bundles
from metadata.api.errors import CONFLICT, NOT_FOUND, VALIDATION_ERRORS, ValidationErrorsSerializer, metadata_errors
from metadata.api.permissions import MetaViewMixin
from metadata.api.serializers import (
    BundleImportSerializer,
    BundleSerializer,
    BundleUploadSerializer,
    ImportRefusedSerializer,
    ImportReportSerializer,
    VersionSerializer,
)
from metadata.exceptions import BundleError
from metadata.models import Definition
from metadata.registries import definition_kind_registry

#: An uploaded bundle larger than this is refused before it is read.
MAX_BUNDLE_BYTES = 10 * 1024 * 1024


class VersionViewSet(MetaViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The versions of a definition (MD-1): draft, published and archived.

    A kind's subclass names the `kind`, finds the definition's key in the URL
    (`definition_key()`, NotFound if there is none) and gives its `detail_serializer_class`
    (the version with its body).
    """

    kind: str
    detail_serializer_class: type[serializers.Serializer]
    lookup_field = "version"
    lookup_value_regex = r"[0-9]+"
    serializer_class = VersionSerializer
    pagination_class = None

    def definition_key(self) -> str:
        raise NotImplementedError

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular asks for the model only.
            return Definition.objects.none()
        key = self.definition_key()
        return Definition.objects.filter(kind=self.kind, key=key).select_related("author").order_by("-version")

    def get_serializer_class(self):
        return self.detail_serializer_class if self.action == "retrieve" else VersionSerializer

    def get_object(self):
        try:
            return self.get_queryset().get(version=self.kwargs["version"])
        except Definition.DoesNotExist:
            raise NotFound(_("%(key)s has no version %(version)s.")
                           % {"key": self.definition_key(), "version": self.kwargs["version"]}) from None


def _kinds_in_bundles():
    """The kinds whose definitions an export can name, by the query parameter that names them."""
    return {kind.bundle_parameter: kind for kind in definition_kind_registry.get_all() if kind.bundle_parameter}


class _BundleSchema(AutoSchema):
    def get_override_parameters(self):
        parameters = super().get_override_parameters()
        if self.method == "GET":
            parameters += [OpenApiParameter(name, OpenApiTypes.STR, many=True, explode=True, description=_(
                "Only these %(kind)s definitions (with their dependencies); repeat for several. Default: "
                "everything.") % {"kind": kind.verbose_name or kind.type}) for name, kind in _kinds_in_bundles().items()]
        return parameters


class _ExportQuerySerializer(serializers.Serializer):
    def get_fields(self):
        return {"app": serializers.CharField(max_length=63, required=False),
                **{name: FlatListField(child=serializers.CharField(max_length=63), required=False)
                   for name in _kinds_in_bundles()}}


@extend_schema(tags=["metadata"])
class BundleViewSet(MetaViewMixin, viewsets.ViewSet):
    """App bundles (MD-4): export published definitions, import them into this workspace.

    Every kind takes part: its `bundle_parameter` names its definitions in an export, its
    `view_permissions` are needed to export and its `import_permissions` to import.
    """

    schema = _BundleSchema()

    def get_design_permissions(self, request) -> tuple[str, ...]:
        kinds = definition_kind_registry.get_all()
        if getattr(self, "action", None) == "import_":
            return tuple(perm for kind in kinds for perm in kind.import_permissions)
        return tuple(perm for kind in kinds for perm in kind.view_permissions)

    @extend_schema(summary=gettext_lazy("Export published definitions as a bundle"),
                   responses={200: BundleSerializer, 400: VALIDATION_ERRORS, 404: NOT_FOUND, 409: CONFLICT},
                   parameters=[OpenApiParameter("app", OpenApiTypes.STR, description=gettext_lazy(
                       "Only this app's definitions (with their dependencies)."))])
    @action(detail=False, methods=["get"])
    def export(self, request):
        params = _ExportQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        keys = [(kind.type, key) for name, kind in _kinds_in_bundles().items()
                for key in params.validated_data.get(name) or []]
        with metadata_errors():
            bundle = bundles.export_bundle(app=params.validated_data.get("app"), keys=keys or None)
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
        with metadata_errors():
            try:
                if isinstance(bundle, io.BytesIO):  # A zip with the files of its entities' records.
                    report, _restored = bundles.import_archive(bundle, dry_run=dry_run, author=request.user)
                else:
                    report = bundles.import_bundle(bundle, dry_run=dry_run, author=request.user)
            except BundleError as error:  # Nothing was changed: say why, row by row.
                return Response(ImportRefusedSerializer({"detail": str(error), "code": "import_refused",
                                                         "report": error.report}).data,
                                status=status.HTTP_400_BAD_REQUEST)
        return Response(ImportReportSerializer({"dry_run": dry_run, "report": report}).data)

    @staticmethod
    def _read_bundle(request) -> tuple[dict | io.BytesIO, bool]:
        """Return the bundle of a JSON body or an uploaded `file` (a zip bundle as its bytes), and
        whether this is a dry run."""
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
            content = upload.read()
            if bundles.is_archive(content):
                bundle = io.BytesIO(content)
            else:
                with metadata_errors():
                    bundle = bundles.load_bundle(content)
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
