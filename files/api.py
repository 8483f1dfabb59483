"""`POST /api/v1/files/`: upload a file (multipart `file`) to reference by id in a record write."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from files import services
from files.exceptions import FileRefused
from lowcode.apikeys.permissions import ApiKeyScope

FileSerializer = inline_serializer("StoredFile", {
    "id": serializers.UUIDField(),
    "name": serializers.CharField(),
    "size": serializers.IntegerField(),
    "content_type": serializers.CharField(),
    "preview_url": serializers.CharField(allow_null=True),
    "download_url": serializers.CharField(),
})


class SizeLimitHandler(FileUploadHandler):
    """Stops reading the request as soon as a file passes the tenant's upload limit, before the
    view runs: an oversized body is neither read to the end nor spooled to disk."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit
        self.exceeded = False

    def receive_data_chunk(self, raw_data, start):
        if start + len(raw_data) > self.limit:
            self.exceeded = True
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size):
        return None


class UploadView(APIView):
    permission_classes = [IsAuthenticated, ApiKeyScope]
    parser_classes = [MultiPartParser]
    api_resource = "files"  # API keys need files:write (or *:write).

    def initialize_request(self, request, *args, **kwargs):
        self.size_limit = SizeLimitHandler(services.max_upload_size())
        request.upload_handlers.insert(0, self.size_limit)
        return super().initialize_request(request, *args, **kwargs)

    @extend_schema(
        request={"multipart/form-data": inline_serializer("FileUpload", {"file": serializers.FileField()})},
        responses={201: FileSerializer},
        description="Upload a file; its `id` can then be given to a file or image field of a record. The file "
                    "is checked (type sniffed from its bytes, size, the tenant's quota) and refused with a 400 "
                    "naming the rule.",
    )
    def post(self, request):
        upload = request.FILES.get("file")
        if self.size_limit.exceeded:
            raise ValidationError({"file": FileRefused(_("The file is larger than %(max)s MB.") % {
                "max": services.megabytes(self.size_limit.limit)}, "file_too_large")})
        if upload is None:
            raise ValidationError({"file": ValidationError(_("Send the file as the multipart field \"file\"."),
                                                           code="required")})
        try:
            stored_file = services.upload(upload, name=upload.name, user=request.user)
        except ValidationError as error:
            raise ValidationError({"file": error}) from None
        data = services.describe(stored_file, owner_type="upload", owner_key="", object_id=stored_file.pk, field="")
        return Response(data, status=status.HTTP_201_CREATED)
