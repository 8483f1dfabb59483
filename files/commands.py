"""`manage.py lowcode files verify --tenant T`."""

from __future__ import annotations

from django.core.management.base import CommandError
from django.utils.translation import gettext as _
from rich.console import Console
from rich.table import Table

from files import services
from lowcode.cli import Subcommand, add_tenant_argument, tenant_from_option


class FilesCommand(Subcommand):
    type = "files"
    help = "Check a tenant's stored files."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="action")
        add_tenant_argument(actions.add_parser(
            "verify", help=_("Re-hash every stored object and report missing, corrupt and orphaned ones; exit code 1 "
                             "on any problem.")))

    def handle(self, command, action, tenant, **options):
        with tenant_from_option(tenant):
            getattr(self, f"_{action}")(command, tenant=tenant)

    def _verify(self, command, *, tenant):
        problems = services.verify()
        if not problems:
            command.stdout.write(command.style.SUCCESS(_("Every stored file of %(tenant)s is present and intact.") % {
                "tenant": tenant}))
            return
        table = Table(title=_("Stored files of %(tenant)s") % {"tenant": tenant})
        for column in (_("Problem"), _("Object"), _("Detail")):
            table.add_column(column)
        for problem in problems:
            table.add_row(problem.kind, problem.key, problem.detail)
        Console(file=command.stdout, width=140).print(table)
        raise CommandError(_("%(count)d problem(s) found.") % {"count": len(problems)}, returncode=1)
