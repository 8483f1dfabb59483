from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RbacConfig(AppConfig):
    name = "rbac"
    verbose_name = _("Roles and permissions")

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group
        from django.core import checks
        from django.db.models.signals import m2m_changed, post_migrate

        from audit.actions import audit_action_registry
        from lowcode.admin_site import permission_codes
        from lowcode.cli import subcommand_registry
        from lowcode.site import SitePart, site_part_registry
        from rbac import audit_actions, receivers
        from rbac import checks as rbac_checks
        from rbac.admin import adopt_user_admin
        from rbac.commands import RbacCommand
        from rbac.registries import ENTITY_PREFIX, entity_operation, register_builtin_operations
        from rbac.scopes import register_builtin_scope_kinds

        audit_action_registry.register_all(audit_actions.ACTIONS)
        register_builtin_operations()
        register_builtin_scope_kinds()
        subcommand_registry.register(RbacCommand())
        site_part_registry.register(SitePart("rbac", api_urls={"rbac/": "rbac.urls"}))
        permission_codes[ENTITY_PREFIX] = entity_operation  # A 403 in admin names the entity operation.
        adopt_user_admin()  # After lowcode.tenancy's: the tenant's user page shows roles, not raw permissions.
        checks.register(rbac_checks.check_builtin_roles, checks.Tags.models)
        post_migrate.connect(receivers.complete_builtin_roles, sender=self, dispatch_uid="rbac.builtin_roles")
        User = get_user_model()
        for through, uid in ((User.user_permissions.through, "user_permissions"), (User.groups.through, "groups"),
                             (Group.permissions.through, "group_permissions")):
            m2m_changed.connect(receivers.django_grants_changed, sender=through, dispatch_uid=f"rbac.{uid}")
