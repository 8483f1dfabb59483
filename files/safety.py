"""Checks of untrusted bytes and names (FL-4): names with path parts, markup hidden in binary
files (polyglots), active SVG content, decompression bombs and zip bombs.

Pure functions over bytes and file objects: `files.services.upload` decides what they mean.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
import zipfile

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from PIL import Image

MAX_NAME_LENGTH = 255
# Markup that makes a browser (or a sniffing proxy) treat a file as a page: in a PDF or an image
# it is a polyglot.
_HTML_MARKERS = re.compile(rb"<(?:html|script|body|iframe|svg|!doctype\s+html)[\s>/]", re.IGNORECASE)
# What makes an SVG run code or load other documents.
_SVG_ACTIVE = re.compile(
    rb"<script|<foreignobject|<iframe|<embed|<object|<!entity|<handler|[\s\"'/]on[a-z]+\s*=|javascript:"
    rb"|data:text/html", re.IGNORECASE)
_OVERLAP = 64  # Longer than any marker: a marker split between two chunks is still found.


def name_is_safe(name: str) -> bool:
    """A plain file name: no folders (`a/b.pdf`, `../../etc/passwd`, `C:\\x`), no NUL or control
    characters, not `.` or `..`, not blank, at most 255 characters."""
    if not name or len(name) > MAX_NAME_LENGTH or name.strip() in ("", ".", ".."):
        return False
    if "/" in name or "\\" in name:
        return False
    return not any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") for char in name)


def extension(name: str) -> str:
    """The lowercased extension with its dot (`.pdf`), or ""."""
    stem, dot, ext = name.rpartition(".")
    return f".{ext.lower()}" if dot and stem else ""


class MarkupScanner:
    """Scans the chunks of a stream for HTML markers (cheap) and, in an SVG, active content, across
    chunk borders."""

    def __init__(self, *, svg: bool):
        self._svg = svg
        self._tail = b""
        self.html = False
        self.svg_active = False

    def feed(self, chunk: bytes) -> None:
        window = self._tail + chunk
        self.html = self.html or bool(_HTML_MARKERS.search(window))
        if self._svg:
            self.svg_active = self.svg_active or bool(_SVG_ACTIVE.search(window))
        self._tail = window[-_OVERLAP:]


def image_pixels(fileobj) -> int | None:
    """The pixel count from the image's header (nothing is decoded), or None if Pillow cannot read
    it. A decompression bomb Pillow itself refuses to open counts as too many pixels."""
    position = fileobj.tell()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(fileobj) as image:
                width, height = image.size
                return width * height
    except Image.DecompressionBombError:
        return Image.MAX_IMAGE_PIXELS * 2 + 1
    except Exception:  # Pillow fails on a damaged header in many ways; the caller refuses it.
        return None
    finally:
        fileobj.seek(position)


def check_zip(fileobj, *, what: str, max_members: int | None = None, max_unpacked_bytes: int | None = None,
              max_ratio: int | None = None) -> None:
    """Refuse a zip bomb before anything is unpacked, from the sizes its directory declares
    (Python's zipfile unpacks no more than an entry declares): too many members, more unpacked
    bytes or a higher compression ratio than the limits (FILES_ZIP_* settings by default).

    :param what: what the zip is, for the message ("The XLSX file", "The bundle").
    :raises ValidationError: codes invalid_zip, too_many_members, too_large_unpacked, zip_bomb.
    """
    max_members = max_members or settings.FILES_ZIP_MAX_MEMBERS
    max_unpacked_bytes = max_unpacked_bytes or settings.FILES_ZIP_MAX_UNPACKED_BYTES
    max_ratio = max_ratio or settings.FILES_ZIP_MAX_RATIO
    position = fileobj.tell()
    try:
        with zipfile.ZipFile(fileobj) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise ValidationError(_("%(what)s is not a readable zip file.") % {"what": what}, code="invalid_zip") from None
    finally:
        fileobj.seek(position)
    if len(entries) > max_members:
        raise ValidationError(_("%(what)s holds %(count)d files, more than %(max)d.") % {
            "what": what, "count": len(entries), "max": max_members}, code="too_many_members")
    unpacked = sum(entry.file_size for entry in entries)
    if unpacked > max_unpacked_bytes:
        raise ValidationError(_("%(what)s unpacks to %(size)s MB, more than %(max)s MB.") % {
            "what": what, "size": round(unpacked / 2**20, 1), "max": round(max_unpacked_bytes / 2**20, 1)},
            code="too_large_unpacked")
    packed = max(sum(entry.compress_size for entry in entries), 1)
    worst_member = max((entry.file_size / max(entry.compress_size, 1) for entry in entries), default=0)
    if unpacked > packed * max_ratio or worst_member > max_ratio * 10:
        raise ValidationError(_("%(what)s is compressed %(ratio)d times, more than %(max)d: it is refused as a zip "
                                "bomb.") % {"what": what, "ratio": max(unpacked // packed, worst_member),
                                            "max": max_ratio}, code="zip_bomb")
