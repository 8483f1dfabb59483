"""The audit actions the audit app records itself: sign-in and the trail's own exports and archives."""

from django.utils.translation import gettext_lazy as _

from audit.actions import AuditAction

LOGIN = AuditAction("auth.login", _("Signed in"), "auth.user")
LOGOUT = AuditAction("auth.logout", _("Signed out"), "auth.user")
LOGIN_FAILED = AuditAction("auth.login_failed", _("Failed sign-in"), "auth.user")
EXPORT = AuditAction("audit.export", _("Audit trail exported"))
ARCHIVE = AuditAction("audit.archive", _("Audit events archived and removed (retention)"), "audit.auditevent")
# Settings kept in static models and changed in the admin (a theme, a menu, a webhook endpoint);
# the part is the model's label with "_" for "." (pages_theme).
ADMIN_CREATE = AuditAction("admin.*.create", _("%(name)s added in the admin"))
ADMIN_UPDATE = AuditAction("admin.*.update", _("%(name)s changed in the admin"))
ADMIN_DELETE = AuditAction("admin.*.delete", _("%(name)s deleted in the admin"))

ACTIONS = [LOGIN, LOGOUT, LOGIN_FAILED, EXPORT, ARCHIVE, ADMIN_CREATE, ADMIN_UPDATE, ADMIN_DELETE]
