"""Importers of other products' data models (issue 17): Baserow templates and exports, Frappe
DocTypes. Each converts its source into entity bodies and rows (conversion.py), which go through
the normal bundle import, with its preview, conflicts and dry run, then the rows (loading.py).

`lowcode import --from baserow FILE` and `--from frappe DIR|FILE` reach them through
metadata.sources; `import_baserow()` and `import_frappe()` are the services.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.utils.translation import gettext as _

from dynamic_models.importers import baserow, frappe
from dynamic_models.importers.conversion import Conversion, fit_values, settle
from dynamic_models.importers.loading import ImportResult, run
from metadata.sources import BundleSource

#: The most DocType files a Frappe folder may hold (a bundle's limit on definitions).
MAX_FILES = 500


def import_conversion(conversion: Conversion, *, dry_run: bool, author=None) -> ImportResult:
    fit_values(conversion)
    settle(conversion)
    return run(conversion, dry_run=dry_run, author=author)


def import_baserow(document: dict, *, dry_run: bool, author=None) -> ImportResult:
    """Import a Baserow template or export (parsed JSON) into the current tenant."""
    return import_conversion(baserow.convert(document), dry_run=dry_run, author=author)


def import_frappe(doctypes: list[dict], *, dry_run: bool, author=None) -> ImportResult:
    """Import Frappe DocTypes (parsed JSON documents) into the current tenant."""
    return import_conversion(frappe.convert(doctypes), dry_run=dry_run, author=author)


def _json_file(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ValueError(_("Cannot read %(file)s as JSON: %(error)s") % {"file": path, "error": error}) from None


class BaserowSource(BundleSource):
    type = "baserow"
    path_help = "a Baserow template or export JSON file"

    def import_path(self, path, *, dry_run, author=None):
        return import_baserow(_json_file(Path(path)), dry_run=dry_run, author=author).as_dict()


class FrappeSource(BundleSource):
    type = "frappe"
    path_help = "a Frappe DocType JSON file, or a folder of them (searched recursively)"

    def import_path(self, path, *, dry_run, author=None):
        path = Path(path)
        files = sorted(path.rglob("*.json"))[:MAX_FILES + 1] if path.is_dir() else [path]
        if len(files) > MAX_FILES:
            raise ValueError(_("More than %(max)d JSON files under %(path)s.") % {"max": MAX_FILES, "path": path})
        documents = []
        for file in files:
            content = _json_file(file)
            documents.extend(content if isinstance(content, list) else [content])
        return import_frappe(documents, dry_run=dry_run, author=author).as_dict()
