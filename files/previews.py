"""Previews (FL-3): a thumbnail of an image (Pillow) or of a PDF's first page (pdftoppm), at most
FILES_PREVIEW_SIZE pixels, stored as PNG next to the blob and shared by the files of that blob."""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image, ImageOps

from files.models import StoredFile
from files.services import CHUNK_SIZE, PDF, PREVIEW_IMAGE_TYPES, open_file

logger = logging.getLogger(__name__)


class PreviewError(Exception):
    pass


def _image_thumbnail(source) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # Checked at upload; never decode a bomb.
        with Image.open(source) as image:
            image = ImageOps.exif_transpose(image)
            image.thumbnail((settings.FILES_PREVIEW_SIZE, settings.FILES_PREVIEW_SIZE))
            if image.mode not in ("RGB", "RGBA", "L", "LA"):
                image = image.convert("RGBA" if "transparency" in image.info or image.mode == "P" else "RGB")
            out = io.BytesIO()
            image.save(out, "PNG", optimize=True)
            return out.getvalue()


def _pdf_first_page(source) -> bytes:
    """pdftoppm needs a local file: the blob is copied to a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="lowcode-preview-") as folder:
        pdf = Path(folder) / "in.pdf"
        with pdf.open("wb") as out:
            shutil.copyfileobj(source, out, CHUNK_SIZE)
        try:
            subprocess.run(["pdftoppm", "-png", "-singlefile", "-f", "1", "-l", "1", "-scale-to",
                            str(settings.FILES_PREVIEW_SIZE), str(pdf), str(Path(folder) / "page")],
                           check=True, capture_output=True, timeout=settings.FILES_PREVIEW_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise PreviewError("pdftoppm timed out") from None
        except subprocess.CalledProcessError as error:
            raise PreviewError(f"pdftoppm failed: {error.stderr.decode(errors='replace')[:300]}") from None
        return (Path(folder) / "page.png").read_bytes()


def render(stored_file: StoredFile) -> bytes:
    """The preview's PNG bytes. :raises PreviewError: the file cannot be previewed."""
    with open_file(stored_file) as source:
        if stored_file.content_type == PDF:
            return _pdf_first_page(source)
        if stored_file.content_type in PREVIEW_IMAGE_TYPES:
            try:
                return _image_thumbnail(source)
            except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as error:
                raise PreviewError(f"Pillow cannot read it: {error}") from None
    raise PreviewError(f"no preview for {stored_file.content_type}")


def make_preview(stored_file_id: str) -> str:
    """Make and store the file's preview; return the preview status."""
    stored_file = StoredFile.objects.filter(pk=stored_file_id).first()
    if stored_file is None:
        return "gone"
    if stored_file.preview_status == StoredFile.PreviewStatus.READY:
        return stored_file.preview_status
    sharing = StoredFile.objects.filter(blob_key=stored_file.blob_key)
    try:
        png = render(stored_file)
    except (PreviewError, OSError) as error:  # OSError: the blob cannot be read.
        logger.warning("no preview of file %s: %s", stored_file.pk, error)
        sharing.update(preview_status=StoredFile.PreviewStatus.FAILED)
        return StoredFile.PreviewStatus.FAILED
    key = f"{stored_file.blob_key}.preview.png"
    default_storage.delete(key)  # A failed earlier run may have left one; save() would rename.
    key = default_storage.save(key, ContentFile(png))
    sharing.update(preview_key=key, preview_status=StoredFile.PreviewStatus.READY)
    return StoredFile.PreviewStatus.READY
