"""`manage.py lowcode seed_demo`: the reference scenario's demo entities and records."""

import io

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.utils.translation import gettext as _
from rich.console import Console
from rich.table import Table

from dynamic_models.seed import seed_demo
from dynamic_models.signals import demo_seeded
from lowcode.cli import Subcommand
from metadata.exceptions import BundleError, MetadataError


class SeedDemoCommand(Subcommand):
    type = "seed_demo"
    help = "Load the demo entities and records into acme and globex (safe to run again)."

    def handle(self, command, **options):
        try:
            results = seed_demo()
            demo_seeded.send(sender=SeedDemoCommand, results=results)
        except BundleError as error:
            raise CommandError(_("Demo data not loaded: %(error)s") % {"error": error}) from error
        except MetadataError as error:
            raise CommandError(str(error)) from error
        except ValidationError as error:  # A quota of the tenant, for example.
            raise CommandError(_("Demo data not loaded: %(error)s") % {"error": " ".join(error.messages)}) from error
        if not results:
            command.stdout.write(_("Demo data: no demo tenant (acme, globex) exists yet; run `lowcode up`."))
        for result in results:
            records = ", ".join(f"{count} {key}" for key, count in result.records.items())
            command.stdout.write(_("Demo data in %(tenant)s: imported %(imported)s; new records: %(records)s.")
                                 % {"tenant": result.tenant, "imported": ", ".join(result.imported) or _("nothing"),
                                    "records": records or _("none")})
            if result.people:
                table = Table(title=_("Demo people in %(tenant)s (passwords shown this once)") % {"tenant": result.tenant},
                              min_width=60)
                for column in (_("user"), _("role"), _("password")):
                    table.add_column(column)
                for row in result.people:
                    table.add_row(*row)
                console = Console(file=io.StringIO(), width=100)
                console.print(table)
                command.stdout.write(console.file.getvalue().rstrip())
            if result.changed:
                command.stdout.write(command.style.WARNING(
                    _("  %(definitions)s changed since the demo was loaded: kept as they are, no demo records.")
                    % {"definitions": ", ".join(result.changed)}))
