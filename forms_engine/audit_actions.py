"""The audit actions of form submissions (bound forms' record writes are audited by records.save)."""

from django.utils.translation import gettext_lazy as _

from audit.actions import AuditAction

SUBMIT = AuditAction("forms_engine.form.submitted", _("Form submitted"), "forms_engine.formsubmission")
DRAFT_SAVE = AuditAction("forms_engine.form.draft_saved", _("Form draft saved"), "forms_engine.formsubmission")
EXPORT = AuditAction("forms_engine.submissions.export", _("Form submissions exported"), "forms_engine.formsubmission")

ACTIONS = [SUBMIT, DRAFT_SAVE, EXPORT]
