"""The audit action of data-factory runs (the records a handler writes are audited by records.save)."""

from django.utils.translation import gettext_lazy as _

from audit.actions import AuditAction

RUN = AuditAction("datafactory.module.run", _("Data-factory module run"), "datafactory.modulerun")

ACTIONS = [RUN]
