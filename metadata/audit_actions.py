"""The audit actions of definitions, one family per change for every definition kind."""

from django.utils.translation import gettext_lazy as _

from audit.actions import AuditAction

PUBLISH = AuditAction("metadata.*.publish", _("Definition published (%(name)s)"), "metadata.*")
ROLLBACK = AuditAction("metadata.*.rollback", _("Definition rolled back (%(name)s)"), "metadata.*")

ACTIONS = [PUBLISH, ROLLBACK]
