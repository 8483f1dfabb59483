"""Other products' data models imported as bundles (`lowcode import --from baserow FILE`).

metadata imports no app that turns them into definitions: such an app registers a
BundleSource here, and the import command offers its type.
"""

from __future__ import annotations

from pathlib import Path

from lowcode.registry import Instance, Registry


class BundleSource(Instance):
    """A format of another product (`type`: the `--from` value) that an app converts to a bundle."""

    #: What the command's help says the path is.
    path_help: str = ""

    def import_path(self, path: Path, *, dry_run: bool, author=None) -> dict:
        """Convert the file or folder at `path` and import it into the current tenant, all or nothing.

        :returns: {"dry_run", "refused", "definitions": the bundle import's report rows, "fields":
            [{"entity", "source", "source_type", "key", "type", "note"}] (no type: not mapped, the
            note says why), "rows": [{"entity", "total", "created", "errors", ...}]}.
        :raises ValueError: the path is not of this format (its message says why).
        """
        raise NotImplementedError


bundle_source_registry: Registry[BundleSource] = Registry("bundle source")
