"""CSV/XLSX export and import of records through the API (DM-5); the work is in dynamic_models.transfer.

- `GET /api/v1/data/<entity>/export.csv` and `export.xlsx`: the list's records as a file.
- `POST /api/v1/data/<entity>/import/`: a CSV/XLSX upload (`file`) or a JSON list, `?dry_run=true`.
  Small imports answer the report at once; big ones answer 202 with a job.
- `GET /api/v1/data/import-jobs/<id>/`: a job's status, progress and report.
"""

from __future__ import annotations

from django.conf import settings
from django.http import FileResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, re_path, resolve, reverse
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, generics, permissions, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from dynamic_models import transfer
from dynamic_models.models import ImportJob
from lowcode.api.parsers import JSONParser
from lowcode.apikeys.permissions import ApiKeyScope
from rbac import services as rbac


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = gettext_lazy("The request is too large.")
    default_code = "too_large"


def _api_error(error: transfer.TransferError) -> exceptions.APIException:
    if isinstance(error, transfer.TooLarge):
        return PayloadTooLarge(error.message, code=error.code)
    return exceptions.ValidationError({error.field: [exceptions.ErrorDetail(error.message, code=error.code)]})


class ImportJobSerializer(serializers.ModelSerializer):
    entity = serializers.CharField(source="entity_key", read_only=True)
    progress = serializers.IntegerField(read_only=True, help_text=gettext_lazy("Percentage of rows processed."))
    errors = serializers.ListField(child=serializers.DictField(), read_only=True, help_text=gettext_lazy(
        'Rows that failed: {"row": <data row number>, "errors": {"field": [{"code", "message"}]}}.'))

    class Meta:
        model = ImportJob
        fields = ["id", "entity", "status", "dry_run", "file_format", "total", "processed", "progress", "valid",
                  "created", "errors", "message", "created_at", "started_at", "finished_at"]
        read_only_fields = fields


_ROW_ERROR = inline_serializer("RecordImportRowError", {
    "row": serializers.IntegerField(help_text=gettext_lazy("Data row number, from 1 (the header excluded).")),
    "errors": serializers.DictField(help_text=gettext_lazy('{"field": [{"code": "...", "message": "..."}]}')),
}, many=True)
_REPORT = inline_serializer("RecordImportReport", {
    "dry_run": serializers.BooleanField(),
    "total": serializers.IntegerField(),
    "valid": serializers.IntegerField(),
    "created": serializers.IntegerField(),
    "errors": _ROW_ERROR,
    "errors_omitted": serializers.IntegerField(required=False, help_text=gettext_lazy(
        "Rows with errors beyond the first 1000, counted only.")),
    "ignored_columns": serializers.ListField(child=serializers.CharField(), required=False, help_text=gettext_lazy(
        "Columns of system or read-only fields (as in an export), not imported.")),
})
_UPLOAD = inline_serializer("RecordImportUpload", {
    "file": serializers.FileField(help_text=gettext_lazy(".csv (UTF-8) or .xlsx; the first row holds field keys.")),
    "dry_run": serializers.BooleanField(required=False),
})
_XLSX = transfer.XLSX_CONTENT_TYPE


def _flag(request, name: str) -> bool:
    raw = request.query_params.get(name)
    if raw is None and isinstance(request.data, dict):
        raw = request.data.get(name)
    if raw is None or raw == "":
        return False
    try:
        return serializers.BooleanField().to_internal_value(raw)
    except exceptions.ValidationError:
        raise exceptions.ValidationError({name: [exceptions.ErrorDetail(_("Use true or false."), code="invalid")]}) \
            from None


def export_response(exported: transfer.ExportFile) -> FileResponse | StreamingHttpResponse:
    """The download of an export (the API's and admin's)."""
    if hasattr(exported.content, "read"):  # A file (XLSX); CSV is streamed as it is written.
        return FileResponse(exported.content, as_attachment=True, filename=exported.filename,
                            content_type=exported.content_type)
    response = StreamingHttpResponse(exported.content, content_type=exported.content_type)
    response["Content-Disposition"] = content_disposition_header(True, exported.filename)
    return response


class TransferActions:
    """Export and import actions of the record viewsets (RecordViewSet)."""

    def perform_content_negotiation(self, request, force=False):
        # A download may Accept text/csv or a spreadsheet: it gets the file; its errors stay JSON.
        return super().perform_content_negotiation(request, force=force or self.action == "export")

    @extend_schema(
        summary=gettext_lazy("Export records as CSV or XLSX"),
        description=gettext_lazy(
            "Every record the list would return (same filters, search, ordering and `fields=`) as one file, "
            "unpaginated: one column per field, relations as ids, several values comma-separated. CSV is UTF-8 "
            "with a byte order mark (Excel reads Chinese text). `export.csv` works with or without the final slash."),
        parameters=[
            OpenApiParameter("file_format", OpenApiTypes.STR, OpenApiParameter.PATH, enum=["csv", "xlsx"]),
            OpenApiParameter("fields", OpenApiTypes.STR, description=gettext_lazy("Comma-separated columns to export.")),
        ],
        responses={(200, "text/csv"): OpenApiTypes.BINARY, (200, _XLSX): OpenApiTypes.BINARY},
        filters=True,
    )
    @action(detail=False, methods=["get"], url_path=r"export\.(?P<file_format>csv|xlsx)")
    def export(self, request, file_format: str):
        queryset = self.filter_queryset(self.get_queryset())
        # Files are flat: relations stay ids even with expand=.
        serializer = self.get_serializer(context={**self.get_serializer_context(), "expand": set()})
        return export_response(transfer.export_file(self.entity_key, serializer, queryset, file_format,
                                                    user=request.user, query=request.query_params.dict()))

    @extend_schema(
        summary=gettext_lazy("Import records from CSV, XLSX or JSON"),
        description=gettext_lazy(
            "Upload a file as `file` (multipart; the first row holds field keys) or send a JSON list of records. "
            "Every row is validated as a create request; all rows are imported or none. Empty cells are left out "
            "(default or null), relations are ids, several values comma-separated, booleans true/false, 1/0 or "
            "yes/no. `dry_run=true` validates everything and writes nothing. Above the synchronous limit the "
            "import runs as a job: 202 with the job, whose URL is in the Location header."),
        parameters=[OpenApiParameter("dry_run", OpenApiTypes.BOOL, description=gettext_lazy(
            "Validate only: report what the import would do, write nothing."))],
        request={"multipart/form-data": _UPLOAD,
                 "application/json": {"type": "array", "items": {"type": "object", "additionalProperties": True}}},
        responses={
            200: OpenApiResponse(_REPORT, description=gettext_lazy("Dry run: the report.")),
            201: OpenApiResponse(_REPORT, description=gettext_lazy("Imported: the report.")),
            202: OpenApiResponse(ImportJobSerializer, description=gettext_lazy("Queued as a job.")),
            400: OpenApiResponse(
                {"anyOf": [{"$ref": "#/components/schemas/RecordImportReport"},
                           {"$ref": "#/components/schemas/ValidationErrors"}]},
                description=gettext_lazy("Rows with errors (the report; nothing imported), or a request or file "
                                         "that cannot be read (errors under `file`, `rows` or `dry_run`).")),
        },
    )
    @action(detail=False, methods=["post"], url_path="import", parser_classes=[JSONParser, MultiPartParser])
    def import_records(self, request):
        length = request.META.get("CONTENT_LENGTH") or "0"
        if length.isdigit() and int(length) > settings.API_IMPORT_MAX_BYTES:
            raise _api_error(transfer.too_large_error())  # Before reading the body.
        dry_run = _flag(request, "dry_run")
        try:
            if request.content_type.startswith("multipart/"):
                upload = request.FILES.get("file")
                if upload is None:
                    raise exceptions.ValidationError({"file": [exceptions.ErrorDetail(
                        _("Upload a .csv or .xlsx file as the form field `file`."), code="required")]})
                source = transfer.source_from_upload(upload)
            else:
                data = request.data
                source = transfer.source_from_rows(data.get("rows") if isinstance(data, dict) else data)
            outcome = transfer.run_import(self.entity_key, source, user=request.user, dry_run=dry_run)
        except transfer.TransferError as error:
            raise _api_error(error) from None
        if isinstance(outcome, ImportJob):
            location = request.build_absolute_uri(reverse("data-import-job", args=[outcome.pk]))
            return Response(ImportJobSerializer(outcome).data, status=status.HTTP_202_ACCEPTED,
                            headers={"Location": location})
        if dry_run:
            return Response(outcome)
        return Response(outcome, status=status.HTTP_400_BAD_REQUEST if outcome["errors"] else status.HTTP_201_CREATED)


@extend_schema(tags=["import-jobs"], summary=gettext_lazy("An import job: status, progress and report"))
class ImportJobView(generics.RetrieveAPIView):
    """An import job; its owner and whoever may view the entity's records can read it."""

    serializer_class = ImportJobSerializer
    permission_classes = [permissions.IsAuthenticated, ApiKeyScope]
    queryset = ImportJob.objects.all()

    def get_api_resource(self) -> str:
        return self.get_object().entity_key

    def get_object(self) -> ImportJob:
        if not hasattr(self, "_job"):
            job = get_object_or_404(ImportJob, pk=self.kwargs["pk"])
            user = self.request.user
            if job.user_id != user.pk and not rbac.check(user, rbac.entity_operation(job.entity_key, "view")):
                raise exceptions.NotFound()
            self._job = transfer.with_live_progress(job)
        return self._job


def _export_without_slash(request, entity: str, file_format: str):
    """Serve `<entity>/export.csv` as the export action (`export.csv/`): a download link needs no redirect."""
    match = resolve(f"{request.path_info}/", urlconf=getattr(request, "urlconf", None))
    return match.func(request, *match.args, **match.kwargs)


def transfer_urlpatterns() -> list:
    return [
        path("import-jobs/<int:pk>/", ImportJobView.as_view(), name="data-import-job"),
        re_path(r"^(?P<entity>[a-z][a-z0-9_]*)/export\.(?P<file_format>csv|xlsx)$", _export_without_slash),
    ]
