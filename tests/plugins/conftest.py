"""Plugin packages for tests: the example fx-tools as published (examples/plugins/), and
variants of it built and signed here with the example publisher's test key."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from django.conf import settings

from plugins import loader, packages, services

EXAMPLES = Path(settings.BASE_DIR) / "examples" / "plugins"
FX_PACKAGE = EXAMPLES / "fx-tools-1.0.0.zip"
TEST_KEY = EXAMPLES / "test-publisher.key"


def members_of(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def build(*, manifest: dict | None = None, files: dict[str, bytes] | None = None, key: bytes | None = None,
          own_code: bool = True) -> bytes:
    """fx-tools with manifest keys and files replaced, signed (by the test key unless `key`);
    without its fx_tools/ code unless `own_code` (for another plugin made of `files`)."""
    members = packages._members(packages.pack(EXAMPLES / "fx-tools"))
    if not own_code:
        members = {name: content for name, content in members.items() if not name.startswith("fx_tools/")}
    members["manifest.json"] = json.dumps({**json.loads(members["manifest.json"]), **(manifest or {})}).encode()
    members.update(files or {})
    private_key = packages.load_private_key(key or TEST_KEY.read_bytes())
    return packages.sign(zip_of(members), private_key)


@pytest.fixture
def fx_package() -> bytes:
    return FX_PACKAGE.read_bytes()


@pytest.fixture
def publisher(db):
    return services.register_key("Examples", (EXAMPLES / "test-publisher.pub").read_text())


@pytest.fixture(autouse=True)
def _plugins_root(settings, tmp_path):
    settings.PLUGINS_ROOT = tmp_path / "plugins"


@pytest.fixture(autouse=True)
def _unload_plugins():
    """Tests roll back (or flush) the rows; this process forgets the code they loaded too."""
    yield
    for name in list(loader._loaded):
        loader.unload(name)
    services._enabled.clear()
