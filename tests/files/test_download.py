"""Access (FL-2): the upload endpoint, signed download URLs (expiry, tampering, other tenants),
owners' rights, the stable open URL, on disk and on the S3 server."""

from __future__ import annotations

import io
import time
from urllib.parse import parse_qs, urlparse

import pytest
import urllib3
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import override_settings
from django_tenants.utils import tenant_context

from files import services
from files.models import StoredFile
from files.registries import FileOwner, file_owner_registry
from lowcode.apikeys.services import create_key
from tests.files.conftest import image_bytes, pdf_bytes

OWNER = {"owner_type": "test_owner", "owner_key": "expense", "object_id": "7", "field": "receipt"}


class FrankOnly(FileOwner):
    """A test owner: only frank may read its objects' files."""

    type = "test_owner"

    def may_read(self, user, *, owner_key, object_id, field, request=None):
        return user.is_authenticated and user.username == "frank"


@pytest.fixture
def test_owner():
    owner = file_owner_registry.register(FrankOnly())
    yield owner
    file_owner_registry.unregister(owner.type)


@pytest.fixture
def alice(tenant, make_user):
    return make_user(tenant, "alice")


def _upload(client, name: str, data: bytes):
    return client.post("/api/v1/files/", {"file": SimpleUploadedFile(name, data, content_type="image/jpeg")})


def _content(response, storage_kind: str) -> bytes:
    """The bytes a browser ends up with: streamed by the view, or fetched from S3 after the redirect."""
    if storage_kind == "disk":
        assert response.status_code == 200
        return b"".join(response.streaming_content)
    assert response.status_code == 302
    s3_response = urllib3.request("GET", response["Location"])
    assert s3_response.status == 200
    return s3_response.data


def test_upload_and_download_round_trip(tenant, storage_kind, alice, acme_client):
    acme_client.force_login(alice)
    data = image_bytes("JPEG")
    response = _upload(acme_client, "receipt.jpg", data)
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "name", "size", "content_type", "preview_url", "download_url"}
    assert (body["name"], body["size"], body["content_type"]) == ("receipt.jpg", len(data), "image/jpeg")
    assert body["preview_url"] is None  # The preview task runs after the commit.
    download = acme_client.get(body["download_url"])
    assert _content(download, storage_kind) == data
    assert download["X-Content-Type-Options"] == "nosniff"
    if storage_kind == "disk":
        assert download["Content-Security-Policy"] == "sandbox"
        assert download["Content-Disposition"].startswith("inline")  # A safe raster image.
    else:
        query = parse_qs(urlparse(download["Location"]).query)
        assert query["X-Amz-Expires"] == ["60"]
        assert query["response-content-disposition"][0].startswith("inline")


def test_pdf_is_an_attachment(tenant, storage_kind, alice, acme_client):
    acme_client.force_login(alice)
    body = _upload(acme_client, "invoice.pdf", pdf_bytes()).json()
    download = acme_client.get(body["download_url"])
    if storage_kind == "disk":
        assert download["Content-Disposition"] == 'attachment; filename="invoice.pdf"'
        assert download["Content-Type"] == "application/pdf"
    else:
        query = parse_qs(urlparse(download["Location"]).query)
        assert query["response-content-disposition"] == ['attachment; filename="invoice.pdf"']


def test_refused_upload_answers_400_naming_the_rule(tenant, alice, acme_client):
    acme_client.force_login(alice)
    response = _upload(acme_client, "receipt.pdf", image_bytes("PNG"))
    assert response.status_code == 400
    [error] = response.json()["file"]
    assert error["code"] == "file_type_mismatch" and ".pdf" in error["message"]
    response = acme_client.post("/api/v1/files/", {"other": "x"})
    assert response.status_code == 400 and response.json()["file"][0]["code"] == "required"
    connection.set_tenant(tenant)
    assert not StoredFile.objects.exists()


def test_upload_needs_a_user(tenant, acme_client):
    assert _upload(acme_client, "receipt.jpg", image_bytes("JPEG")).status_code in (401, 403)


def test_an_upload_is_read_by_its_uploader_only(tenant, alice, make_user, acme_client):
    acme_client.force_login(alice)
    url = _upload(acme_client, "receipt.jpg", image_bytes("JPEG")).json()["download_url"]
    acme_client.force_login(make_user(tenant, "bob"))
    assert acme_client.get(url).status_code == 404
    acme_client.logout()
    assert acme_client.get(url).status_code == 404


def test_tampered_token_is_404(tenant, alice, acme_client):
    acme_client.force_login(alice)
    url = _upload(acme_client, "receipt.jpg", image_bytes("JPEG")).json()["download_url"]
    token = url.rstrip("/").rsplit("/", 1)[1]
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert acme_client.get(f"/files/d/{forged}/").status_code == 404
    assert acme_client.get("/files/d/not-a-token/").status_code == 404


def test_expired_link_is_410(tenant, alice, acme_client):
    acme_client.force_login(alice)
    url = _upload(acme_client, "receipt.jpg", image_bytes("JPEG")).json()["download_url"]
    time.sleep(1.1)
    with override_settings(FILES_URL_MAX_AGE=1):
        response = acme_client.get(url)
    assert response.status_code == 410
    assert response.json()["code"] == "link_expired"
    assert acme_client.get(url).status_code == 200  # Within the default 300 s it still works.


def test_another_tenant_never_reads_the_file(tenant, globex, alice, make_user, acme_client, globex_client,
                                             storage_kind):
    acme_client.force_login(alice)
    body = _upload(acme_client, "receipt.jpg", image_bytes("JPEG")).json()
    # globex's own alice, with acme's signed URL and acme's file id.
    globex_alice = make_user(globex, "alice")
    with tenant_context(globex):
        globex_client.force_login(globex_alice)
    assert globex_client.get(body["download_url"]).status_code == 404
    assert globex_client.get(f"/files/open/upload/-/{body['id']}/-/{body['id']}/").status_code == 404
    # The object key read from globex's prefix does not exist there.
    connection.set_tenant(tenant)
    stored = StoredFile.objects.get(pk=body["id"])
    connection.set_tenant(globex)
    assert not StoredFile.objects.filter(pk=body["id"]).exists()
    from django.core.files.storage import default_storage

    assert not default_storage.exists(stored.blob_key)


def test_owner_rights_and_attachment_decide(tenant, alice, make_user, acme_client, test_owner):
    stored = services.upload(io.BytesIO(image_bytes("JPEG")), name="r.jpg", user=alice)
    services.set_attachments(**OWNER, files=[stored], user=alice)
    url = services.describe(stored, **OWNER)["download_url"]
    frank = make_user(tenant, "frank")
    acme_client.force_login(frank)
    assert acme_client.get(url).status_code == 200
    acme_client.force_login(alice)  # The uploader, but the owner says no.
    assert acme_client.get(url).status_code == 404
    # A field that does not hold the file gives nothing, even to frank.
    acme_client.force_login(frank)
    connection.set_tenant(tenant)
    other_field = services.describe(stored, **{**OWNER, "field": "photo"})["download_url"]
    assert acme_client.get(other_field).status_code == 404


def test_former_versions_stay_downloadable(tenant, alice, make_user, acme_client, test_owner):
    first = services.upload(io.BytesIO(pdf_bytes()), name="v1.pdf", user=alice)
    services.set_attachments(**OWNER, files=[first], user=alice)
    second = services.upload(io.BytesIO(pdf_bytes() + b"%2"), name="v2.pdf", user=alice, previous=first)
    services.set_attachments(**OWNER, files=[second], user=alice)
    services.set_attachments(**OWNER, files=[second], user=alice)  # Idempotent.
    assert first.attachments.get().detached_at is not None
    assert second.attachments.get().detached_at is None
    acme_client.force_login(make_user(tenant, "frank"))
    connection.set_tenant(tenant)
    for version in services.versions(second):
        response = acme_client.get(services.describe(version, **OWNER)["download_url"])
        assert response.status_code == 200
        assert response["Content-Disposition"] == f'attachment; filename="{version.name}"'


def test_stable_open_url_signs_a_fresh_link(tenant, alice, make_user, acme_client, test_owner):
    stored = services.upload(io.BytesIO(image_bytes("JPEG")), name="r.jpg", user=alice)
    services.set_attachments(**OWNER, files=[stored], user=alice)
    url = services.open_url(stored, **OWNER)
    assert url == f"/files/open/test_owner/expense/7/receipt/{stored.pk}/"
    assert acme_client.get(url)["Location"].startswith("/accounts/login/")
    acme_client.force_login(make_user(tenant, "bob"))
    assert acme_client.get(url).status_code == 404
    acme_client.force_login(make_user(tenant, "frank"))
    redirect = acme_client.get(url)
    assert redirect.status_code == 302 and redirect["Location"].startswith("/files/d/")
    assert acme_client.get(redirect["Location"]).status_code == 200
    # No preview yet: its link answers 404.
    assert acme_client.get(acme_client.get(url + "?preview=1")["Location"]).status_code == 404


def test_api_key_needs_a_files_scope(tenant, alice, acme_client):
    _key, read_only = create_key(alice, name="reader", scopes=["expense:read"])
    _key, writer = create_key(alice, name="writer", scopes=["files:write"])
    data = {"file": SimpleUploadedFile("r.jpg", image_bytes("JPEG"))}
    assert acme_client.post("/api/v1/files/", data, HTTP_AUTHORIZATION=f"Api-Key {read_only}").status_code == 403
    data = {"file": SimpleUploadedFile("r.jpg", image_bytes("JPEG"))}
    response = acme_client.post("/api/v1/files/", data, HTTP_AUTHORIZATION=f"Api-Key {writer}")
    assert response.status_code == 201
    url = response.json()["download_url"]
    assert acme_client.get(url, HTTP_AUTHORIZATION=f"Api-Key {writer}").status_code == 200
    assert acme_client.get(url, HTTP_AUTHORIZATION=f"Api-Key {read_only}").status_code == 403


def test_oversized_request_is_refused_before_it_is_read(tenant, alice, acme_client):
    tenant.max_upload_bytes = 100_000
    tenant.save(update_fields=["max_upload_bytes"])
    acme_client.force_login(alice)
    response = _upload(acme_client, "big.jpg", image_bytes("JPEG") + b"\0" * 200_000)
    assert response.status_code == 400
    [error] = response.json()["file"]
    assert error["code"] == "file_too_large" and "0.1 MB" in error["message"]
    connection.set_tenant(tenant)
    assert not StoredFile.objects.exists()


def test_upload_endpoint_is_documented(tenant, alice, acme_client):
    acme_client.force_login(alice)
    schema = acme_client.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/files/"]["post"]
    assert "multipart/form-data" in operation["requestBody"]["content"]
    assert "201" in operation["responses"] and "400" in operation["responses"]
    assert not any(path.startswith("/files/") for path in schema["paths"])


def test_behind_nginx_the_view_answers_only_headers(tenant, alice, acme_client, settings):
    settings.FILES_ACCEL_REDIRECT_PREFIX = "/protected-media/"
    acme_client.force_login(alice)
    body = _upload(acme_client, "invoice.pdf", pdf_bytes()).json()
    response = acme_client.get(body["download_url"])
    connection.set_tenant(tenant)
    stored = StoredFile.objects.get(pk=body["id"])
    assert response.status_code == 200 and response.content == b""
    assert response["X-Accel-Redirect"] == f"/protected-media/acme/{stored.blob_key}"
    assert response["Content-Disposition"] == 'attachment; filename="invoice.pdf"'
    assert response["X-Content-Type-Options"] == "nosniff"


def test_api_key_reads_an_owners_file_with_a_scope_on_its_resource(tenant, make_user, acme_client, test_owner):
    frank = make_user(tenant, "frank")
    stored = services.upload(io.BytesIO(image_bytes("JPEG")), name="r.jpg", user=frank)
    services.set_attachments(**OWNER, files=[stored], user=frank)
    url = services.describe(stored, **OWNER)["download_url"]
    _key, expense_reader = create_key(frank, name="expense", scopes=["expense:read"])
    _key, project_reader = create_key(frank, name="project", scopes=["project:read"])
    assert acme_client.get(url, HTTP_AUTHORIZATION=f"Api-Key {expense_reader}").status_code == 200
    assert acme_client.get(url, HTTP_AUTHORIZATION=f"Api-Key {project_reader}").status_code == 403
