"""Plugin packages (PL-1): a zip of `manifest.json`, code, templates and static files, and
`signature.json`, a detached Ed25519 signature over the SHA-256 of every other file (the
manifest's included), made with the publisher's private key and checked against the public
keys platform staff registered.

Publishers build them with `lowcode plugin pack` and `lowcode plugin sign`; `verify()` is
what install runs first, and it refuses a package with one precise reason (a ValidationError
whose code names the rule): a changed byte, an added or missing file, an edited manifest, an
unknown or revoked key.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import jsonschema
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from files.safety import check_zip

MANIFEST = "manifest.json"
SIGNATURE = "signature.json"
#: Folders a package may hold besides its Python package (named by the manifest's `module`).
ASSET_FOLDERS = ("static", "templates")
SEMVER = r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?"
NAME = r"[a-z][a-z0-9-]{1,62}[a-z0-9]"
#: A fixed time for every member, so that packing the same folder twice gives the same bytes.
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)

MANIFEST_SCHEMA = {
    "type": "object",
    "required": ["name", "version", "description", "author", "platform", "module", "permissions", "entry_points"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": f"^{NAME}$"},
        "version": {"type": "string", "pattern": f"^{SEMVER}$"},
        "description": {"type": "string", "maxLength": 2000},
        "author": {"type": "string", "maxLength": 200},
        "platform": {"type": "string", "minLength": 1, "maxLength": 100},
        "module": {"type": "string", "pattern": r"^[a-z][a-z0-9_]{1,62}$"},
        "permissions": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "dependencies": {"type": "object", "propertyNames": {"pattern": f"^{NAME}$"},
                         "additionalProperties": {"type": "string", "maxLength": 100}},
        "entry_points": {"type": "object", "additionalProperties": {
            "type": "array", "items": {"type": "string", "pattern": r"^[a-z][a-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$"}}},
        "health_check": {"type": "string", "pattern": r"^[a-z][a-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$"},
    },
}


@dataclass(frozen=True)
class Package:
    """A package whose signature and checksums verified."""

    manifest: dict
    checksums: dict[str, str]
    key_id: str
    data: bytes

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def version(self) -> str:
        return self.manifest["version"]


def refuse(code: str, message: str, **values) -> ValidationError:
    return ValidationError(message % values if values else message, code=code)


# --- keys ------------------------------------------------------------------------------------


def generate_private_key() -> bytes:
    """A new publisher key as PEM (PKCS#8), to keep secret."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise refuse("invalid_key", _("The private key is not a PEM-encoded key without a password.")) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise refuse("invalid_key", _("The private key is not an Ed25519 key."))
    return key


def public_key_text(private_key: Ed25519PrivateKey) -> str:
    """The public key as platform staff register it: the raw 32 bytes, base64-encoded."""
    raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def load_public_key(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise refuse("invalid_key", _("A public key is the raw 32-byte Ed25519 key, base64-encoded.")) from None


def key_id(public_key: str) -> str:
    return hashlib.sha256(base64.b64decode(public_key.strip())).hexdigest()[:32]


# --- building --------------------------------------------------------------------------------


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(members):
            archive.writestr(zipfile.ZipInfo(name, _ZIP_TIME), members[name], zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def pack(folder: Path) -> bytes:
    """Zip a plugin's folder (manifest.json at its top) unsigned; caches and dot files are left out."""
    if not (folder / MANIFEST).is_file():
        raise refuse("missing_manifest", _("%(folder)s has no manifest.json."), folder=str(folder))
    members = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and relative.as_posix() != SIGNATURE and "__pycache__" not in relative.parts \
                and not any(part.startswith(".") for part in relative.parts):
            members[relative.as_posix()] = path.read_bytes()
    return _zip(members)


def _message(checksums: dict[str, str]) -> bytes:
    """The bytes signed: every file's SHA-256, in one canonical JSON text."""
    return json.dumps({"files": checksums}, sort_keys=True, separators=(",", ":")).encode()


def sign(data: bytes, private_key: Ed25519PrivateKey) -> bytes:
    """Return the package `data` with a (new) signature.json."""
    members = _members(data)
    members.pop(SIGNATURE, None)
    checksums = {name: hashlib.sha256(content).hexdigest() for name, content in sorted(members.items())}
    public_key = public_key_text(private_key)
    signature = {"key_id": key_id(public_key), "algorithm": "ed25519", "files": checksums,
                 "signature": base64.b64encode(private_key.sign(_message(checksums))).decode()}
    members[SIGNATURE] = json.dumps(signature, indent=2, sort_keys=True).encode()
    return _zip(members)


# --- verifying -------------------------------------------------------------------------------


def _safe_name(name: str) -> bool:
    path = PurePosixPath(name)
    return bool(name) and "\\" not in name and not path.is_absolute() and ".." not in path.parts \
        and not name.startswith("/") and ":" not in path.parts[0]


def _members(data: bytes) -> dict[str, bytes]:
    """The package's files by name; refuses a zip bomb, unsafe names and links."""
    check_zip(io.BytesIO(data), what=_("The plugin package"))
    members = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for entry in archive.infolist():
            if entry.is_dir():
                continue
            is_link = (entry.external_attr >> 16) & 0o170000 == 0o120000
            if is_link or not _safe_name(entry.filename):
                raise refuse("unsafe_path", _("The package holds an unsafe path: %(path)s."), path=entry.filename)
            if entry.filename in members:
                raise refuse("duplicate_file", _("The package holds %(path)s twice."), path=entry.filename)
            members[entry.filename] = archive.read(entry)
    return members


def read_signature(members: dict[str, bytes]) -> dict:
    try:
        signature = json.loads(members[SIGNATURE])
    except KeyError:
        raise refuse("unsigned", _("The package is not signed: it has no signature.json.")) from None
    except ValueError:
        raise refuse("invalid_signature", _("signature.json is not valid JSON.")) from None
    if not (isinstance(signature, dict) and isinstance(signature.get("key_id"), str)
            and isinstance(signature.get("signature"), str) and isinstance(signature.get("files"), dict)
            and all(isinstance(value, str) for value in signature["files"].values())):
        raise refuse("invalid_signature", _("signature.json needs key_id, files and signature."))
    return signature


def verify(data: bytes, public_keys) -> Package:
    """Check a package's signature, every file's checksum and its manifest.

    :param public_keys: function(key_id) -> the registered key's base64 text, raising
        ValidationError (unknown_key, revoked_key) for a key that may not sign.
    :raises ValidationError: with the code of the first rule broken.
    """
    members = _members(data)
    signature = read_signature(members)
    public_key = load_public_key(public_keys(signature["key_id"]))
    checksums = signature["files"]
    try:
        public_key.verify(base64.b64decode(signature["signature"]), _message(checksums))
    except (InvalidSignature, ValueError):
        raise refuse("bad_signature", _("The signature does not match the package's checksums: it was not signed "
                                        "by key %(key)s, or signature.json was changed."),
                     key=signature["key_id"]) from None
    for name in sorted(set(members) - {SIGNATURE}):
        if name not in checksums:
            raise refuse("unexpected_file", _("%(path)s is not part of the signed package (a file was added)."),
                         path=name)
        if hashlib.sha256(members[name]).hexdigest() != checksums[name]:
            raise refuse("checksum_mismatch", _("%(path)s was changed after signing: its SHA-256 does not match."),
                         path=name)
    missing = sorted(set(checksums) - set(members))
    if missing:
        raise refuse("missing_file", _("%(path)s is signed but missing from the package."), path=missing[0])
    manifest = _manifest(members)
    _check_layout(manifest, members)
    return Package(manifest, checksums, signature["key_id"], data)


def _manifest(members: dict[str, bytes]) -> dict:
    try:
        manifest = json.loads(members[MANIFEST])
    except KeyError:
        raise refuse("missing_manifest", _("The package has no manifest.json.")) from None
    except ValueError:
        raise refuse("invalid_manifest", _("manifest.json is not valid JSON.")) from None
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(MANIFEST_SCHEMA).iter_errors(manifest))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "manifest"
        raise refuse("invalid_manifest", _("manifest.json, %(where)s: %(error)s"), where=where, error=error.message)
    for field, ranges in [("platform", [manifest["platform"]]), ("dependencies", manifest.get("dependencies", {}))]:
        for text in (ranges.values() if isinstance(ranges, dict) else ranges):
            try:
                SpecifierSet(text)
            except InvalidSpecifier:
                raise refuse("invalid_manifest", _("manifest.json, %(field)s: %(range)r is not a version range such "
                                                   "as \">=1.0,<2\"."), field=field, range=text) from None
    undeclared = sorted(set(manifest["entry_points"]) - set(manifest["permissions"]))
    if undeclared:
        raise refuse("undeclared_permission", _("manifest.json: the entry points %(points)s are not among the "
                                                "requested permissions."), points=", ".join(undeclared))
    module = manifest["module"]
    for path in [*(value for values in manifest["entry_points"].values() for value in values),
                 manifest.get("health_check", f"{module}:x")]:
        if path.split(":")[0].split(".")[0] != module:
            raise refuse("invalid_manifest", _("manifest.json: %(path)s is outside the plugin's module %(module)s."),
                         path=path, module=module)
    return manifest


def _check_layout(manifest: dict, members: dict[str, bytes]) -> None:
    """Code only in the plugin's own module (it cannot shadow another module); assets in their folders."""
    allowed = (manifest["module"], *ASSET_FOLDERS)
    for name in members:
        parts = PurePosixPath(name).parts
        if len(parts) == 1:
            if name.endswith(".py") or re.search(r"\.(so|pyd|pth)$", name):
                raise refuse("unexpected_code", _("%(path)s: code belongs in the module %(module)s/."),
                             path=name, module=manifest["module"])
        elif parts[0] not in allowed:
            raise refuse("unexpected_path", _("%(path)s: a package holds only %(folders)s besides top-level files."),
                         path=name, folders=", ".join(f"{folder}/" for folder in allowed))
        elif parts[0] in ASSET_FOLDERS and name.endswith((".py", ".so", ".pth")):
            raise refuse("unexpected_code", _("%(path)s: code belongs in the module %(module)s/."),
                         path=name, module=manifest["module"])


def extract(package: Package, target: Path) -> None:
    """Write the verified package's files (signature.json included) under `target`."""
    for name, content in _members(package.data).items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def verify_copy(folder: Path, checksums: dict[str, str]) -> None:
    """Check an extracted copy against the signed checksums before its code is imported."""
    for name, digest in checksums.items():
        path = folder / name
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            raise refuse("checksum_mismatch", _("%(path)s of the installed copy does not match its signed checksum."),
                         path=str(path))
    for path in folder.rglob("*"):
        relative = path.relative_to(folder).as_posix()
        if path.is_file() and relative not in checksums and relative != SIGNATURE \
                and "__pycache__" not in path.parts:
            raise refuse("unexpected_file", _("%(path)s was added to the installed copy."), path=str(path))
