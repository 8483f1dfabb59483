"""`manage.py lowcode export|import --tenant T`: app bundles between tenants (MD-4)."""

from __future__ import annotations

import io
import sys
from argparse import ArgumentTypeError
from pathlib import Path

from django.core.management.base import CommandError
from django.utils.translation import gettext as _
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lowcode.cli import Subcommand, add_tenant_argument, tenant_from_option
from metadata import bundles
from metadata.exceptions import BundleError, MetadataError
from metadata.sources import bundle_source_registry

_ACTION_STYLES = {"create": "green", "update": "yellow", "unchanged": "dim", "conflict": "bold red",
                  "error": "bold red"}


def _definition_key(value: str) -> tuple[str, str]:
    kind, sep, key = value.partition(":")
    if not sep or not kind or not key:
        raise ArgumentTypeError(_("%(value)r is not KIND:KEY, e.g. entity:expense.") % {"value": value})
    return kind, key


class ExportCommand(Subcommand):
    type = "export"
    help = "Write a tenant's published definitions (with their dependencies) as a JSON bundle."

    def add_arguments(self, parser):
        add_tenant_argument(parser)
        parser.add_argument("--app", help="Only the definitions of this app, e.g. expenses.")
        parser.add_argument("--key", dest="keys", action="append", type=_definition_key, metavar="KIND:KEY",
                            help="Only this definition, e.g. entity:expense (repeatable).")
        parser.add_argument("--output", "-o", type=Path, metavar="FILE", help="Write here instead of stdout.")
        parser.add_argument("--with-files", action="store_true",
                            help="Write a zip with the files of the exported entities' records (needs --output).")

    def handle(self, command, tenant, app, keys, output, with_files, **options):
        if with_files and output is None:
            raise CommandError(_("--with-files writes a zip: name it with --output."))
        with tenant_from_option(tenant):
            try:
                bundle = bundles.export_bundle(app=app, keys=keys)
            except MetadataError as error:
                raise CommandError(str(error)) from error
            if not bundle["definitions"]:
                raise CommandError(_("Nothing to export: no published definitions match in %(tenant)s.")
                                   % {"tenant": tenant})
            if with_files:
                with output.open("wb") as target:
                    count = bundles.write_archive(bundle, target)
                command.stdout.write(command.style.SUCCESS(
                    _("Exported %(count)d definitions and %(files)d files to %(path)s.")
                    % {"count": len(bundle["definitions"]), "files": count, "path": output}))
                return
        text = bundles.dump_bundle(bundle)
        if output is None:
            command.stdout.write(text, ending="")
            return
        output.write_text(text, encoding="utf-8")
        command.stdout.write(command.style.SUCCESS(_("Exported %(count)d definitions to %(path)s.")
                                                   % {"count": len(bundle["definitions"]), "path": output}))


class ImportCommand(Subcommand):
    type = "import"
    help = ("Import a bundle (JSON, or a zip with its files), or another product's data model (--from), into a "
            "tenant, all or nothing; --dry-run only reports what would happen.")

    def add_arguments(self, parser):
        parser.add_argument("file", help="The bundle, or - for stdin; with --from: " + "; ".join(
            f"{source.type}: {source.path_help}" for source in bundle_source_registry.get_all()) + ".")
        add_tenant_argument(parser)
        parser.add_argument("--dry-run", action="store_true", help="Report what would happen; change nothing.")
        parser.add_argument("--from", dest="source", choices=bundle_source_registry.get_types(),
                            help="Convert this product's data model (its rows too, where it has them).")

    def handle(self, command, file, tenant, dry_run, source=None, **options):
        if source is not None:
            self._import_source(command, bundle_source_registry.get(source), Path(file), tenant, dry_run)
            return
        content = self._read(file)
        restored = None
        with tenant_from_option(tenant):
            try:
                if bundles.is_archive(content):
                    report, restored = bundles.import_archive(io.BytesIO(content), dry_run=dry_run)
                else:
                    report = bundles.import_bundle(bundles.load_bundle(content), dry_run=dry_run)
            except BundleError as error:
                self._print(command, error.report)
                raise CommandError(str(error)) from error
            except MetadataError as error:
                raise CommandError(str(error)) from error
        self._print(command, report)
        counts = {action: sum(row["action"] == action for row in report) for action in bundles.Action}
        summary = ", ".join(f"{counts[action]} {action}" for action in bundles.Action if counts[action])
        if dry_run:
            if any(counts[action] for action in bundles.REFUSED):
                raise CommandError(_("Dry run: the import would be refused (%(summary)s). Nothing was changed.")
                                   % {"summary": summary})
            command.stdout.write(command.style.SUCCESS(_("Dry run: the import would succeed (%(summary)s). "
                                                         "Nothing was changed.") % {"summary": summary}))
        else:
            command.stdout.write(command.style.SUCCESS(_("Imported into %(tenant)s: %(summary)s.")
                                                       % {"tenant": tenant, "summary": summary}))
            if restored is not None:
                command.stdout.write(command.style.SUCCESS(_("Files restored: %(count)d.") % {"count": restored}))

    def _import_source(self, command, source, path: Path, tenant: str, dry_run: bool) -> None:
        if not path.exists():
            raise CommandError(_("Cannot read %(file)s: no such file or folder.") % {"file": path})
        with tenant_from_option(tenant):
            try:
                result = source.import_path(path, dry_run=dry_run)
            except (ValueError, MetadataError) as error:
                raise CommandError(str(error)) from error
        self._print(command, result["definitions"])
        console = Console(file=command.stdout, width=140)
        fields = Table(_("entity"), _("source field"), _("source type"), _("field"), _("type"), _("note"))
        for item in result["fields"]:
            fields.add_row(item["entity"], escape(item["source"]), escape(item["source_type"]), item["key"],
                           item["type"] or f"[bold red]{_('not mapped')}[/]", escape(item["note"]))
        console.print(fields)
        rows = Table(_("entity"), _("rows"), _("imported"), _("links"), _("errors"))
        for item in result["rows"]:
            rows.add_row(item["entity"], str(item["total"]), str(item["created"]), str(item["links"]),
                         escape("\n".join(f"{error['row']}: {error['errors']}" for error in item["errors"][:20])))
        if result["rows"]:
            console.print(rows)
        unmapped = sum(not item["type"] for item in result["fields"])
        if result["refused"]:
            raise CommandError(_("The import was refused; nothing was changed.") if not dry_run else
                               _("Dry run: the import would be refused. Nothing was changed."))
        message = _("Dry run: the import would succeed (%(unmapped)d source fields not mapped). Nothing was "
                    "changed.") if dry_run else _("Imported into %(tenant)s (%(unmapped)d source fields not mapped).")
        command.stdout.write(command.style.SUCCESS(message % {"tenant": tenant, "unmapped": unmapped}))

    @staticmethod
    def _read(file: str) -> bytes:
        try:
            return sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
        except OSError as error:
            raise CommandError(_("Cannot read %(file)s: %(error)s") % {"file": file, "error": error.strerror}) \
                from error

    @staticmethod
    def _print(command, report: list[dict]) -> None:
        table = Table(_("kind"), _("key"), _("action"), _("details"))
        for row in report:
            preview = row["preview"] or {}
            details = [row["message"], *(f"· {line}" for line in preview.get("summary", []))]
            style = _ACTION_STYLES.get(row["action"], "")
            table.add_row(row["kind"], row["key"], f"[{style}]{row['action']}[/]" if style else str(row["action"]),
                          escape("\n".join(line for line in details if line)))
        Console(file=command.stdout, width=140).print(table)
