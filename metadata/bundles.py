"""App bundles: export a tenant's published definitions, import them into another (MD-4).

A bundle is one JSON document holding definitions with their dependencies, dependencies
first; definitions that depend on each other (a cycle) stand side by side, and an import takes
them in two steps: each without what needs the others (`DefinitionKind.without_dependencies`:
entities without those relations, so all tables exist), then each whole. An import is one transaction: a dry run performs it completely, so the previews of
dependants see their dependencies published, and then rolls back; a real import commits only
when every definition was created, updated or found unchanged. Kinds take part through the
`dependencies`, `preview` and `normalize` hooks of DefinitionKind.

With its files (`lowcode export --with-files`), a bundle is a zip: `bundle.json`, the manifest
`files.json` ({provider type: [entry, ...]}) and each file's bytes once, as `files/<sha256>`.
Apps that keep files for their definitions' data take part through `bundle_files_registry`.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import IO

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_tenants.utils import get_public_schema_name
from jsonschema import Draft202012Validator

from lowcode.api.parsers import load_json
from lowcode.registry import Instance, Registry
from metadata import services
from metadata.exceptions import (
    BundleError,
    DefinitionNotFound,
    DefinitionValidationError,
    DependencyError,
    InvalidBundle,
    MetadataError,
)
from metadata.models import Definition
from metadata.registries import definition_kind_registry

FORMAT = "lowcode.bundle"
FORMAT_VERSION = 1
#: Dependency ordering recurses once per link of a chain; this keeps it far from the limit.
MAX_DEFINITIONS = 500

Node = tuple[str, str]

BUNDLE_SCHEMA = {
    "type": "object",
    "required": ["format", "format_version", "definitions"],
    "additionalProperties": False,
    "properties": {
        "format": {"const": FORMAT},
        "format_version": {"const": FORMAT_VERSION},
        "app": {"type": ["string", "null"], "maxLength": 63},
        "exported_at": {"type": ["string", "null"], "maxLength": 64},
        "definitions": {
            "type": "array",
            "maxItems": MAX_DEFINITIONS,
            "items": {
                "type": "object",
                "required": ["kind", "key", "body"],
                "additionalProperties": False,
                "properties": {
                    "kind": {"type": "string", "minLength": 1, "maxLength": 40},
                    "key": {"type": "string", "minLength": 1, "maxLength": 63},
                    "version": {"type": "integer", "minimum": 1},
                    "checksum": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "body": {"type": "object"},
                },
            },
        },
    },
}


class Action(StrEnum):
    """What an import does with one definition."""

    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    CONFLICT = "conflict"
    ERROR = "error"


REFUSED = (Action.CONFLICT, Action.ERROR)
# What a kind's hooks may raise for a bad definition; anything else is a bug and propagates.
_DEFINITION_ERRORS = (MetadataError, DatabaseError, LookupError, ValidationError, ValueError)


def export_bundle(*, app: str | None = None, keys: list[tuple[str, str]] | None = None) -> dict:
    """Return a bundle of the current tenant's published definitions, dependencies first.

    :param app: keep only definitions whose body's `app` is this (their dependencies come
        along whatever their app).
    :param keys: keep only these (kind, key) pairs.
    :raises DefinitionNotFound: a requested key is not published.
    :raises DependencyError: a dependency is not published.
    """
    published = {(d.kind, d.key): d for d in Definition.objects.filter(status=Definition.Status.PUBLISHED)}
    if keys is None:
        selected = sorted(published)
    else:
        selected = [(kind, key) for kind, key in keys]
        missing = [node for node in selected if node not in published]
        if missing:
            raise DefinitionNotFound(_("Not published in this workspace: %(keys)s.")
                                     % {"keys": ", ".join(_label(node) for node in missing)})
    if app is not None:
        selected = [node for node in selected if _app_of(published[node].body) == app]

    def dependencies(node: Node) -> list[Node]:
        needed = _dependencies(node[0], published[node].body)
        for dependency in needed:
            if dependency not in published:
                raise DependencyError(_("%(definition)s needs %(dependency)s, which is not published in this "
                                        "workspace.") % {"definition": _label(node), "dependency": _label(dependency)})
        return needed

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "app": app,
        "exported_at": timezone.now().isoformat(timespec="seconds"),
        "definitions": [
            {"kind": kind, "key": key, "version": published[kind, key].version,
             "checksum": published[kind, key].checksum, "body": _sorted(published[kind, key].body)}
            for component in _components(selected, dependencies) for kind, key in component
        ],
    }


class BundleFiles(Instance):
    """Files that travel with a bundle in its zip: those an app keeps for the data of the bundle's
    definitions (files of entity records). metadata imports no such app: they register here."""

    def manifest(self, bundle: dict) -> list[dict]:
        """The files of the bundle's definitions, as JSON objects with at least `sha256`."""
        raise NotImplementedError

    def open(self, entry: dict) -> IO[bytes]:
        """The bytes of a manifest entry (a binary file object)."""
        raise NotImplementedError

    def check_archive(self, fileobj: IO[bytes], *, what: str) -> None:
        """Refuse a zip bomb before anything is unpacked (ValidationError)."""
        raise NotImplementedError

    def restore(self, entries: list[dict], open_blob: Callable[[str], IO[bytes]], *, author=None) -> int:
        """Store the files of `entries` (`open_blob(sha256)` reads one); return how many were new."""
        raise NotImplementedError


bundle_files_registry: Registry[BundleFiles] = Registry("bundle files")

ARCHIVE_BUNDLE, ARCHIVE_MANIFEST, ARCHIVE_BLOBS = "bundle.json", "files.json", "files/"
_SHA256 = re.compile(r"[0-9a-f]{64}")


def is_archive(head: bytes) -> bool:
    """Whether bytes starting with `head` are a zip bundle (else a JSON one)."""
    return head.startswith(b"PK\x03\x04")


def write_archive(bundle: dict, output: IO[bytes]) -> int:
    """Write `bundle` with the files of its definitions' data as a zip; return how many files."""
    manifest, written = {}, set()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(ARCHIVE_BUNDLE, dump_bundle(bundle))
        for provider in bundle_files_registry.get_all():
            manifest[provider.type] = entries = provider.manifest(bundle)
            for entry in entries:
                if entry["sha256"] in written:
                    continue
                written.add(entry["sha256"])
                with provider.open(entry) as source, archive.open(ARCHIVE_BLOBS + entry["sha256"], "w") as target:
                    shutil.copyfileobj(source, target, 1024 * 1024)
        archive.writestr(ARCHIVE_MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False))
    return sum(len(entries) for entries in manifest.values())


def _invalid_archive(message: str) -> InvalidBundle:
    return InvalidBundle([{"path": "", "message": message}])


def import_archive(fileobj: IO[bytes], *, dry_run: bool, author=None) -> tuple[list[dict], int]:
    """Import a zip bundle and restore its files, all or nothing; return the report and how many
    files were new here (a dry run restores none).

    :raises InvalidBundle: not a bundle zip (a zip bomb, no bundle.json, a bad manifest).
    :raises BundleError: as import_bundle; nothing was changed.
    """
    providers = {provider.type: provider for provider in bundle_files_registry.get_all()}
    for provider in providers.values():
        try:
            provider.check_archive(fileobj, what=_("The bundle"))
        except ValidationError as error:
            raise _invalid_archive(" ".join(error.messages)) from None
    try:
        archive = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, OSError) as error:
        raise _invalid_archive(_("Not a readable zip file: %(error)s") % {"error": error}) from None
    with archive:
        names = set(archive.namelist())
        if ARCHIVE_BUNDLE not in names:
            raise _invalid_archive(_("The zip holds no %(name)s.") % {"name": ARCHIVE_BUNDLE})
        bundle = load_bundle(archive.read(ARCHIVE_BUNDLE))
        manifest = load_bundle(archive.read(ARCHIVE_MANIFEST)) if ARCHIVE_MANIFEST in names else {}
        _check_manifest(manifest, providers, names)

        def open_blob(sha256: str) -> IO[bytes]:
            return archive.open(ARCHIVE_BLOBS + sha256)

        tenant = connection.tenant
        tokens = getattr(tenant, "definition_versions", None)
        try:
            with transaction.atomic():
                report = import_bundle(bundle, dry_run=dry_run, author=author)
                restored = 0 if dry_run else sum(providers[kind].restore(entries, open_blob, author=author)
                                                 for kind, entries in manifest.items())
        except ValidationError as error:  # A file refused here (its type, the quota...): nothing changed.
            _forget_rolled_back(tenant, tokens)
            raise _invalid_archive(" ".join(error.messages)) from None
        except BaseException:
            _forget_rolled_back(tenant, tokens)
            raise
    return report, restored


def _check_manifest(manifest, providers: dict, names: set[str]) -> None:
    if not isinstance(manifest, dict):
        raise _invalid_archive(_("%(name)s is not a JSON object.") % {"name": ARCHIVE_MANIFEST})
    for kind, entries in manifest.items():
        if kind not in providers:
            raise _invalid_archive(_("Files of kind %(kind)r: no app of this workspace keeps them.") % {"kind": kind})
        if not isinstance(entries, list) or not all(
                isinstance(entry, dict) and _SHA256.fullmatch(str(entry.get("sha256"))) for entry in entries):
            raise _invalid_archive(_("%(name)s: each file needs its sha256.") % {"name": ARCHIVE_MANIFEST})
        missing = sorted({entry["sha256"] for entry in entries} - {name.removeprefix(ARCHIVE_BLOBS) for name in names})
        if missing:
            raise _invalid_archive(_("The zip lacks the bytes of %(count)d files of its manifest.")
                                   % {"count": len(missing)})


def dump_bundle(bundle: dict) -> str:
    """Serialize a bundle as pretty-printed JSON (stable key order, so exports diff well)."""
    return json.dumps(bundle, indent=2, ensure_ascii=False, cls=DjangoJSONEncoder) + "\n"


def load_bundle(text: str | bytes) -> dict:
    """Parse a bundle's JSON text; raise InvalidBundle if it is not JSON."""
    try:
        return load_json(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidBundle([{"path": "", "message": _("Not valid JSON: %(error)s") % {"error": error}}]) from None


def import_bundle(bundle: dict, *, dry_run: bool, author=None) -> list[dict]:
    """Import a bundle into the current tenant; return one report row per definition.

    Each row is {"kind", "key", "action", "message", "preview"}, action one of create,
    update, unchanged, conflict or error. A dry run does everything a real import does and
    rolls back, so it never changes anything.

    :raises InvalidBundle: the document is not a bundle; nothing was looked at.
    :raises BundleError: (real import) a definition conflicts or fails; nothing was changed.
    :raises PublishConflict: another publish is running in this tenant.
    """
    if connection.schema_name == get_public_schema_name():
        raise MetadataError(_("Bundles are imported into a workspace (tenant), not the platform schema."))
    entries = _checked_entries(bundle)
    tenant = connection.tenant
    tokens = getattr(tenant, "definition_versions", None)
    kept = False
    try:
        with transaction.atomic():
            services.lock_tenant_metadata()
            report = _import_entries(entries, author=author)
            refused = [row for row in report if row["action"] in REFUSED]
            if refused and not dry_run:
                raise BundleError(report, _("Import refused, nothing was changed: %(problems)s")
                                  % {"problems": "; ".join(f"{_label((row['kind'], row['key']))}: {row['message']}"
                                                           for row in refused)})
            if dry_run:
                transaction.set_rollback(True)
            kept = not dry_run
    finally:
        if not kept:
            _forget_rolled_back(tenant, tokens)
    return report


def _forget_rolled_back(tenant, tokens: dict | None) -> None:
    """Rolled-back publishes left in-memory state pointing at rows that no longer exist: the
    tenant's definition tokens (runtime snapshots are keyed on them) and cached content types
    of the new runtime models."""
    if tokens is not None:
        tenant.definition_versions = tokens
    ContentType.objects.clear_cache()


def _checked_entries(bundle: dict) -> list[dict]:
    """Validate the bundle's format and return its definitions in components (those that depend on
    each other together), dependencies first."""
    validator = Draft202012Validator(BUNDLE_SCHEMA)
    errors = [{"path": "/".join(str(p) for p in error.absolute_path), "message": error.message}
              for error in sorted(validator.iter_errors(bundle), key=lambda e: list(map(str, e.absolute_path)))]
    if errors:
        raise InvalidBundle(errors)
    entries: dict[Node, dict] = {}
    for index, entry in enumerate(bundle["definitions"]):
        node = (entry["kind"], entry["key"])
        if node in entries:
            errors.append({"path": f"definitions/{index}",
                           "message": _("%(definition)s appears twice.") % {"definition": _label(node)}})
        entries[node] = entry
    if errors:
        raise InvalidBundle(errors)

    def dependencies(node: Node) -> list[Node]:
        return [d for d in _dependencies(node[0], entries[node]["body"]) if d in entries]

    return [[entries[node] for node in component] for component in _components(entries, dependencies)]


def _import_entries(components: list[list[dict]], *, author) -> list[dict]:
    in_bundle = {(entry["kind"], entry["key"]) for component in components for entry in component}
    failed: set[Node] = set()
    report = []

    def run(entry: dict) -> dict:
        row = _import_entry(entry, in_bundle, failed, author=author)
        if row["action"] in REFUSED:
            failed.add((entry["kind"], entry["key"]))
        return row

    for component in components:
        first_steps = _first_steps(component) if len(component) > 1 else {}
        first_rows = {}
        for node, entry in first_steps.items():
            first_rows[node] = row = run(entry) if entry is not None else {
                "kind": node[0], "key": node[1], "action": Action.ERROR, "preview": None,
                "message": _("It depends on definitions that depend on it, and its kind cannot be imported in two "
                             "steps.")}
            if row["action"] in REFUSED:
                failed.add(node)
                report.append(row)
        # Whole bodies that needed no first step first: the others may need them. One whole body
        # may need another's (a count over the relation the other gets back): a refused one is
        # tried again while others go in.
        pending = [entry for entry in sorted(component, key=lambda item: (item["kind"], item["key"]) in first_steps)
                   if first_rows.get((entry["kind"], entry["key"]), {}).get("action") not in REFUSED]
        rows = {}
        while pending:
            refused = []
            for entry in pending:
                node = (entry["kind"], entry["key"])
                rows[node] = _import_entry(entry, in_bundle, failed, author=author)
                if rows[node]["action"] in REFUSED:
                    refused.append(entry)
            pending = refused if len(refused) < len(pending) else []
        for entry in component:
            node = (entry["kind"], entry["key"])
            row = rows.get(node)
            if row is None:
                continue
            if row["action"] in REFUSED:
                failed.add(node)
            elif first_rows.get(node, {}).get("action") == Action.CREATE:
                row = {**row, "action": Action.CREATE, "message": first_rows[node]["message"]}
            report.append(row)
    return report


def _first_steps(component: list[dict]) -> dict[Node, dict | None]:
    """The first steps of definitions that depend on each other: each one not published yet,
    without what needs the others not published yet (None: its kind cannot do without)."""
    unpublished = {(entry["kind"], entry["key"]) for entry in component
                   if services.get_published(entry["kind"], entry["key"]) is None}
    steps = {}
    for entry in component:
        node = (entry["kind"], entry["key"])
        needed = set(_dependencies(node[0], entry["body"])) & (unpublished - {node})
        if node not in unpublished or not needed:
            continue
        kind = definition_kind_registry.get(node[0]) if definition_kind_registry.is_registered(node[0]) else None
        body = kind.without_dependencies(entry["body"], needed) if kind is not None else None
        steps[node] = None if body is None else {"kind": node[0], "key": node[1], "body": body}
    return steps


def _import_entry(entry: dict, in_bundle: set[Node], failed: set[Node], *, author) -> dict:
    kind_name, key, body = entry["kind"], entry["key"], entry["body"]
    row = {"kind": kind_name, "key": key, "action": Action.ERROR, "message": "", "preview": None}
    if not definition_kind_registry.is_registered(kind_name):
        return {**row, "message": _("Unknown kind %(kind)r: no app of this workspace defines it.")
                % {"kind": kind_name}}
    kind = definition_kind_registry.get(kind_name)
    if "key" in body and body["key"] != key:
        return {**row, "message": _("The body's key %(body_key)r differs from the definition's key.")
                % {"body_key": body["key"]}}
    digest = services.checksum(body)
    if entry.get("checksum") and entry["checksum"] != digest:
        return {**row, "message": _("The checksum does not match the body (edited by hand? remove the checksum "
                                    "to accept the change).")}
    for dependency in kind.dependencies(body):
        # A dependency published here already (in an older version) still serves its dependants.
        if services.get_published(*dependency) is not None:
            continue
        if dependency in failed:
            return {**row, "message": _("Not imported: it needs %(dependency)s, which could not be imported.")
                    % {"dependency": _label(dependency)}}
        if dependency not in in_bundle:
            return {**row, "message": _("It needs %(dependency)s, which is neither in the bundle nor published in "
                                        "this workspace.") % {"dependency": _label(dependency)}}
    try:
        services.validate(kind_name, body)
    except DefinitionValidationError as error:
        return {**row, "message": str(error)}
    published = services.get_published(kind_name, key)
    if published is not None and published.checksum == digest:
        return {**row, "action": Action.UNCHANGED,
                "message": _("Same as published version %(version)s.") % {"version": published.version}}
    try:
        # Savepoints: a failing statement must not abort the import's transaction.
        with transaction.atomic():
            preview = services.preview_body(kind_name, key, body)
    except _DEFINITION_ERRORS as error:
        return {**row, "message": str(error)}
    conflicts = list(preview.get("conflicts", []))
    draft = services.get_draft(kind_name, key)
    if draft is not None and draft.checksum != digest:
        conflicts.append(_("Its unpublished draft (version %(version)s) would be replaced; publish or discard "
                           "it first.") % {"version": draft.version})
    if conflicts:
        return {**row, "action": Action.CONFLICT, "message": " ".join(conflicts), "preview": preview}
    try:
        with transaction.atomic():
            services.import_body(kind_name, key, body, author=author, note=_("Imported from a bundle"))
    except _DEFINITION_ERRORS as error:
        return {**row, "message": str(error), "preview": preview}
    if published is None:
        return {**row, "action": Action.CREATE, "message": _("New in this workspace."), "preview": preview}
    return {**row, "action": Action.UPDATE, "preview": preview,
            "message": _("Replaces published version %(version)s.") % {"version": published.version}}


def _dependencies(kind_name: str, body: dict) -> list[Node]:
    if not definition_kind_registry.is_registered(kind_name):
        return []
    return [tuple(node) for node in definition_kind_registry.get(kind_name).dependencies(body)]


def _components(roots: Iterable[Node], dependencies: Callable[[Node], list[Node]]) -> list[list[Node]]:
    """Return `roots` and everything they depend on, grouped in components (definitions that
    depend on each other, directly or not, are one), each after the components it depends on.

    Tarjan's algorithm, which finds each component once all it depends on are found.
    """
    index: dict[Node, int] = {}
    low: dict[Node, int] = {}
    stack: list[Node] = []
    components: list[list[Node]] = []

    def visit(node: Node) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for dependency in dependencies(node):
            if dependency not in index:
                visit(dependency)
                low[node] = min(low[node], low[dependency])
            elif dependency in stack:
                low[node] = min(low[node], index[dependency])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            components.append(sorted(component))

    for root in roots:
        if root not in index:
            visit(root)
    return components


def _app_of(body: dict) -> str | None:
    return body.get("app") if isinstance(body, dict) else None


def _label(node: Node) -> str:
    return f"{node[0]} {node[1]!r}"


def _sorted(value):
    """Return `value` with every object's keys sorted: stable, diffable output."""
    if isinstance(value, dict):
        return {name: _sorted(value[name]) for name in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value
