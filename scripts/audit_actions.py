"""The audit action of script runs (what a script writes is audited by records.save)."""

from django.utils.translation import gettext_lazy as _

from audit.actions import AuditAction

RUN = AuditAction("scripts.script.run", _("Script run"), "scripts.scriptrun")

ACTIONS = [RUN]
