"""Downloads (FL-2): a signed, short-lived URL checked against the owner's rights, and a stable URL
that signs a fresh one for a signed-in user."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect
from django.utils.http import content_disposition_header
from django.utils.translation import gettext_lazy
from rest_framework import status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.views import APIView

from files import services
from files.models import StoredFile
from files.registries import file_owner_registry, readable_file
from lowcode.apikeys.permissions import ApiKeyScope


class LinkExpired(APIException):
    status_code = status.HTTP_410_GONE
    default_detail = gettext_lazy("This download link has expired; open the file again for a new one.")
    default_code = "link_expired"


def file_response(stored_file: StoredFile, *, preview: bool = False):
    """The file (or its preview) for the browser: streamed from disk (or by nginx with X-Accel-Redirect),
    or a 302 to a presigned S3 URL.
    Anything but a safe raster image is an attachment; nothing is sniffed or run by the browser."""
    if preview:
        content_type, name = "image/png", f"{stored_file.name}.png"
    else:
        content_type, name = stored_file.content_type, stored_file.name
    as_attachment = content_type not in services.INLINE_TYPES
    if services.serves_from_disk() and settings.FILES_ACCEL_REDIRECT_PREFIX:
        # nginx sends the file from its `internal` location of MEDIA_ROOT; Python only answers the headers.
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = services.accel_redirect_path(stored_file, preview=preview)
        response["Content-Disposition"] = content_disposition_header(as_attachment, name)
    elif services.serves_from_disk():
        response = FileResponse(services.open_file(stored_file, preview=preview), as_attachment=as_attachment,
                                filename=name, content_type=content_type)
    else:
        response = HttpResponseRedirect(services.presigned_url(
            stored_file, preview=preview, content_type=content_type,
            disposition=content_disposition_header(as_attachment, name)))
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox"
    response["Cache-Control"] = "private, no-store"
    return response


class DownloadView(APIView):
    """`/files/d/<token>/`: the token names the file, its owner and field; the owner decides whether
    the request's user (session or API key) may read it. Bad token or no right: 404; expired: 410."""

    schema = None  # Not part of the API's documented resources: links come from `describe`.

    def get_api_resource(self):
        # An API key needs a read scope on the owner's resource (the entity, for a record's file).
        payload = self._payload()
        if not file_owner_registry.is_registered(payload["o"]):
            raise NotFound
        return file_owner_registry.get(payload["o"]).api_resource(payload["k"])

    def get_permissions(self):
        return [ApiKeyScope()]

    def _payload(self) -> dict:
        if not hasattr(self, "_token_payload"):
            try:
                self._token_payload = services.read_token(self.kwargs["token"])
            except services.TokenExpired:
                raise LinkExpired from None
            except services.TokenInvalid:
                raise NotFound from None
        return self._token_payload

    def get(self, request, token):
        payload = self._payload()
        stored_file = readable_file(request.user, file_id=payload["f"], owner_type=payload["o"],
                                             owner_key=payload["k"], object_id=payload["i"], field=payload["d"],
                                             request=request)
        if stored_file is None or (payload["p"] and stored_file.preview_status != StoredFile.PreviewStatus.READY):
            raise NotFound
        return file_response(stored_file, preview=payload["p"])


@login_required
def open_view(request, owner_type, owner_key, object_id, field, file_id):
    """The stable link of admin pages and exports: a fresh signed URL for a user who may read the file."""
    where = {"owner_type": owner_type, "owner_key": "" if owner_key == "-" else owner_key,
             "object_id": object_id, "field": "" if field == "-" else field}
    stored_file = readable_file(request.user, file_id=file_id, request=request, **where)
    if stored_file is None:
        raise Http404
    return HttpResponseRedirect(services.download_url(stored_file, **where, preview=request.GET.get("preview") == "1"))
