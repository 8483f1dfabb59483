from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils.translation import gettext_lazy as _

from metadata.models import Definition


class FormDefinitionManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(kind="form")


class FormDefinition(Definition):
    """The versions of `form` definitions, as the admin lists and designs them."""

    objects = FormDefinitionManager()

    class Meta:
        proxy = True
        verbose_name = _("form")
        verbose_name_plural = _("forms")


class FormSubmission(models.Model):
    """One filling of a published form: a draft being filled, or a submission.

    Standalone forms keep their data here (JSON). Bound forms keep the reference of the record
    the submission created or changed, not a copy of its values (those are read through rbac);
    their drafts hold the data until they are submitted.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        SUBMITTED = "submitted", _("submitted")

    form_key = models.CharField(_("form"), max_length=100, db_index=True)
    form_version = models.PositiveIntegerField(_("form version"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.DRAFT)
    data = models.JSONField(_("data"), default=dict, blank=True, encoder=DjangoJSONEncoder)
    record_entity = models.CharField(_("entity"), max_length=40, blank=True)
    record_id = models.BigIntegerField(_("record id"), null=True, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("user"), null=True, blank=True,
                             on_delete=models.SET_NULL, related_name="form_submissions")
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)

    class Meta:
        verbose_name = _("form submission")
        verbose_name_plural = _("form submissions")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["form_key", "status", "-created_at"], name="forms_submission_list")]

    def __str__(self):
        return f"{self.form_key} #{self.pk}"
