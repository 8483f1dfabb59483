"""Uploads (FL-1, FL-4): every refusal leaves nothing in storage, on disk and on the S3 server;
deduplication, quota, versions."""

from __future__ import annotations

import hashlib
import io
import tempfile

import pytest
from django.template.defaultfilters import filesizeformat

from audit.models import AuditEvent
from files import services
from files.exceptions import FileRefused
from files.models import StoredFile
from files.services import FileRules
from tests.files.conftest import EndlessZeros, huge_png, image_bytes, pdf_bytes, stored_keys

MB = 1024 * 1024
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
SVG_SCRIPT = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
              b'<script>alert(1)</script><rect width="10" height="10"/></svg>')
SVG_HANDLER = b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="5" height="5" onload="alert(1)"/></svg>'
SVG_FOREIGN = (b'<svg xmlns="http://www.w3.org/2000/svg"><foreignObject width="9" height="9">'
               b'<body xmlns="http://www.w3.org/1999/xhtml">hi</body></foreignObject></svg>')
SVG_PLAIN = b'<svg xmlns="http://www.w3.org/2000/svg" width="5" height="5"><rect width="5" height="5"/></svg>'

REFUSALS = [
    ("a PNG renamed .pdf", "receipt.pdf", lambda: image_bytes("PNG"), "file_type_mismatch"),
    ("HTML named .jpg", "receipt.jpg", lambda: HTML, "file_type_mismatch"),
    ("HTML named .html", "page.html", lambda: HTML, "file_type_not_allowed"),
    ("an SVG with a script", "logo.svg", lambda: SVG_SCRIPT, "file_type_not_allowed"),
    ("a 50,000 x 50,000 PNG", "huge.png", huge_png, "image_too_large"),
    ("a 49-megapixel PNG (under Pillow's own limit)", "big.png", lambda: huge_png(7000, 7000), "image_too_large"),
    ("a PDF that is also HTML", "invoice.pdf", lambda: pdf_bytes() + b"\n<html><script>alert(1)</script></html>",
     "unsafe_file"),
    ("a PNG with a script inside", "x.png", lambda: image_bytes("PNG") + b"<script>alert(1)</script>", "unsafe_file"),
    ("path traversal", "../../etc/passwd", lambda: b"root:x:0:0", "invalid_file_name"),
    ("a folder in the name", "a/b.pdf", pdf_bytes, "invalid_file_name"),
    ("a Windows path", "C:\\temp\\b.pdf", pdf_bytes, "invalid_file_name"),
    ("a NUL byte in the name", "b.pdf\x00.jpg", pdf_bytes, "invalid_file_name"),
    ("a control character in the name", "b\n.pdf", pdf_bytes, "invalid_file_name"),
    ("a parent folder name", "..", pdf_bytes, "invalid_file_name"),
    ("a name of 256 characters", "x" * 252 + ".pdf", pdf_bytes, "invalid_file_name"),
    ("an empty file", "empty.pdf", lambda: b"", "empty_file"),
    ("a type nobody allowed", "tool.zip", lambda: _zip_bytes(), "file_type_not_allowed"),
]


def _zip_bytes() -> bytes:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a.txt", "hello")
    return out.getvalue()


@pytest.mark.parametrize(("case", "name", "content", "code"), REFUSALS, ids=[case[0] for case in REFUSALS])
def test_refused_uploads_store_nothing(tenant, keys_unchanged, make_user, case, name, content, code):
    user = make_user(tenant, "alice")
    with pytest.raises(FileRefused) as refused:
        services.upload(io.BytesIO(content()), name=name, user=user)
    assert refused.value.code == code
    assert refused.value.messages[0]  # A sentence for the user, not only a code.
    assert not StoredFile.objects.exists()


def test_too_large_stops_reading_at_the_limit(tenant, keys_unchanged, make_user):
    """A 20 MB stream against a 10 MB field is refused once 10 MB have passed, not after 20."""
    stream = EndlessZeros(20 * MB)
    with pytest.raises(FileRefused) as refused:
        services.upload(stream, name="big.pdf", user=make_user(tenant, "alice"), rules=FileRules(max_size=10 * MB))
    assert refused.value.code == "file_too_large"
    assert "10 MB" in refused.value.messages[0]
    assert stream.read_bytes <= 10 * MB + services.CHUNK_SIZE
    assert not StoredFile.objects.exists()


def test_tenant_upload_limit_is_stricter_than_the_field(tenant, keys_unchanged, make_user):
    tenant.max_upload_bytes = 1000
    with pytest.raises(FileRefused) as refused:
        services.upload(io.BytesIO(pdf_bytes() + b"%" * 1000), name="a.pdf", user=make_user(tenant, "alice"),
                        rules=FileRules(max_size=10 * MB))
    assert refused.value.code == "file_too_large"


def test_svg_with_script_is_refused_where_svg_is_allowed(tenant, keys_unchanged, make_user):
    tenant.allowed_upload_types = ["image/*"]
    user = make_user(tenant, "alice")
    for content in (SVG_SCRIPT, SVG_HANDLER, SVG_FOREIGN):
        with pytest.raises(FileRefused) as refused:
            services.upload(io.BytesIO(content), name="logo.svg", user=user)
        assert refused.value.code == "unsafe_file"
    assert not StoredFile.objects.exists()


def test_plain_svg_where_allowed_is_stored_and_never_inline(tenant, storage_kind, make_user):
    tenant.allowed_upload_types = ["image/*"]
    stored = services.upload(io.BytesIO(SVG_PLAIN), name="logo.svg", user=make_user(tenant, "alice"))
    assert stored.content_type == "image/svg+xml"
    assert stored.content_type not in services.INLINE_TYPES


def test_field_rules_narrow_the_tenant_types(tenant, keys_unchanged, make_user):
    user = make_user(tenant, "alice")
    with pytest.raises(FileRefused) as refused:
        services.upload(io.BytesIO(pdf_bytes()), name="a.pdf", user=user, rules=FileRules(images_only=True))
    assert refused.value.code == "file_type_not_allowed"
    with pytest.raises(FileRefused):
        services.upload(io.BytesIO(image_bytes("PNG")), name="a.png", user=user,
                        rules=FileRules(allowed_types=("application/pdf", ".jpg")))
    # Allowed by the field but not by the tenant: still refused.
    with pytest.raises(FileRefused) as refused:
        services.upload(io.BytesIO(HTML), name="a.html", user=user, rules=FileRules(allowed_types=("text/html",)))
    assert refused.value.code == "file_type_not_allowed"


@pytest.mark.parametrize(("name", "content", "content_type"), [
    ("receipt.jpg", lambda: image_bytes("JPEG"), "image/jpeg"),
    ("receipt.JPEG", lambda: image_bytes("JPEG"), "image/jpeg"),
    ("scan.png", lambda: image_bytes("PNG"), "image/png"),
    ("invoice.pdf", pdf_bytes, "application/pdf"),
    ("notes.txt", lambda: b"Lunch with the client\n", "text/plain"),
    ("rows.csv", lambda: b"a,b\n1,2\n", "text/csv"),
])
def test_accepted_upload_is_stored_under_a_random_key(tenant, storage_kind, make_user, name, content, content_type):
    user = make_user(tenant, "alice")
    data = content()
    before = stored_keys()
    stored = services.upload(io.BytesIO(data), name=name, user=user)
    assert stored.content_type in (content_type, "text/plain")
    assert (stored.name, stored.size, stored.uploaded_by) == (name, len(data), user)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert name.split(".")[0] not in stored.blob_key and stored.blob_key.startswith("files/")
    assert stored_keys() - before == {stored.blob_key}
    with services.open_file(stored) as blob:
        assert blob.read() == data
    event = AuditEvent.objects.get(action="file.upload", target_id=str(stored.pk))
    assert event.after["sha256"] == stored.sha256 and event.actor == user


def test_objects_live_under_the_tenant_prefix(tenant, storage_kind, make_user, settings, s3_server):
    stored = services.upload(io.BytesIO(image_bytes()), name="a.png", user=make_user(tenant, "alice"))
    if storage_kind == "disk":
        assert (settings.MEDIA_ROOT / "acme" / stored.blob_key).is_file()
    else:
        listing = s3_server["client"].list_objects_v2(Bucket=s3_server["bucket"], Prefix="acme/files/")
        assert f"acme/{stored.blob_key}" in {item["Key"] for item in listing["Contents"]}


def test_same_bytes_share_one_blob(tenant, storage_kind, make_user):
    user = make_user(tenant, "alice")
    data = pdf_bytes()
    before = stored_keys()
    first = services.upload(io.BytesIO(data), name="a.pdf", user=user)
    second = services.upload(io.BytesIO(data), name="copy.pdf", user=user)
    assert first.pk != second.pk and first.blob_key == second.blob_key
    assert stored_keys() - before == {first.blob_key}
    assert services.storage_used() == len(data)


def test_quota_refuses_the_upload_that_would_pass_it(tenant, storage_kind, make_user):
    user = make_user(tenant, "alice")
    first = image_bytes("PNG", size=(40, 40))
    second = image_bytes("PNG", size=(41, 41), color=(1, 2, 3))
    tenant.max_storage_bytes = len(first) + len(second) - 1
    services.upload(io.BytesIO(first), name="a.png", user=user)
    services.upload(io.BytesIO(first), name="again.png", user=user)  # Shares the blob: costs nothing.
    before = stored_keys()
    with pytest.raises(FileRefused) as refused:
        services.upload(io.BytesIO(second), name="b.png", user=user)
    assert refused.value.code == "quota_exceeded"
    assert refused.value.messages == [f"The tenant's quota of storage is reached: {filesizeformat(len(first))} of "
                                      f"{filesizeformat(tenant.max_storage_bytes)} used."]
    assert stored_keys() == before and StoredFile.objects.count() == 2


def test_versions_chain(tenant, make_user):
    user = make_user(tenant, "alice")
    first = services.upload(io.BytesIO(pdf_bytes()), name="v1.pdf", user=user)
    second = services.upload(io.BytesIO(pdf_bytes() + b"%v2"), name="v2.pdf", user=user, previous=first)
    third = services.upload(io.BytesIO(pdf_bytes() + b"%v3"), name="v3.pdf", user=user, previous=second)
    assert services.versions(third) == [third, second, first]
    assert first.later_version_ids() == {first.pk, second.pk, third.pk}


def test_check_rules_on_an_uploaded_file(tenant, make_user):
    stored = services.upload(io.BytesIO(pdf_bytes()), name="a.pdf", user=make_user(tenant, "alice"))
    services.check_rules(stored, FileRules(allowed_types=("application/pdf",)))
    with pytest.raises(FileRefused) as refused:
        services.check_rules(stored, FileRules(images_only=True))
    assert refused.value.code == "file_type_not_allowed"
    with pytest.raises(FileRefused) as refused:
        services.check_rules(stored, FileRules(max_size=stored.size - 1))
    assert refused.value.code == "file_too_large"


def test_a_stream_that_cannot_seek_leaves_no_temporary_file(tenant, make_user, tmp_path):
    class Unseekable(io.RawIOBase):
        def __init__(self, data):
            self._data = io.BytesIO(data)

        def readable(self):
            return True

        def read(self, size=-1):
            return self._data.read(size)

    tempfile.tempdir = str(tmp_path)
    try:
        stored = services.upload(Unseekable(image_bytes()), name="a.png", user=make_user(tenant, "alice"))
        with pytest.raises(FileRefused):
            services.upload(Unseekable(HTML), name="a.png", user=make_user(tenant, "bob"))
    finally:
        tempfile.tempdir = None
    assert stored.size == len(image_bytes())
    assert list(tmp_path.iterdir()) == []


def test_tenant_allowed_types_are_checked():
    from django.core.exceptions import ValidationError

    from lowcode.tenancy.models import validate_upload_types

    validate_upload_types(["image/*", "application/pdf", ".PDF", "application/vnd.ms-excel"])
    for bad in ("image/*", ["image/*", 3], ["../x"], ["pdf"], {"image": "*"}):
        with pytest.raises(ValidationError):
            validate_upload_types(bad)
