"""The audit actions of roles, departments, memberships and object grants."""

from django.utils.translation import gettext_lazy as _

from audit.actions import AuditAction

ROLE_CREATE = AuditAction("rbac.role.create", _("Role created"), "rbac.role")
ROLE_UPDATE = AuditAction("rbac.role.update", _("Role changed"), "rbac.role")
ROLE_GRANT = AuditAction("rbac.role.grant", _("Permission granted to a role"), "rbac.role")
ROLE_REVOKE = AuditAction("rbac.role.revoke", _("Permission revoked from a role"), "rbac.role")
ROLE_DELETE = AuditAction("rbac.role.delete", _("Role deleted"), "rbac.role")
MEMBERSHIP_ASSIGN = AuditAction("rbac.membership.assign", _("Role assigned to a user"), "auth.user")
MEMBERSHIP_UNASSIGN = AuditAction("rbac.membership.unassign", _("Role taken from a user"), "auth.user")
SCOPE_CREATE = AuditAction("rbac.scope.create", _("Data scope added to a role"), "rbac.role")
SCOPE_DELETE = AuditAction("rbac.scope.delete", _("Data scope removed from a role"), "rbac.role")
COLUMN_RULE_SET = AuditAction("rbac.column_rule.set", _("Column rule set on a role"), "rbac.role")
DEPARTMENT_CREATE = AuditAction("rbac.department.create", _("Department created"), "rbac.department")
DEPARTMENT_UPDATE = AuditAction("rbac.department.update", _("Department changed"), "rbac.department")
DEPARTMENT_ADD_MEMBER = AuditAction("rbac.department.add_member", _("Member added to a department"),
                                    "rbac.department")
DEPARTMENT_REMOVE_MEMBER = AuditAction("rbac.department.remove_member", _("Member removed from a department"),
                                       "rbac.department")
DEPARTMENT_DELETE = AuditAction("rbac.department.delete", _("Department deleted"), "rbac.department")
# The target is the shared object, of whatever resource type.
GRANT_SHARE = AuditAction("rbac.grant.share", _("Object shared"))
GRANT_UNSHARE = AuditAction("rbac.grant.unshare", _("Object share taken back"))

ACTIONS = [ROLE_CREATE, ROLE_UPDATE, ROLE_GRANT, ROLE_REVOKE, ROLE_DELETE, MEMBERSHIP_ASSIGN, MEMBERSHIP_UNASSIGN,
           SCOPE_CREATE, SCOPE_DELETE, COLUMN_RULE_SET, DEPARTMENT_CREATE, DEPARTMENT_UPDATE, DEPARTMENT_ADD_MEMBER,
           DEPARTMENT_REMOVE_MEMBER, DEPARTMENT_DELETE, GRANT_SHARE, GRANT_UNSHARE]
