"""Subcommands of `manage.py lowcode` (PF-5), one registry for every app.

Each app registers its subcommands from `AppConfig.ready()`; the `lowcode` management
command builds one argument parser from them. Subcommands are thin shells over services.
"""

from __future__ import annotations

from argparse import ArgumentParser
from contextlib import contextmanager

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from lowcode.registry import Instance, Registry


class Subcommand(Instance):
    help: str = ""

    def add_arguments(self, parser: ArgumentParser) -> None:
        """Add this subcommand's options."""

    def handle(self, command: BaseCommand, **options) -> None:
        raise NotImplementedError


class TenantActionsSubcommand(Subcommand):
    """A subcommand of actions run in one tenant (`lowcode apikey create|list|revoke --tenant T`).

    `handle` runs the method `_<action>`; validation errors and `errors` become command errors.
    """

    #: Exceptions besides ValidationError whose message is the command's error.
    errors: tuple[type[Exception], ...] = ()

    def handle(self, command: BaseCommand, action: str, tenant: str, **options) -> None:
        with tenant_from_option(tenant):
            try:
                getattr(self, f"_{action}")(command, **options)
            except ValidationError as error:
                raise CommandError(" ".join(error.messages)) from error
            except self.errors as error:
                raise CommandError(str(error)) from error


subcommand_registry: Registry[Subcommand] = Registry("lowcode subcommand")


def add_tenant_argument(parser: ArgumentParser) -> None:
    parser.add_argument("--tenant", required=True, metavar="SCHEMA", help="The tenant's schema name, e.g. acme.")


@contextmanager
def tenant_from_option(schema_name: str):
    """Run the block in the tenant's schema, or fail with a clear command error."""
    from django_tenants.utils import get_tenant_model, tenant_context

    tenant = get_tenant_model().objects.filter(schema_name=schema_name).first()
    if tenant is None or tenant.is_public:
        raise CommandError(_("No tenant with schema %(name)r.") % {"name": schema_name})
    with tenant_context(tenant):
        yield tenant
