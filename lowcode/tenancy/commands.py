"""`manage.py lowcode tenant create|list|suspend|resume|delete`."""

from pathlib import Path

from django.core.management.base import CommandError
from django.utils.translation import gettext as _
from rich.console import Console
from rich.table import Table

from lowcode.cli import Subcommand
from lowcode.tenancy import services
from lowcode.tenancy.models import Tenant


class TenantCommand(Subcommand):
    type = "tenant"
    help = "Create, list, suspend, resume or delete tenants."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="action")
        create = actions.add_parser("create", help="Create a tenant with its schema and domain.")
        create.add_argument("schema", help="Schema name, for example acme.")
        create.add_argument("--name", help="Display name (default: the schema name).")
        create.add_argument("--domain", required=True, help="Host name, for example acme.example.com.")
        create.add_argument("--plan", default=Tenant.Plan.FREE, choices=Tenant.Plan.values)
        create.add_argument("--admin", metavar="USERNAME",
                            help="Also create this tenant admin; its password is printed once.")
        create.add_argument("--admin-email", default="")
        actions.add_parser("list", help="List tenants with status, plan, domains and users.")
        for action in ("suspend", "resume"):
            actions.add_parser(action, help=f"{action.capitalize()} a tenant.").add_argument("schema")
        delete = actions.add_parser("delete", help="Export a tenant's data, then drop its schema.")
        delete.add_argument("schema")
        delete.add_argument("--yes", action="store_true", help="Confirm: the schema is dropped.")
        delete.add_argument("--export-dir", type=Path, default=services.DEFAULT_EXPORT_DIR)

    def handle(self, command, action, **options):
        try:
            getattr(self, f"_{action}")(command, **options)
        except services.TenancyError as error:
            raise CommandError(str(error)) from error

    def _create(self, command, schema, name, domain, plan, admin, admin_email, **options):
        tenant = services.create_tenant(schema_name=schema, name=name or schema, domain=domain, plan=plan)
        command.stdout.write(command.style.SUCCESS(_("Created tenant %(schema)s at %(domain)s.")
                                                   % {"schema": tenant.schema_name, "domain": domain}))
        if admin:
            password = services.create_tenant_admin(tenant, username=admin, email=admin_email)
            command.stdout.write(_("Tenant admin %(user)s, password: %(password)s (shown once)")
                                 % {"user": admin, "password": password})

    def _list(self, command, **options):
        table = Table("schema", "name", "status", "plan", "domains", "users", "created")
        for tenant in Tenant.objects.prefetch_related("domains"):
            table.add_row(*(str(value) for value in services.tenant_summary(tenant).values()))
        Console(file=command.stdout, width=120).print(table)

    def _suspend(self, command, schema, **options):
        services.suspend_tenant(services.get_tenant(schema))
        command.stdout.write(command.style.SUCCESS(_("Tenant %s suspended.") % schema))

    def _resume(self, command, schema, **options):
        services.resume_tenant(services.get_tenant(schema))
        command.stdout.write(command.style.SUCCESS(_("Tenant %s resumed.") % schema))

    def _delete(self, command, schema, yes, export_dir, **options):
        tenant = services.get_tenant(schema)
        if not yes:
            raise CommandError(_("Deleting drops schema %s and all its data: add --yes to confirm.") % schema)
        path = services.delete_tenant(tenant, export_dir=export_dir)
        command.stdout.write(command.style.SUCCESS(_("Tenant %(schema)s deleted; its data was exported to %(path)s.")
                                                   % {"schema": schema, "path": path}))
