"""The audit actions the audit app records itself: sign-in and the trail's own exports and archives."""

from django.utils.translation import gettext_lazy as _

from audit.actions import AuditAction

LOGIN = AuditAction("auth.login", _("Signed in"), "auth.user")
LOGOUT = AuditAction("auth.logout", _("Signed out"), "auth.user")
LOGIN_FAILED = AuditAction("auth.login_failed", _("Failed sign-in"), "auth.user")
EXPORT = AuditAction("audit.export", _("Audit trail exported"))
ARCHIVE = AuditAction("audit.archive", _("Audit events archived and removed (retention)"), "audit.auditevent")

ACTIONS = [LOGIN, LOGOUT, LOGIN_FAILED, EXPORT, ARCHIVE]
