"""What viewflow lacks: delegations, decisions, in-app notifications and webhook endpoints.

Processes and tasks are viewflow's own (`viewflow.workflow.models.Process` and `Task`): the
process's `data` holds the variables, its artifact the record; a task's `owner` is its user and
`owner_permission` its queue ("role:<key>" or "department:<id>").
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from viewflow.workflow.models import Task

from metadata.models import Definition


class WorkflowDefinitionManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(kind="workflow")


class WorkflowDefinition(Definition):
    """The versions of `workflow` definitions, as the admin and the designer list them."""

    objects = WorkflowDefinitionManager()

    class Meta:
        proxy = True
        verbose_name = _("workflow")
        verbose_name_plural = _("workflows")


class Delegation(models.Model):
    """Out of office: tasks for `user` go to `delegate` from `starts` until `ends`."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
                             verbose_name=_("user"))
    delegate = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
                                 verbose_name=_("delegate"))
    starts = models.DateTimeField(_("from"))
    ends = models.DateTimeField(_("until"))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("delegation")
        verbose_name_plural = _("delegations")
        indexes = [models.Index(fields=["user", "ends"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(ends__gt=models.F("starts")), name="workflows_delegation_period"),
            models.CheckConstraint(condition=~models.Q(user=models.F("delegate")), name="workflows_delegation_other"),
        ]

    def __str__(self):
        return f"{self.user} -> {self.delegate}"


class TaskDecision(models.Model):
    """One person's decision on a user task: its outcome and comment."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="decisions", verbose_name=_("task"))
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+",
                             verbose_name=_("user"))
    outcome = models.CharField(_("outcome"), max_length=40)
    comment = models.TextField(_("comment"), blank=True)
    decided_at = models.DateTimeField(_("decided at"), db_index=True)

    class Meta:
        verbose_name = _("decision")
        verbose_name_plural = _("decisions")
        ordering = ["decided_at", "pk"]

    def __str__(self):
        return f"{self.outcome} ({self.user})"


class Notification(models.Model):
    """An in-app notification (the bell of the end-user site)."""

    class Kind(models.TextChoices):
        ASSIGNED = "assigned", _("Task assigned")
        REMINDER = "reminder", _("Reminder")
        ESCALATION = "escalation", _("Escalation")
        OUTCOME = "outcome", _("Outcome")
        MESSAGE = "message", _("Message")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
                             verbose_name=_("user"))
    kind = models.CharField(_("kind"), max_length=20, choices=Kind)
    text = models.TextField(_("text"))
    link = models.CharField(_("link"), max_length=500, blank=True)
    read = models.BooleanField(_("read"), default=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "read", "-created_at"])]

    def __str__(self):
        return self.text[:80]


class WebhookEndpoint(models.Model):
    """An outside URL that receives events (`expense.approved`) posted by webhook service tasks."""

    event = models.CharField(_("event"), max_length=100, db_index=True)
    url = models.URLField(_("URL"), max_length=500)
    secret = models.CharField(_("secret"), max_length=200, help_text=_("Signs each delivery (HMAC-SHA256)."))
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")

    def __str__(self):
        return f"{self.event} -> {self.url}"


class WebhookDelivery(models.Model):
    """One event for one endpoint: delivered after commit, retried with backoff on Celery."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries",
                                 verbose_name=_("endpoint"))
    event = models.CharField(_("event"), max_length=100)
    payload = models.JSONField(_("payload"))
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    status_code = models.PositiveIntegerField(_("status code"), null=True, blank=True)
    response = models.TextField(_("response excerpt"), blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.event} #{self.pk}"
