"""Previews (FL-3), garbage collection, tenant purge, `lowcode files verify`, zip bombs, admin."""

from __future__ import annotations

import io
import time
import zipfile
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models.signals import post_delete
from django.utils import timezone
from django_tenants.utils import schema_context, tenant_context
from PIL import Image

from audit.models import AuditEvent
from files import services, tasks
from files.models import StoredFile
from files.safety import check_zip
from lowcode.tenancy.models import Tenant
from tests.files.conftest import image_bytes, pdf_bytes, stored_keys

OWNER = {"owner_type": "upload", "owner_key": "", "field": ""}


@pytest.fixture
def alice(tenant, make_user):
    return make_user(tenant, "alice", is_staff=True, is_superuser=True)


def _age(*stored_files, seconds: int = 25 * 3600) -> None:
    StoredFile.objects.filter(pk__in=[f.pk for f in stored_files]).update(
        created_at=timezone.now() - timedelta(seconds=seconds))


# --- previews ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "content"), [("photo.jpg", lambda: image_bytes("JPEG", size=(1600, 900))),
                                               ("scan.png", lambda: image_bytes("PNG", size=(300, 2000))),
                                               ("invoice.pdf", pdf_bytes)])
def test_preview_is_a_small_png_next_to_the_blob(tenant, storage_kind, alice, name, content):
    data = content()
    stored = services.upload(io.BytesIO(data), name=name, user=alice)
    twin = services.upload(io.BytesIO(data), name=f"copy-{name}", user=alice)
    assert stored.preview_status == StoredFile.PreviewStatus.PENDING
    assert tasks.make_preview(str(stored.pk))["status"] == StoredFile.PreviewStatus.READY
    stored.refresh_from_db()
    twin.refresh_from_db()
    assert stored.preview_key == f"{stored.blob_key}.preview.png" == twin.preview_key  # Shared with the blob.
    assert twin.preview_status == StoredFile.PreviewStatus.READY
    with services.open_file(stored, preview=True) as preview, Image.open(preview) as image:
        assert image.format == "PNG" and max(image.size) <= 320
    assert services.describe(stored, object_id=stored.pk, **OWNER)["preview_url"].startswith("/files/d/")


def test_a_file_that_cannot_be_previewed_is_marked_failed(tenant, alice):
    broken = b"%PDF-1.4\n" + b"garbage " * 100
    stored = services.upload(io.BytesIO(broken), name="broken.pdf", user=alice)
    assert tasks.make_preview(str(stored.pk))["status"] == StoredFile.PreviewStatus.FAILED
    stored.refresh_from_db()
    assert stored.preview_status == StoredFile.PreviewStatus.FAILED and not stored.preview_key
    text = services.upload(io.BytesIO(b"hello\n"), name="a.txt", user=alice)
    assert text.preview_status == StoredFile.PreviewStatus.NONE


def test_preview_made_by_the_worker_after_commit(committed_acme, celery_worker, make_user, acme_client):
    """The real path: the upload commits, a worker (another process, acme's schema) makes the preview."""
    alice = make_user(committed_acme, "alice")
    with tenant_context(committed_acme):
        acme_client.force_login(alice)
    body = acme_client.post("/api/v1/files/", {"file": ContentFile(image_bytes("JPEG", (800, 600)), "r.jpg")}).json()
    connection.set_tenant(committed_acme)
    deadline = time.monotonic() + 30
    while StoredFile.objects.get(pk=body["id"]).preview_status == StoredFile.PreviewStatus.PENDING:
        assert time.monotonic() < deadline, "the worker made no preview"
        time.sleep(0.2)
    stored = StoredFile.objects.get(pk=body["id"])
    assert stored.preview_status == StoredFile.PreviewStatus.READY
    preview_url = services.describe(stored, object_id=stored.pk, **OWNER)["preview_url"]
    response = acme_client.get(preview_url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    with Image.open(io.BytesIO(b"".join(response.streaming_content))) as image:
        assert image.size == (320, 240)


# --- garbage collection ------------------------------------------------------------------------


def test_garbage_collection(tenant, storage_kind, alice, django_capture_on_commit_callbacks):
    before = stored_keys()
    attached = services.upload(io.BytesIO(pdf_bytes()), name="kept.pdf", user=alice)
    services.set_attachments(owner_type="record", owner_key="expense", object_id=1, field="receipt",
                             files=[attached], user=alice)
    former = services.upload(io.BytesIO(pdf_bytes() + b"%old"), name="former.pdf", user=alice)
    services.set_attachments(owner_type="record", owner_key="expense", object_id=2, field="receipt",
                             files=[former], user=alice)
    services.set_attachments(owner_type="record", owner_key="expense", object_id=2, field="receipt",
                             files=[], user=alice)  # Detached: kept for history.
    old_version = services.upload(io.BytesIO(image_bytes()), name="v1.png", user=alice)
    new_version = services.upload(io.BytesIO(image_bytes(color=(0, 0, 9))), name="v2.png", user=alice,
                                  previous=old_version)
    services.set_attachments(owner_type="record", owner_key="expense", object_id=3, field="receipt",
                             files=[new_version], user=alice)
    shared = services.upload(io.BytesIO(b"same bytes\n"), name="a.txt", user=alice)
    stale = services.upload(io.BytesIO(b"same bytes\n"), name="b.txt", user=alice)
    services.set_attachments(owner_type="record", owner_key="expense", object_id=4, field="receipt",
                             files=[shared], user=alice)
    fresh = services.upload(io.BytesIO(b"just uploaded\n"), name="fresh.txt", user=alice)
    purged = services.upload(io.BytesIO(image_bytes(color=(9, 9, 9))), name="purged.png", user=alice)
    services.set_attachments(owner_type="record", owner_key="expense", object_id=5, field="receipt",
                             files=[purged], user=alice)
    tasks.make_preview(str(purged.pk))
    purged.refresh_from_db()
    services.release(owner_type="record", owner_key="expense", object_id=5)
    _age(attached, former, old_version, new_version, shared, stale, purged)

    with django_capture_on_commit_callbacks(execute=True):
        result = tasks.collect_garbage()
    assert result == {"schema": "acme", "removed": 2}
    assert set(StoredFile.objects.values_list("name", flat=True)) == {
        "kept.pdf", "former.pdf", "v1.png", "v2.png", "a.txt", "fresh.txt"}
    # The stale copy's blob stays (a.txt shares it); the purged file's blob and preview go.
    assert stored_keys() - before == {attached.blob_key, former.blob_key, old_version.blob_key,
                                      new_version.blob_key, shared.blob_key, fresh.blob_key}
    deleted = AuditEvent.objects.filter(action="file.delete", target_id__in=[str(stale.pk), str(purged.pk)])
    assert {event.target_repr for event in deleted} == {"b.txt", "purged.png"}

    # Once the record that held the versions is purged, the chain goes, newest first.
    services.release(owner_type="record", owner_key="expense", object_id=3)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.collect_garbage() == 2
    assert not default_storage.exists(old_version.blob_key)


def test_deleted_tenant_files_are_purged(tenant, storage_kind, django_capture_on_commit_callbacks):
    with schema_context("ghost"):
        default_storage.save("files/ab/blob", ContentFile(b"x"))
        default_storage.save("files/cd/other", ContentFile(b"y"))
        assert len(stored_keys()) == 2
    # Deleting a tenant queues the purge once the deletion commits.
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        post_delete.send(Tenant, instance=Tenant(schema_name="ghost"))
    assert [callback for callback in callbacks if "tenant_deleted" in getattr(callback, "__qualname__", "")]
    assert tasks.purge_tenant("ghost") == {"schema": "ghost", "removed": 2}
    with schema_context("ghost"):
        assert stored_keys() == set()
    with pytest.raises(ValueError):
        tasks.purge_tenant("acme")  # A live tenant's files are never purged.


# --- verify ------------------------------------------------------------------------------------


@pytest.fixture
def empty_storage(storage_kind, settings, tmp_path, request):
    """A storage without the objects earlier tests left (their rows rolled back, their blobs did not)."""
    if storage_kind == "disk":
        settings.MEDIA_ROOT = tmp_path
    else:
        server = request.getfixturevalue("s3_server")
        settings.AWS_STORAGE_BUCKET_NAME = f"{server['bucket']}-{tmp_path.name[-12:]}".lower().replace("_", "-")
        server["client"].create_bucket(Bucket=settings.AWS_STORAGE_BUCKET_NAME)
    settings.STORAGES = {**settings.STORAGES}  # A new default storage, on the new place.
    assert stored_keys() == set()


def test_verify_finds_missing_corrupt_and_orphaned_objects(tenant, empty_storage, alice, capsys):
    kept = services.upload(io.BytesIO(pdf_bytes()), name="kept.pdf", user=alice)
    call_command("lowcode", "files", "verify", "--tenant", "acme")
    assert "intact" in capsys.readouterr().out
    missing = services.upload(io.BytesIO(image_bytes()), name="missing.png", user=alice)
    corrupt = services.upload(io.BytesIO(b"original\n"), name="corrupt.txt", user=alice)
    default_storage.delete(missing.blob_key)
    default_storage.delete(corrupt.blob_key)
    assert default_storage.save(corrupt.blob_key, ContentFile(b"tampered\n")) == corrupt.blob_key
    orphan = default_storage.save("files/zz/orphan", ContentFile(b"left behind"))
    with pytest.raises(CommandError) as failed:
        call_command("lowcode", "files", "verify", "--tenant", "acme")
    assert failed.value.returncode == 1
    out = capsys.readouterr().out
    problems = {(problem.kind, problem.key) for problem in services.verify()}
    assert {("missing", missing.blob_key), ("corrupt", corrupt.blob_key), ("orphaned", orphan)} <= problems
    assert all(key != kept.blob_key for _kind, key in problems)
    for text in ("missing", "corrupt", "orphaned", orphan):
        assert text in out
    default_storage.delete(orphan)


# --- zip bombs ---------------------------------------------------------------------------------


def _zip(members: dict[str, bytes]) -> io.BytesIO:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    out.seek(0)
    return out


def test_check_zip(settings):
    check_zip(_zip({"a.txt": b"hello", "b.csv": b"1,2\n" * 100}), what="The bundle")
    with pytest.raises(ValidationError) as refused:
        check_zip(_zip({"sheet.xml": b"\0" * (50 * 1024 * 1024)}), what="The XLSX file")
    assert refused.value.code == "zip_bomb" and "The XLSX file" in refused.value.messages[0]
    settings.FILES_ZIP_MAX_MEMBERS = 10
    with pytest.raises(ValidationError) as refused:
        check_zip(_zip({f"{n}.txt": b"x" for n in range(11)}), what="The bundle")
    assert refused.value.code == "too_many_members"
    with pytest.raises(ValidationError) as refused:
        check_zip(_zip({"big.bin": bytes(range(256)) * 8192}), what="The bundle", max_unpacked_bytes=1024 * 1024)
    assert refused.value.code == "too_large_unpacked"
    with pytest.raises(ValidationError) as refused:
        check_zip(io.BytesIO(b"not a zip"), what="The bundle")
    assert refused.value.code == "invalid_zip"
    stream = _zip({"a.txt": b"hello"})
    stream.seek(3)
    check_zip(stream, what="The bundle")
    assert stream.tell() == 3  # The caller reads on from where it was.


# --- admin -------------------------------------------------------------------------------------


def test_admin_lists_files_with_preview_and_versions(tenant, alice, make_user, acme_client):
    first = services.upload(io.BytesIO(image_bytes()), name="v1.png", user=alice)
    second = services.upload(io.BytesIO(image_bytes(color=(1, 1, 1))), name="v2.png", user=alice, previous=first)
    tasks.make_preview(str(second.pk))
    acme_client.force_login(alice)
    listing = acme_client.get("/admin/files/storedfile/")
    assert listing.status_code == 200
    assert f"/admin/files/storedfile/{second.pk}/preview/" in listing.content.decode()
    page = acme_client.get(f"/admin/files/storedfile/{second.pk}/change/").content.decode()
    assert "v1.png" in page and "v2.png" in page and f"/admin/files/storedfile/{second.pk}/open/" in page
    assert acme_client.get(f"/admin/files/storedfile/{second.pk}/preview/")["Content-Type"] == "image/png"
    download = acme_client.get(f"/admin/files/storedfile/{first.pk}/open/")
    assert download.status_code == 200 and download["X-Content-Type-Options"] == "nosniff"
    assert acme_client.get(f"/admin/files/storedfile/{first.pk}/preview/").status_code == 404
    assert acme_client.get("/admin/files/storedfile/add/").status_code == 403
    acme_client.force_login(make_user(tenant, "bob", is_staff=True))
    assert acme_client.get(f"/admin/files/storedfile/{first.pk}/open/").status_code in (403, 404)
