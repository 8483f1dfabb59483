from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class Script(models.Model):
    """A builder's JavaScript function body (SC-1): it gets `params`, `record` and `user`, may call
    `records.*` and `log()`, and returns a JSON value."""

    key = models.SlugField(_("key"), max_length=100, unique=True,
                           help_text=_("Its name in URLs and workflows, e.g. /api/v1/scripts/usd_value/run/ for usd_value."))
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    code = models.TextField(_("code"), help_text=_(
        "The body of a JavaScript function of (params, record, user) that returns the result, e.g. "
        "return {total: params.amount * 2};. It may call records.list(entity, filters, limit), "
        "records.get(entity, id), records.create(entity, data), records.update(entity, id, data) and log(...)."))
    time_limit = models.FloatField(_("time limit (s)"), default=5,
                                   validators=[MinValueValidator(0.1), MaxValueValidator(60)])
    memory_limit = models.PositiveIntegerField(_("memory limit (MB)"), default=64,
                                               validators=[MinValueValidator(8), MaxValueValidator(512)])
    enabled = models.BooleanField(_("enabled"), default=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("script")
        verbose_name_plural = _("scripts")
        ordering = ["key"]

    def __str__(self):
        return self.name or self.key


class ScriptRun(models.Model):
    """One run of a script: who, from where, with what, what came back, how long."""

    class Status(models.TextChoices):
        OK = "ok", _("OK")
        ERROR = "error", _("Error")

    class Trigger(models.TextChoices):
        CONSOLE = "console", _("Test console")
        API = "api", _("API")
        WORKFLOW = "workflow", _("Workflow")

    script = models.ForeignKey(Script, on_delete=models.CASCADE, related_name="runs", verbose_name=_("script"))
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+",
                             verbose_name=_("user"))
    trigger = models.CharField(_("trigger"), max_length=20, choices=Trigger.choices)
    input = models.JSONField(_("input"), default=dict)
    output = models.JSONField(_("output"), null=True, blank=True)
    logs = models.JSONField(_("logs"), default=list, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    error = models.CharField(_("error"), max_length=20, blank=True,
                             help_text=_("timeout, memory or failed when the script gave no result."))
    message = models.TextField(_("message"), blank=True)
    duration_ms = models.FloatField(_("duration (ms)"))
    created_at = models.DateTimeField(_("run at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("script run")
        verbose_name_plural = _("script runs")
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.script_id} #{self.pk}"
