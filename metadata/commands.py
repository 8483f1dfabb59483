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
    help = ("Import a bundle (JSON, or a zip with its files) into a tenant, all or nothing; --dry-run only "
            "reports what would happen.")

    def add_arguments(self, parser):
        parser.add_argument("file", help="The bundle, or - for stdin.")
        add_tenant_argument(parser)
        parser.add_argument("--dry-run", action="store_true", help="Report what would happen; change nothing.")

    def handle(self, command, file, tenant, dry_run, **options):
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
