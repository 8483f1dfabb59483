"""Fixtures of the files tests: sample files, and the default storage on disk or on a real S3 API
(moto's standalone server, a subprocess spoken to over HTTP by boto3 and django-storages)."""

from __future__ import annotations

import io
import socket
import struct
import subprocess
import sys
import time
import uuid
import zlib
from pathlib import Path

import pytest
from django.db import connection
from django.test import override_settings
from PIL import Image

from files import services

MOTO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on a free port with a fresh bucket: {"url", "bucket"}."""
    import boto3

    port = _free_port()
    process = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    deadline = time.monotonic() + 30
    while True:
        try:
            bucket = f"lowcode-test-{uuid.uuid4().hex[:8]}"
            client.create_bucket(Bucket=bucket)
            break
        except Exception:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("moto_server did not start")
            time.sleep(0.2)
    yield {"url": url, "bucket": bucket, "client": client}
    process.terminate()
    process.wait(timeout=10)


def s3_settings(server: dict) -> dict:
    return {
        "STORAGES": {"default": {"BACKEND": "lowcode.storage.TenantS3Storage"},
                     "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}},
        "AWS_STORAGE_BUCKET_NAME": server["bucket"], "AWS_S3_ENDPOINT_URL": server["url"],
        "AWS_S3_REGION_NAME": "us-east-1", "AWS_DEFAULT_ACL": None, "AWS_QUERYSTRING_AUTH": True,
        "AWS_S3_SIGNATURE_VERSION": "s3v4",
        **MOTO_CREDENTIALS,
    }


@pytest.fixture(params=["disk", "s3"])
def storage_kind(request):
    """Run the test on the local disk storage, then on the S3 server."""
    if request.param == "disk":
        yield "disk"
        return
    with override_settings(**s3_settings(request.getfixturevalue("s3_server"))):
        yield "s3"


def stored_keys() -> set[str]:
    """Every object under the connection's tenant prefix."""
    return set(services.iter_keys())


@pytest.fixture
def keys_unchanged(tenant, storage_kind):
    """Asserts that the test left no object behind in acme's storage."""
    before = stored_keys()
    yield
    connection.set_tenant(tenant)
    assert stored_keys() == before


def image_bytes(fmt: str = "PNG", size=(64, 48), color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt)
    return out.getvalue()


def pdf_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (200, 280), (255, 255, 255)).save(out, "PDF")
    return out.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def huge_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A PNG whose header claims width x height pixels, written by hand: a few dozen bytes."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _png_chunk(b"IEND", b""))


class EndlessZeros:
    """A stream of `total` zero bytes that cannot seek, counting what was read."""

    def __init__(self, total: int):
        self.total = total
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        size = min(size if size >= 0 else self.total, self.total - self.read_bytes)
        self.read_bytes += size
        return b"\0" * size
