"""`manage.py lowcode plugin ...`: publishers' keygen, pack, sign and verify; the platform's
install, upgrade, uninstall and keys; enable and disable in a tenant. Shells over services."""

from __future__ import annotations

import argparse
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser
from django.utils.translation import gettext as _
from django_tenants.utils import get_tenant_model
from rich.console import Console
from rich.table import Table

from lowcode.cli import Subcommand, add_tenant_argument, tenant_from_option
from lowcode.registry import NotRegistered
from plugins import packages, services
from plugins.extension_points import plugin_command_registry
from plugins.models import Plugin, PublisherKey


def _tenant(schema_name: str):
    tenant = get_tenant_model().objects.filter(schema_name=schema_name).first()
    if tenant is None or tenant.is_public:
        raise CommandError(_("No tenant with schema %(name)r.") % {"name": schema_name})
    return tenant


class PluginCommand(Subcommand):
    type = "plugin"
    help = "Build, sign and verify plugin packages; install, upgrade, enable, disable and uninstall plugins."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="action")
        keygen = actions.add_parser("keygen", help=_("Make a publisher key pair; prints the public key to register."))
        keygen.add_argument("--output", required=True, help=_("Where to write the private key (PEM)."))
        pack = actions.add_parser("pack", help=_("Zip a plugin's folder (manifest.json at its top)."))
        pack.add_argument("folder")
        pack.add_argument("--output", required=True)
        pack.add_argument("--key", help=_("Also sign it with this private key (PEM)."))
        sign = actions.add_parser("sign", help=_("Sign a package with a publisher's private key."))
        sign.add_argument("package")
        sign.add_argument("--key", required=True, help=_("The private key (PEM)."))
        sign.add_argument("--output", help=_("Default: replace the package."))
        verify = actions.add_parser("verify", help=_("Check a package's signature, checksums and manifest."))
        verify.add_argument("package")
        verify.add_argument("--public-key", help=_("Check against this key (base64) instead of the registered ones."))
        for name, text in [("install", _("Install a package on the platform.")),
                           ("upgrade", _("Upgrade an installed plugin to this package's version."))]:
            actions.add_parser(name, help=text).add_argument("package")
        uninstall = actions.add_parser("uninstall", help=_("Uninstall a plugin from every tenant."))
        uninstall.add_argument("name")
        uninstall.add_argument("--purge", action="store_true", help=_("Also delete its data."))
        for name, text in [("enable", _("Enable a plugin in a tenant.")), ("disable", _("Disable it in a tenant."))]:
            step = actions.add_parser(name, help=text)
            step.add_argument("name")
            add_tenant_argument(step)
        listing = actions.add_parser("list", help=_("Installed plugins (and whether a tenant enables them)."))
        listing.add_argument("--tenant", metavar="SCHEMA")
        add_key = actions.add_parser("add-key", help=_("Register a publisher's public key."))
        add_key.add_argument("publisher")
        add_key.add_argument("public_key", help=_("The raw Ed25519 public key, base64."))
        revoke = actions.add_parser("revoke-key", help=_("Revoke a publisher key."))
        revoke.add_argument("key_id")
        actions.add_parser("keys", help=_("The registered publisher keys."))
        run = actions.add_parser("run", help=_("Run a command a plugin enabled in the tenant adds: "
                                              "run --tenant T <command> [its arguments]."))
        add_tenant_argument(run)
        run.add_argument("command_name", metavar="command")
        run.add_argument("arguments", nargs=argparse.REMAINDER, help=_("The command's own arguments."))

    def handle(self, command, action, **options):
        try:
            getattr(self, f"_{action.replace('-', '_')}")(command, **options)
        except ValidationError as error:
            code = error.error_list[0].code if hasattr(error, "error_list") else "invalid"
            raise CommandError(f"{code}: {' '.join(error.messages)}") from error
        except OSError as error:
            raise CommandError(str(error)) from error

    def _keygen(self, command, output, **options):
        pem = packages.generate_private_key()
        Path(output).write_bytes(pem)
        Path(output).chmod(0o600)
        command.stdout.write(packages.public_key_text(packages.load_private_key(pem)))

    def _pack(self, command, folder, output, key, **options):
        data = packages.pack(Path(folder))
        if key:
            data = packages.sign(data, packages.load_private_key(Path(key).read_bytes()))
        Path(output).write_bytes(data)
        command.stdout.write(command.style.SUCCESS(_("Packed %(output)s.") % {"output": output}))

    def _sign(self, command, package, key, output, **options):
        data = packages.sign(Path(package).read_bytes(), packages.load_private_key(Path(key).read_bytes()))
        Path(output or package).write_bytes(data)
        command.stdout.write(command.style.SUCCESS(_("Signed %(output)s.") % {"output": output or package}))

    def _verify(self, command, package, public_key, **options):
        data = Path(package).read_bytes()
        verified = packages.verify(data, lambda key_id: public_key) if public_key else services.verify(data)
        command.stdout.write(command.style.SUCCESS(_("%(name)s %(version)s: signature and checksums verified.")
                                                   % {"name": verified.name, "version": verified.version}))

    def _install(self, command, package, **options):
        plugin = services.install(Path(package).read_bytes(), actor="cli")
        command.stdout.write(command.style.SUCCESS(_("Installed %(plugin)s.") % {"plugin": plugin}))

    def _upgrade(self, command, package, **options):
        plugin = services.upgrade(Path(package).read_bytes(), actor="cli")
        command.stdout.write(command.style.SUCCESS(_("%(plugin)s is installed.") % {"plugin": plugin}))

    def _uninstall(self, command, name, purge, **options):
        services.uninstall(name, purge=purge, actor="cli")
        command.stdout.write(command.style.SUCCESS(_("%(name)s is not installed.") % {"name": name}))

    def _enable(self, command, name, tenant, **options):
        services.enable(_tenant(tenant), name)
        command.stdout.write(command.style.SUCCESS(_("%(name)s is enabled in %(tenant)s.")
                                                   % {"name": name, "tenant": tenant}))

    def _disable(self, command, name, tenant, **options):
        services.disable(_tenant(tenant), name)
        command.stdout.write(command.style.SUCCESS(_("%(name)s is disabled in %(tenant)s.")
                                                   % {"name": name, "tenant": tenant}))

    def _list(self, command, tenant, **options):
        rows = services.tenant_plugins(_tenant(tenant)) if tenant else [(p, None) for p in Plugin.objects.all()]
        table = Table(_("name"), _("version"), _("author"), _("permissions"), *([_("enabled")] if tenant else []))
        for plugin, enabled in rows:
            table.add_row(plugin.name, plugin.version, plugin.author, ", ".join(plugin.manifest["permissions"]),
                          *([_("yes") if enabled else _("no")] if tenant else []))
        Console(file=command.stdout, width=140).print(table)

    def _add_key(self, command, publisher, public_key, **options):
        key = services.register_key(publisher, public_key, actor="cli")
        command.stdout.write(command.style.SUCCESS(_("Registered key %(key)s.") % {"key": key}))

    def _revoke_key(self, command, key_id, **options):
        services.revoke_key(key_id, actor="cli")
        command.stdout.write(command.style.SUCCESS(_("Revoked key %(key)s.") % {"key": key_id}))

    def _keys(self, command, **options):
        table = Table(_("publisher"), _("key id"), _("revoked"))
        for key in PublisherKey.objects.all():
            table.add_row(key.name, key.key_id, str(key.revoked_at or "-"))
        Console(file=command.stdout, width=140).print(table)

    def _run(self, command, command_name, tenant, arguments, **options):
        name = command_name
        with tenant_from_option(tenant):
            try:
                contributed = plugin_command_registry.get(name)
            except NotRegistered:
                raise CommandError(_("No plugin enabled in %(tenant)s adds the command %(command)r.")
                                   % {"tenant": tenant, "command": name}) from None
            parser = CommandParser(prog=f"lowcode plugin run {name}", description=contributed.help,
                                   called_from_command_line=command._called_from_command_line)
            contributed.add_arguments(parser)
            contributed.handle(command, **vars(parser.parse_args(arguments)))
