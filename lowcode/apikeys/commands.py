"""`manage.py lowcode apikey create|list|revoke --tenant T`."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.utils import timezone
from django.utils.translation import gettext as _
from rich.console import Console
from rich.table import Table

from lowcode.apikeys import services
from lowcode.apikeys.models import ApiKey
from lowcode.cli import TenantActionsSubcommand, add_tenant_argument


class ApiKeyCommand(TenantActionsSubcommand):
    type = "apikey"
    help = "Create, list or revoke a tenant's API keys."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="action")
        create = actions.add_parser("create", help=_("Create an API key for a user; the key is printed once."))
        add_tenant_argument(create)
        create.add_argument("--user", required=True, help=_("The username the key acts as."))
        create.add_argument("--scope", action="append", dest="scopes", metavar="SCOPE",
                            help=_("<resource>:read or <resource>:write, resource = an entity key, * or metadata; "
                                   "repeat for more (default: %s).") % " ".join(services.DEFAULT_SCOPES))
        create.add_argument("--name", help=_("A label for the key (default: cli-<user>)."))
        create.add_argument("--expires-in-days", type=int, metavar="DAYS", help=_("Default: never expires."))
        add_tenant_argument(actions.add_parser("list", help=_("The tenant's API keys (never their secrets).")))
        revoke = actions.add_parser("revoke", help=_("Revoke an API key for good."))
        add_tenant_argument(revoke)
        revoke.add_argument("prefix", help=_("The key's prefix: the part before the dot."))

    def _create(self, command, user, scopes, name, expires_in_days, **options):
        try:
            owner = get_user_model().objects.get_by_natural_key(user)
        except get_user_model().DoesNotExist:
            raise CommandError(_("No user %(user)r in this tenant.") % {"user": user}) from None
        if expires_in_days is not None and expires_in_days < 1:
            raise CommandError(_("--expires-in-days must be at least 1."))
        expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
        key, full_key = services.create_key(owner, name=name or f"cli-{user}", scopes=scopes or services.DEFAULT_SCOPES,
                                            expires_at=expires_at)
        command.stdout.write(command.style.SUCCESS(
            _("Created API key %(prefix)s for %(user)s with scopes %(scopes)s.")
            % {"prefix": key.prefix, "user": user, "scopes": ", ".join(key.scopes)}))
        command.stdout.write(full_key)
        command.stdout.write(command.style.WARNING(_("Copy it now: it will not be shown again.")))

    def _list(self, command, **options):
        table = Table(_("prefix"), _("name"), _("user"), _("scopes"), _("expires"), _("last used"), _("status"))
        for key in ApiKey.objects.select_related("user"):
            table.add_row(key.prefix, key.name, key.user.get_username(), ", ".join(key.scopes),
                          _format_time(key.expires_at), _format_time(key.last_used_at),
                          str(ApiKey.Status(key.status).label))
        Console(file=command.stdout, width=140).print(table)

    def _revoke(self, command, prefix, **options):
        key = ApiKey.objects.filter(prefix=prefix).first()
        if key is None:
            raise CommandError(_("No API key with prefix %(prefix)r in this tenant.") % {"prefix": prefix})
        services.revoke(key)
        command.stdout.write(command.style.SUCCESS(_("API key %(prefix)s revoked.") % {"prefix": prefix}))


def _format_time(value) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else "-"
