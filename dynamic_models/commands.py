"""`manage.py lowcode entity list|preview|publish|rollback|purge|eject --tenant T`."""

from pathlib import Path

from django.core.management.base import CommandError
from django.utils.translation import gettext as _
from rich.console import Console
from rich.table import Table

from dynamic_models import services
from dynamic_models.models import Entity
from lowcode.cli import Subcommand, add_tenant_argument, tenant_from_option
from metadata.exceptions import MetadataError


class EntityCommand(Subcommand):
    type = "entity"
    help = "List, preview, publish, roll back or purge entities of a tenant."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="action")
        add_tenant_argument(actions.add_parser("list", help="Entities with versions, rows and pending changes."))
        for action, text in [("preview", "Show the SQL and data impact of publishing the design."),
                             ("publish", "Publish the design as a new version."),
                             ("rollback", "Publish the previous version again."),
                             ("purge", "Drop the kept columns of removed fields."),
                             ("eject", "Write a migration as a Django migration file and a models.py snippet.")]:
            sub = actions.add_parser(action, help=text)
            sub.add_argument("key", help="Entity key, e.g. expense.")
            add_tenant_argument(sub)
            if action == "publish":
                sub.add_argument("--note", default="")
            if action == "rollback":
                sub.add_argument("--to-version", type=int)
            if action == "purge":
                sub.add_argument("--yes", action="store_true", help="Confirm: the data of those columns is lost.")
            if action == "eject":
                sub.add_argument("--version", type=int, help="The version the migration led to (default: live).")
                sub.add_argument("--output-dir", type=Path, help="Write <version>_<key>.py and models_<key>.py here.")

    def handle(self, command, action, tenant, **options):
        with tenant_from_option(tenant):
            try:
                getattr(self, f"_{action}")(command, **options)
            except MetadataError as error:
                raise CommandError(str(error)) from error

    @staticmethod
    def _entity(key):
        try:
            return Entity.objects.get(key=key)
        except Entity.DoesNotExist:
            raise CommandError(_("No entity %(key)r in this tenant.") % {"key": key}) from None

    def _list(self, command, **options):
        table = Table("key", "label", "version", "fields", "rows", "pending changes", "removed columns")
        for row in services.entity_status():
            table.add_row(row["key"], row["label"], str(row["published_version"] or "-"), str(row["fields"]),
                          str(row["rows"] if row["rows"] is not None else "-"),
                          _("yes") if row["pending_changes"] else _("no"), str(row["removed_columns"]))
        Console(file=command.stdout, width=140).print(table)

    def _preview(self, command, key, **options):
        plan = services.preview(self._entity(key))
        out = command.stdout
        for line in plan["summary"]:
            out.write(f"- {line}")
        for item in plan["impact"]:
            style = command.style.ERROR if item["blocking"] else command.style.WARNING
            out.write(style(f"! {item['message']} (ids: {', '.join(map(str, item['sample_ids']))})"))
        out.write("\n".join(statement.rstrip(";") + ";" for statement in plan["sql"]) or "-- no SQL")
        if plan["refused"]:
            raise CommandError(_("Publishing would be refused: fix the rows above first."))

    def _publish(self, command, key, note, **options):
        migration = services.publish(self._entity(key), note=note)
        command.stdout.write(command.style.SUCCESS(
            _("Published %(key)s version %(version)s (%(ops)d operations, %(ms)d ms).")
            % {"key": key, "version": migration.to_version, "ops": len(migration.operations),
               "ms": migration.duration_ms}))

    def _rollback(self, command, key, to_version, **options):
        migration = services.rollback(key, to_version=to_version)
        command.stdout.write(command.style.SUCCESS(_("Rolled %(key)s back; version %(version)s is live.")
                                                   % {"key": key, "version": migration.to_version}))

    def _purge(self, command, key, yes, **options):
        if not yes:
            raise CommandError(_("Purging drops the columns of removed fields with their data: add --yes."))
        columns = services.purge(key)
        command.stdout.write(command.style.SUCCESS(_("Dropped %(count)d columns: %(names)s")
                                                   % {"count": len(columns), "names": ", ".join(columns) or "-"}))

    def _eject(self, command, key, version, output_dir, **options):
        code = services.eject(key, version=version)
        if output_dir is None:
            command.stdout.write(code["migration"])
            command.stdout.write("# models.py\n" + code["models"])
            return
        output_dir.mkdir(parents=True, exist_ok=True)
        migration_path = output_dir / f"{key}_migration.py"
        models_path = output_dir / f"models_{key}.py"
        migration_path.write_text(code["migration"])
        models_path.write_text(code["models"])
        command.stdout.write(command.style.SUCCESS(_("Wrote %(migration)s and %(models)s.")
                                                   % {"migration": migration_path, "models": models_path}))
