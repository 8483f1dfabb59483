"""`manage.py lowcode rbac roles|assign|unassign|explain --tenant T`."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist
from django.core.management.base import CommandError
from django.utils.translation import gettext as _
from rich.console import Console
from rich.table import Table

from lowcode.cli import TenantActionsSubcommand, add_tenant_argument
from rbac.registries import UnknownOperation


class RbacCommand(TenantActionsSubcommand):
    errors = (UnknownOperation, ObjectDoesNotExist)

    type = "rbac"
    help = "List roles, assign or unassign them, and explain a user's access."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="action")
        add_tenant_argument(actions.add_parser("roles", help=_("The tenant's roles: parents, grants, holders.")))
        for name, text in (("assign", _("Give a user a role directly.")),
                           ("unassign", _("Take a directly assigned role from a user."))):
            sub = actions.add_parser(name, help=text)
            add_tenant_argument(sub)
            sub.add_argument("--user", required=True, help=_("The username."))
            sub.add_argument("--role", required=True, help=_("The role's key."))
        explain = actions.add_parser("explain", help=_("Why a user can or cannot do an operation."))
        add_tenant_argument(explain)
        explain.add_argument("--user", required=True, help=_("The username."))
        explain.add_argument("--operation", required=True,
                             help=_("e.g. data.expense.view or designer.access."))
        explain.add_argument("--record", help=_("A record id, for entity operations."))

    def _roles(self, command, **options):
        from rbac.models import Role

        table = Table(_("key"), _("name"), _("parents"), _("operations"), _("permissions"), _("users"),
                      _("departments"), _("built-in"))
        for role in Role.objects.prefetch_related("parents", "users", "departments", "permissions"):
            table.add_row(role.key, role.name, ", ".join(p.key for p in role.parents.all()),
                          ", ".join(role.operations or []), str(len(role.permissions.all())),
                          ", ".join(u.get_username() for u in role.users.all()),
                          ", ".join(d.name for d in role.departments.all()), _("yes") if role.builtin else "")
        Console(file=command.stdout, width=160).print(table)

    def _assign(self, command, user, role, **options):
        from rbac import services

        services.assign_role(_user(user), _role(role))
        command.stdout.write(command.style.SUCCESS(_("%(user)s now has the role %(role)s.")
                                                   % {"user": user, "role": role}))

    def _unassign(self, command, user, role, **options):
        from rbac import services

        services.unassign_role(_user(user), _role(role))
        command.stdout.write(command.style.SUCCESS(_("%(user)s no longer has the role %(role)s directly.")
                                                   % {"user": user, "role": role}))

    def _explain(self, command, user, operation, record=None, **options):
        from rbac import services

        obj = services.find_record(operation, record) if record else None
        explanation = services.explain(_user(user), operation, obj)
        for step in explanation.steps:
            mark = {True: "+", False: "-", None: "·"}[step.ok]
            command.stdout.write(f"{mark} [{step.kind}] {step.message}")
        if explanation.allowed:
            command.stdout.write(command.style.SUCCESS(_("ALLOWED")))
        else:
            command.stdout.write(command.style.ERROR(_("DENIED")))


def _user(username: str):
    User = get_user_model()
    try:
        return User.objects.get_by_natural_key(username)
    except User.DoesNotExist:
        raise CommandError(_("No user %(user)r in this tenant.") % {"user": username}) from None


def _role(key: str):
    from rbac.models import Role

    role = Role.objects.filter(key=key).first()
    if role is None:
        raise CommandError(_("No role %(role)r in this tenant.") % {"role": key})
    return role
