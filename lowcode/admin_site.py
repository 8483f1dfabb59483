"""The tenant's Django admin, titled with the tenant's name; its 403s name the missing permission."""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.apps import apps
from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from lowcode.tenancy import quotas

#: Apps installed without a name people can read in every language: the admin shows these.
APP_NAMES = {"axes": gettext_lazy("Login attempts")}

#: The action a standard ModelAdmin view needs, by the view's name.
VIEW_ACTIONS = {"changelist_view": "view", "history_view": "view", "change_view": "change", "add_view": "add",
                "delete_view": "delete"}

ACTION_LABELS = {
    "view": gettext_lazy("View %(things)s"),
    "add": gettext_lazy("Add %(things)s"),
    "change": gettext_lazy("Change %(things)s"),
    "delete": gettext_lazy("Delete %(things)s"),
    "export": gettext_lazy("Export %(things)s"),
    "import": gettext_lazy("Import %(things)s"),
}

#: App label -> how its permissions are named to people: (model name, action) -> code. An app whose
#: models are guarded by other names registers one (rbac: entity records by operation, "data.expense.view");
#: otherwise Django's permission ("rbac.view_role").
permission_codes: dict[str, Callable[[str, str], str]] = {}


def action_label(action: str, things: str) -> str:
    """"View expenses": what a permission allows, in words."""
    return ACTION_LABELS[action] % {"things": things}


def missing_permission(label: str, code: str) -> str:
    return _("You need the permission '%(label)s' (%(code)s).") % {"label": label, "code": code}


def missing_model_permission(opts, action: str) -> str:
    """The 403 reason for lacking `action` on the model of `opts`."""
    name_code = permission_codes.get(opts.app_label)
    code = name_code(opts.model_name, action) if name_code else f"{opts.app_label}.{action}_{opts.model_name}"
    return missing_permission(action_label(action, opts.verbose_name_plural), code)


def _lacks(model_admin, request, action: str) -> bool:
    if action == "view":
        return not model_admin.has_view_or_change_permission(request)
    return not getattr(model_admin, f"has_{action}_permission")(request)


def naming_denials(view):
    """Wrap a ModelAdmin view: a bare PermissionDenied it raises for lacking the view's permission says
    which permission that is (the 403 page and tests read it)."""
    model_admin, action = getattr(view, "__self__", None), VIEW_ACTIONS.get(getattr(view, "__name__", ""))
    if not isinstance(model_admin, admin.ModelAdmin) or action is None:
        return view

    @functools.wraps(view)
    def inner(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except PermissionDenied as denial:
            # A change page is also a view page: the view permission is what is missing on GET.
            needed = "view" if action == "change" and request.method in ("GET", "HEAD") else action
            if denial.args or not _lacks(model_admin, request, needed):
                raise
            raise PermissionDenied(missing_model_permission(model_admin.opts, needed)) from None

    return inner


class TenantAdminSite(admin.AdminSite):
    def each_context(self, request):
        context = super().each_context(request)
        tenant = getattr(request, "tenant", None)
        if tenant is not None:
            context["site_header"] = _("%s administration") % tenant.name
            context["site_title"] = tenant.name
        return context

    def admin_view(self, view, cacheable=False):
        return super().admin_view(naming_denials(view), cacheable)

    def index(self, request, extra_context=None):
        # The tenant's administrators see how much of each quota is used (the platform sets them).
        tenant = getattr(request, "tenant", None)
        if request.user.is_superuser and tenant is not None and not tenant.is_public:
            extra_context = {**(extra_context or {}), "quota_usage": quotas.usage_report(tenant)}
        return super().index(request, extra_context)


class LowcodeAdminConfig(AdminConfig):
    default_site = "lowcode.admin_site.TenantAdminSite"

    def ready(self):
        super().ready()
        for label, name in APP_NAMES.items():
            if apps.is_installed(label):
                apps.get_app_config(label).verbose_name = name


class ReadOnlyAdminMixin:
    """Rows nobody adds, changes or deletes in admin (logs, migrations, audit events)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
