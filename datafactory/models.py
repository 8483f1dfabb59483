from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ModuleRun(models.Model):
    """One execution of a data-factory module: who, with what, what came back, how long (PL-4)."""

    class Status(models.TextChoices):
        OK = "ok", _("OK")
        WARNING = "warning", _("Warning")
        ERROR = "error", _("Error")

    module = models.CharField(_("module"), max_length=200, db_index=True, help_text=_("Its route, space/action."))
    plugin = models.CharField(_("plugin"), max_length=100, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+",
                             verbose_name=_("user"))
    input = models.JSONField(_("input"), default=dict)
    input_hash = models.CharField(_("input hash"), max_length=64, db_index=True)
    output = models.JSONField(_("output"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    message = models.TextField(_("message"), blank=True)
    error = models.CharField(_("error"), max_length=20, blank=True,
                             help_text=_("Why the handler gave no result: timeout, cpu, memory, forbidden, failed, crashed."))
    logs = models.JSONField(_("logs"), default=list, blank=True)
    duration_ms = models.FloatField(_("duration (ms)"))
    cached = models.BooleanField(_("from the cache"), default=False)
    created_at = models.DateTimeField(_("run at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("module run")
        verbose_name_plural = _("module runs")
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.module} #{self.pk}"
