from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from viewflow import fsm

from lowcode.models import TimestampedModel


class Definition(TimestampedModel):
    """One version of a designed thing (entity, form, page, workflow, ...): MD-1.

    Per (kind, key) there is at most one draft and one published version; published and
    archived versions are never edited, a change is a new version.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PUBLISHED = "published", _("Published")
        ARCHIVED = "archived", _("Archived")

    kind = models.CharField(_("kind"), max_length=40)
    key = models.CharField(_("key"), max_length=63)
    version = models.PositiveIntegerField(_("version"))
    status = models.CharField(_("status"), max_length=20, choices=Status, default=Status.DRAFT)
    body = models.JSONField(_("body"))
    checksum = models.CharField(_("checksum"), max_length=64)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("author"), null=True, blank=True,
                               on_delete=models.SET_NULL, related_name="+")
    change_note = models.CharField(_("change note"), max_length=255, blank=True)
    published_at = models.DateTimeField(_("published at"), null=True, blank=True)

    class Meta:
        verbose_name = _("definition")
        verbose_name_plural = _("definitions")
        ordering = ["kind", "key", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "key", "version"], name="metadata_definition_version"),
            models.UniqueConstraint(fields=["kind", "key"], condition=Q(status="draft"),
                                    name="metadata_definition_one_draft"),
            models.UniqueConstraint(fields=["kind", "key"], condition=Q(status="published"),
                                    name="metadata_definition_one_published"),
        ]

    def __str__(self):
        return f"{self.kind}:{self.key} v{self.version} ({self.status})"

    @property
    def flow(self) -> DefinitionFlow:
        """The definition's status transitions (change the status through these, then save)."""
        return DefinitionFlow(self)


class DefinitionFlow:
    """The declared life of a definition: draft -> published -> archived (a new publish or a
    rollback archives the version it replaces; taking a design out of service archives it too).
    """

    status = fsm.State(Definition.Status, default=Definition.Status.DRAFT)

    def __init__(self, definition: Definition):
        self.definition = definition

    @status.getter()
    def _get_status(self):
        return self.definition.status

    @status.setter()
    def _set_status(self, value):
        self.definition.status = value

    @status.transition(source=Definition.Status.DRAFT, target=Definition.Status.PUBLISHED, permission=None)
    def publish(self):
        self.definition.published_at = timezone.now()

    @status.transition(source=Definition.Status.PUBLISHED, target=Definition.Status.ARCHIVED, permission=None)
    def archive(self):
        """The version leaves service; its body stays, to compare with and roll back to."""
