"""Stored files (FL-1..FL-4): upload with every check, attachments, signed URLs, versions, clean-up.

Bytes go through Django's storage API to the default storage, which puts them under the tenant's
prefix (`MEDIA_ROOT/<schema>/` or `<schema>/` in the bucket); keys are random, never the
client's name. Files with the same SHA-256 in a tenant share one blob; the quota counts blobs.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mimetypes
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import magic
from django.conf import settings
from django.core import signing
from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage, storages
from django.db import connection, transaction
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audit import services as audit
from files import audit_actions, safety
from files.exceptions import FileRefused
from files.models import FileAttachment, StoredFile
from lowcode.tenancy import quotas

logger = logging.getLogger(__name__)

CHUNK_SIZE = 256 * 1024
SNIFF_BYTES = 64 * 1024
SVG = "image/svg+xml"
# Raster images a browser may show inline; everything else is served as an attachment.
INLINE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
PREVIEW_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/tiff"})
PDF = "application/pdf"
# libmagic's and mimetypes' names for the same thing.
_SAME_TYPE = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png",
              "image/x-ms-bmp": "image/bmp", "application/x-pdf": PDF, "text/xml": "application/xml",
              "application/csv": "text/csv", "image/svg": SVG}
# Text formats libmagic often calls text/plain, and containers it calls a zip.
_PLAIN_TEXT_FORMATS = frozenset({"text/csv", "text/plain", "text/markdown", "text/tab-separated-values",
                                 "application/json", "application/xml", "text/x-python", "text/calendar"})
_ZIP_SNIFFS = frozenset({"application/zip", "application/octet-stream"})


@dataclass(frozen=True)
class FileRules:
    """A field's limits; empty `allowed_types` and a None `max_size` mean the tenant's. The
    effective limits are always the stricter of the field's and the tenant's."""

    allowed_types: tuple[str, ...] = ()
    max_size: int | None = None
    images_only: bool = False


@dataclass
class _Inspection:
    size: int = 0
    sha256: str = ""
    content_type: str = ""
    scanner: safety.MarkupScanner | None = None


# --- limits ------------------------------------------------------------------------------------


def _tenant():
    return connection.tenant


def max_upload_size(rules: FileRules = FileRules()) -> int:
    """The stricter of the field's maximum, the tenant's and FILES_MAX_UPLOAD_BYTES."""
    limits = [rules.max_size, getattr(_tenant(), "max_upload_bytes", None), settings.FILES_MAX_UPLOAD_BYTES]
    return min(limit for limit in limits if limit is not None)


def tenant_allowed_types() -> list[str]:
    return list(getattr(_tenant(), "allowed_upload_types", None) or settings.FILES_ALLOWED_TYPES)


def _type_matches(entry: str, content_type: str, ext: str) -> bool:
    entry = entry.strip().lower()
    if entry.startswith("."):
        return ext == entry
    if entry.endswith("/*"):
        return content_type.startswith(entry[:-1])
    return content_type == entry


def type_allowed(content_type: str, name: str, rules: FileRules = FileRules()) -> bool:
    """The tenant's allowed types and the field's (if any) both allow the file."""
    ext = safety.extension(name)
    if rules.images_only and not content_type.startswith("image/"):
        return False
    if rules.allowed_types and not any(_type_matches(entry, content_type, ext) for entry in rules.allowed_types):
        return False
    return any(_type_matches(entry, content_type, ext) for entry in tenant_allowed_types())


def _normal(content_type: str | None) -> str | None:
    return _SAME_TYPE.get(content_type, content_type) if content_type else None


def types_agree(name: str, sniffed: str) -> bool:
    """The extension's type is what the bytes are: a PNG renamed .pdf or HTML named .jpg disagree.
    A name without a known extension leaves the sniffed type alone to decide."""
    expected = _normal(mimetypes.guess_type(name, strict=False)[0])
    if expected is None or expected == sniffed:
        return True
    if sniffed == "text/plain":
        return expected in _PLAIN_TEXT_FORMATS or expected == SVG
    if sniffed == "application/xml":
        return expected == SVG
    if sniffed in _ZIP_SNIFFS:
        return expected.endswith("+zip") or expected.startswith(("application/vnd.openxmlformats",
                                                                  "application/vnd.oasis.opendocument"))
    return False


def sniff(head: bytes, name: str) -> str:
    """The content type libmagic reads from the first bytes (never the client's word); XML or text
    named .svg counts as SVG, so that SVG rules apply to it."""
    content_type = _normal(magic.from_buffer(head, mime=True)) or "application/octet-stream"
    if safety.extension(name) == ".svg" and content_type in ("text/plain", "application/xml"):
        return SVG
    return content_type


class StorageQuota(quotas.Quota):
    """Tenant.max_storage_bytes against the tenant's blobs (see storage_used)."""

    type = "storage"
    limit_field = "max_storage_bytes"
    verbose_name = gettext_lazy("storage")

    def usage(self) -> int:
        return storage_used()

    def display(self, amount: int) -> str:
        return filesizeformat(amount)


def storage_used() -> int:
    """Bytes of the tenant's blobs, each counted once however many files share it."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(SUM(size), 0) FROM (SELECT DISTINCT ON (blob_key) size "
                       f"FROM {StoredFile._meta.db_table}) AS blobs")
        return cursor.fetchone()[0]


def _refuse(message: str, code: str):
    raise FileRefused(message, code)


# --- upload ------------------------------------------------------------------------------------


def _inspect(source, limit: int, name: str, copy_to=None) -> _Inspection:
    """Read the stream once: size (stops as soon as it passes `limit`), SHA-256, the content type
    libmagic reads from the first bytes, markup markers; copies to `copy_to` when given."""
    seen = _Inspection()
    digest = hashlib.sha256()
    head = bytearray()
    before_sniff: list[bytes] = []  # The chunks of the first SNIFF_BYTES, scanned once the type is known.
    while chunk := source.read(CHUNK_SIZE):
        seen.size += len(chunk)
        if seen.size > limit:
            _refuse(_("The file is larger than %(max)s MB.") % {"max": megabytes(limit)}, "file_too_large")
        digest.update(chunk)
        if copy_to is not None:
            copy_to.write(chunk)
        if seen.scanner is not None:
            seen.scanner.feed(chunk)
            continue
        head += chunk[:SNIFF_BYTES - len(head)]
        before_sniff.append(chunk)
        if len(head) >= SNIFF_BYTES:
            _sniffed(seen, bytes(head), name, before_sniff)
    if seen.scanner is None:
        _sniffed(seen, bytes(head), name, before_sniff)
    seen.sha256 = digest.hexdigest()
    return seen


def _sniffed(seen: _Inspection, head: bytes, name: str, chunks: list[bytes]) -> None:
    seen.content_type = sniff(head, name) if head else ""
    # Only an SVG pays for the slower scan of active content.
    seen.scanner = safety.MarkupScanner(svg=seen.content_type == SVG)
    for chunk in chunks:
        seen.scanner.feed(chunk)


def megabytes(size: int) -> str:
    return f"{size / 2**20:.1f}".removesuffix(".0")


def _check_content(seen: _Inspection, source, name: str, rules: FileRules) -> str:
    """Every rule on the bytes; return the sniffed content type."""
    if seen.size == 0:
        _refuse(_("The file is empty."), "empty_file")
    content_type = seen.content_type
    if not types_agree(name, content_type):
        _refuse(_("The file's name says %(ext)s but its content is %(type)s.") % {
            "ext": safety.extension(name) or _("(no extension)"), "type": content_type}, "file_type_mismatch")
    if not type_allowed(content_type, name, rules):
        _refuse(_("Files of type %(type)s are not allowed here.") % {"type": content_type}, "file_type_not_allowed")
    if content_type == SVG and seen.scanner.svg_active:
        _refuse(_("The SVG image contains scripts, event handlers or embedded documents."), "unsafe_file")
    if seen.scanner.html and not content_type.startswith("text/") and content_type != SVG:
        _refuse(_("The file is a %(type)s that also contains HTML or script (a polyglot).") % {"type": content_type},
                "unsafe_file")
    if content_type.startswith("image/") and content_type != SVG:
        pixels = safety.image_pixels(source)
        if pixels is not None and pixels > settings.FILES_MAX_IMAGE_PIXELS:
            _refuse(_("The image has %(pixels)s megapixels, more than %(max)s.") % {
                "pixels": pixels // 1_000_000, "max": settings.FILES_MAX_IMAGE_PIXELS // 1_000_000}, "image_too_large")
    return content_type


def _new_blob_key() -> str:
    token = uuid.uuid4().hex
    return f"files/{token[:2]}/{token}"


def _lock_tenant_files() -> None:
    """Serialise uploads of one tenant until the transaction ends: the quota and deduplication
    read what the previous upload wrote."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"files:{connection.schema_name}"])


def upload(fileobj, *, name: str, user, rules: FileRules = FileRules(),
           previous: StoredFile | None = None, file_id=None) -> StoredFile:
    """Check and store an upload; return its StoredFile (a new version of `previous` if given).

    `file_id` keeps a file's id from another tenant (bundle imports with their files); by default
    the StoredFile gets a new random one.

    The bytes are streamed (read once to check and hash, then once to store), never held in
    memory. Audits `file.upload` and queues its preview when the transaction commits.

    :raises FileRefused: any limit of FL-4 is broken; nothing was stored.
    """
    if not safety.name_is_safe(name):
        _refuse(_("%(name)r is not a plain file name (no folders or control characters, at most 255 "
                  "characters).") % {"name": name[:300]}, "invalid_file_name")
    limit = max_upload_size(rules)
    seekable = bool(getattr(fileobj, "seekable", lambda: False)())
    # A stream that cannot be read twice is copied to an anonymous temporary file (gone on close).
    with contextlib.nullcontext() if seekable else tempfile.TemporaryFile() as spool:
        if seekable:
            fileobj.seek(0)
            source = fileobj
            seen = _inspect(fileobj, limit, name)
        else:
            seen = _inspect(fileobj, limit, name, copy_to=spool)
            source = spool
        source.seek(0)
        content_type = _check_content(seen, source, name, rules)
        source.seek(0)
        return _store(source, seen, name=name, content_type=content_type, user=user, previous=previous,
                      file_id=file_id)


def _store(source, seen: _Inspection, *, name: str, content_type: str, user, previous, file_id=None) -> StoredFile:
    stored_blob = None
    try:
        with transaction.atomic():
            _lock_tenant_files()
            twin = StoredFile.objects.filter(sha256=seen.sha256, size=seen.size).order_by("created_at").first()
            if twin is None or not default_storage.exists(twin.blob_key):
                try:
                    quotas.check("storage", adding=seen.size)
                except quotas.QuotaExceeded as error:
                    _refuse(" ".join(error.messages), "quota_exceeded")
                stored_blob = default_storage.save(_new_blob_key(), File(source, name=name))
                twin = None
            stored = StoredFile.objects.create(
                id=file_id or uuid.uuid4(), name=name, blob_key=twin.blob_key if twin else stored_blob, size=seen.size,
                content_type=content_type,
                sha256=seen.sha256, uploaded_by=user if user and user.pk else None, previous=previous,
                preview_key=twin.preview_key if twin else "", preview_status=_initial_preview_status(content_type, twin))
            audit.record(audit_actions.UPLOAD, target=stored, actor=user if user and user.pk else None,
                         after={"name": name, "size": seen.size, "content_type": content_type, "sha256": seen.sha256},
                         data={"previous": str(previous.pk) if previous else None, "deduplicated": twin is not None})
    except BaseException:
        if stored_blob:
            default_storage.delete(stored_blob)
        raise
    return stored


def _initial_preview_status(content_type: str, twin: StoredFile | None) -> str:
    if twin is not None and twin.preview_status == StoredFile.PreviewStatus.READY:
        return StoredFile.PreviewStatus.READY
    if content_type in PREVIEW_IMAGE_TYPES or content_type == PDF:
        return StoredFile.PreviewStatus.PENDING
    return StoredFile.PreviewStatus.NONE


def check_rules(stored_file: StoredFile, rules: FileRules) -> None:
    """Raise FileRefused when an uploaded file breaks a field's rules (a record references it by id)."""
    limit = max_upload_size(rules)
    if stored_file.size > limit:
        _refuse(_("The file is larger than %(max)s MB.") % {"max": megabytes(limit)}, "file_too_large")
    if not type_allowed(stored_file.content_type, stored_file.name, rules):
        _refuse(_("Files of type %(type)s are not allowed here.") % {"type": stored_file.content_type},
                "file_type_not_allowed")


def open_file(stored_file: StoredFile, *, preview: bool = False):
    """The file's bytes (or its preview's) as a binary file object, read from storage as it goes."""
    return default_storage.open(stored_file.preview_key if preview else stored_file.blob_key, "rb")


# --- attachments and versions ------------------------------------------------------------------


def set_attachments(*, owner_type: str, owner_key: str, object_id, field: str, files: list[StoredFile],
                    user) -> None:
    """Attach `files` to the owner's field and detach (keep, with `detached_at`) those no longer
    there. Idempotent. (`user` made the change; the owner's own audit event names them.)"""
    where = {"owner_type": owner_type, "owner_key": owner_key, "object_id": str(object_id), "field": field}
    keep = [stored_file.pk for stored_file in files]
    FileAttachment.objects.filter(**where, detached_at__isnull=True).exclude(stored_file_id__in=keep).update(
        detached_at=timezone.now())
    for stored_file in files:
        FileAttachment.objects.update_or_create(stored_file=stored_file, **where, defaults={"detached_at": None})


def release(*, owner_type: str, owner_key: str, object_id) -> None:
    """The owner (a purged record) is gone: its attachments go; garbage collection removes the
    files that nothing refers to any more."""
    FileAttachment.objects.filter(owner_type=owner_type, owner_key=owner_key, object_id=str(object_id)).delete()


def versions(stored_file: StoredFile) -> list[StoredFile]:
    """The file and the versions it replaced, newest first."""
    chain = [stored_file]
    while chain[-1].previous_id and len(chain) < 1000:
        chain.append(StoredFile.objects.get(pk=chain[-1].previous_id))
    return chain


# --- signed URLs -------------------------------------------------------------------------------


def _salt() -> str:
    return f"files.download:{connection.schema_name}"


def signed_token(stored_file: StoredFile, *, owner_type: str, owner_key: str, object_id, field: str,
                 preview: bool = False) -> str:
    payload = {"f": str(stored_file.pk), "o": owner_type, "k": owner_key, "i": str(object_id), "d": field,
               "p": preview}
    return signing.dumps(payload, salt=_salt(), compress=True)


class TokenExpired(Exception):
    pass


class TokenInvalid(Exception):
    pass


def read_token(token: str) -> dict:
    """The payload of a download token of this tenant.

    :raises TokenExpired: older than FILES_URL_MAX_AGE.
    :raises TokenInvalid: tampered with, or signed for another tenant.
    """
    try:
        return signing.loads(token, salt=_salt(), max_age=settings.FILES_URL_MAX_AGE)
    except signing.SignatureExpired:
        raise TokenExpired from None
    except signing.BadSignature:
        raise TokenInvalid from None


def download_url(stored_file: StoredFile, *, owner_type: str, owner_key: str, object_id, field: str,
                 preview: bool = False) -> str:
    """A signed URL valid FILES_URL_MAX_AGE seconds."""
    token = signed_token(stored_file, owner_type=owner_type, owner_key=owner_key, object_id=object_id, field=field,
                         preview=preview)
    return reverse("files-download", kwargs={"token": token})


def describe(stored_file: StoredFile, *, owner_type: str, owner_key: str, object_id, field: str) -> dict:
    """The file as the API and the admin show it, with fresh signed URLs."""
    where = {"owner_type": owner_type, "owner_key": owner_key, "object_id": object_id, "field": field}
    ready = stored_file.preview_status == StoredFile.PreviewStatus.READY and stored_file.preview_key
    return {"id": str(stored_file.pk), "name": stored_file.name, "size": stored_file.size,
            "content_type": stored_file.content_type,
            "preview_url": download_url(stored_file, **where, preview=True) if ready else None,
            "download_url": download_url(stored_file, **where)}


def open_url(stored_file: StoredFile, *, owner_type: str, owner_key: str, object_id, field: str,
             preview: bool = False) -> str:
    """A stable URL for admin links and exports: it checks the signed-in user's right to read and
    redirects to a fresh signed URL."""
    url = reverse("files-open", kwargs={"owner_type": owner_type, "owner_key": owner_key or "-",
                                        "object_id": str(object_id), "field": field or "-",
                                        "file_id": stored_file.pk})
    return f"{url}?preview=1" if preview else url


def serves_from_disk() -> bool:
    return isinstance(storages["default"], FileSystemStorage)


def accel_redirect_path(stored_file: StoredFile, *, preview: bool) -> str:
    """The file's path under FILES_ACCEL_REDIRECT_PREFIX, nginx's internal location of MEDIA_ROOT."""
    key = stored_file.preview_key if preview else stored_file.blob_key
    relative = Path(default_storage.path(key)).resolve().relative_to(Path(settings.MEDIA_ROOT).resolve())
    return f"{settings.FILES_ACCEL_REDIRECT_PREFIX.rstrip('/')}/{quote(relative.as_posix())}"


def presigned_url(stored_file: StoredFile, *, preview: bool, disposition: str, content_type: str) -> str:
    """A presigned S3 URL valid FILES_S3_URL_MAX_AGE seconds (60) with the response's headers."""
    key = stored_file.preview_key if preview else stored_file.blob_key
    return default_storage.url(key, parameters={"ResponseContentDisposition": disposition,
                                                "ResponseContentType": content_type},
                               expire=settings.FILES_S3_URL_MAX_AGE)


# --- clean-up ----------------------------------------------------------------------------------


def delete_file(stored_file: StoredFile) -> None:
    """Remove the file's row and, when no other file shares them, its blob and preview."""
    with transaction.atomic():
        _lock_tenant_files()  # An upload of the same bytes may be about to share the blob.
        audit.record(audit_actions.DELETE, target=stored_file,
                     before={"name": stored_file.name, "size": stored_file.size, "sha256": stored_file.sha256})
        stored_file.delete()
        if not StoredFile.objects.filter(blob_key=stored_file.blob_key).exists():
            transaction.on_commit(lambda: _delete_blob(stored_file.blob_key, stored_file.preview_key))


def _delete_blob(blob_key: str, preview_key: str) -> None:
    for key in (blob_key, preview_key):
        if key:
            default_storage.delete(key)


def collect_garbage() -> int:
    """Delete the files that no attachment refers to, uploaded more than FILES_UPLOAD_TTL seconds
    ago, newest versions first (a version stays while a later one names it); return how many."""
    cutoff = timezone.now() - timedelta(seconds=settings.FILES_UPLOAD_TTL)
    removed = 0
    while True:
        garbage = list(StoredFile.objects.filter(created_at__lt=cutoff, attachments__isnull=True,
                                                 next_versions__isnull=True)[:500])
        if not garbage:
            return removed
        for stored_file in garbage:
            delete_file(stored_file)
            removed += 1


def iter_keys(folder: str = ""):
    """Every object key under `folder` of the tenant's prefix (on disk or in the bucket)."""
    folders, names = default_storage.listdir(folder)
    for name in names:
        yield f"{folder}/{name}" if folder else name
    for sub in folders:
        yield from iter_keys(f"{folder}/{sub}" if folder else sub)


def purge_tenant_files() -> int:
    """Remove every object under the connection's tenant prefix (a deleted tenant's); return how many."""
    removed = 0
    for key in list(iter_keys()):
        default_storage.delete(key)
        removed += 1
    if serves_from_disk():
        shutil.rmtree(default_storage.path(""), ignore_errors=True)
    logger.info("files of tenant %s removed: %d objects", connection.schema_name, removed)
    return removed


@dataclass
class Problem:
    key: str
    kind: str  # "missing", "corrupt" or "orphaned"
    detail: str


def verify() -> list[Problem]:
    """Re-hash every stored blob of the tenant: missing and corrupt blobs, and objects under
    files/ that no file refers to (orphaned)."""
    problems = []
    known = set()
    blobs = StoredFile.objects.order_by("blob_key", "created_at").distinct("blob_key").values_list(
        "blob_key", "sha256", "name")
    for blob_key, sha256, name in blobs.iterator():
        known.add(blob_key)
        if not default_storage.exists(blob_key):
            problems.append(Problem(blob_key, "missing", name))
            continue
        digest = hashlib.sha256()
        with default_storage.open(blob_key, "rb") as blob:
            while chunk := blob.read(CHUNK_SIZE):
                digest.update(chunk)
        if digest.hexdigest() != sha256:
            problems.append(Problem(blob_key, "corrupt", _("%(name)s: SHA-256 %(actual)s, expected %(expected)s") % {
                "name": name, "actual": digest.hexdigest()[:12], "expected": sha256[:12]}))
    known |= set(StoredFile.objects.exclude(preview_key="").values_list("preview_key", flat=True))
    problems += [Problem(key, "orphaned", "") for key in iter_keys("files") if key not in known]
    return problems
