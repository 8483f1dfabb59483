"""The audit trail of a tenant (AD-1..AD-5): events, settings, alert rules and alerts.

`AuditEvent` rows are append-only. The database enforces it: the application's role may only
read and insert them (the owner role holds the table, see audit/sql/guard.sql), and the triggers
refuse an update, delete or truncate. The sealing task hashes them and chains them by blocks
(`AuditBlock`). Write events with `audit.services.record()`.
"""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AppendOnlyError(Exception):
    """Audit events cannot be changed or deleted."""


class AppendOnlyQuerySet(models.QuerySet):
    """Bulk update and delete are refused (the database refuses them too)."""

    def update(self, **kwargs):
        raise AppendOnlyError(_("Audit events are append-only."))

    def delete(self):
        raise AppendOnlyError(_("Audit events are append-only."))

    update.queryset_only = True
    delete.queryset_only = True


class AuditEventQuerySet(AppendOnlyQuerySet):
    def for_target(self, target_type: str, target_id) -> "AuditEventQuerySet":
        return self.filter(target_type=target_type, target_id=str(target_id))


class AuditEvent(models.Model):
    """One thing that happened in the tenant: who did what to which record, and how it ended.

    The database sets `seq` and `txid` on insert: `seq` numbers the tenant's events in the order
    they were written (a rolled-back one leaves a gap), `txid` is the writing transaction. The
    sealing task then puts the events of ended transactions into hash-chained `AuditBlock`s, which
    keep each event's hash (SHA-256 of the row's canonical text, `audit_event_hash`). Events
    written before blocks existed were chained one by one (`prev_hash`, the previous event's hash)
    and hashed on insert (`hash`); newer ones leave both empty.
    """

    class Result(models.TextChoices):
        OK = "ok", _("OK")
        DENIED = "denied", _("Denied")
        ERROR = "error", _("Error")

    seq = models.BigAutoField(_("sequence"), primary_key=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)
    # No database constraint and no SET NULL: users can be deleted, and their events (whose
    # hash covers actor_id) stay as they are. `actor_repr` keeps the name.
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING,
                              db_constraint=False, related_name="+", verbose_name=_("actor"))
    actor_repr = models.TextField(_("actor name"), blank=True)
    api_key_prefix = models.CharField(_("API key"), max_length=32, blank=True)
    action = models.CharField(_("action"), max_length=150, db_index=True)
    target_type = models.CharField(_("target type"), max_length=150, blank=True)
    target_id = models.TextField(_("target id"), blank=True)
    target_repr = models.TextField(_("target"), blank=True)
    before = models.JSONField(_("before"), null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(_("after"), null=True, blank=True, encoder=DjangoJSONEncoder)
    data = models.JSONField(_("data"), default=dict, blank=True, encoder=DjangoJSONEncoder)
    result = models.CharField(_("result"), max_length=10, choices=Result, default=Result.OK)
    request_id = models.CharField(_("request id"), max_length=64, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.TextField(_("user agent"), blank=True)
    # Set by the insert trigger of events written before blocks (issue 16); empty on newer ones.
    prev_hash = models.CharField(_("previous hash"), max_length=64, blank=True, db_default="")
    hash = models.CharField(_("hash"), max_length=64, blank=True, db_default="")
    txid = models.BigIntegerField(_("transaction"), db_default=0, editable=False)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-seq"]
        indexes = [models.Index(fields=["target_type", "target_id", "seq"], name="audit_event_target_idx"),
                   models.Index(fields=["txid"], name="audit_event_txid_idx")]

    def __str__(self):
        return f"#{self.seq} {self.action}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError(_("Audit events are append-only."))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(_("Audit events are append-only."))


class AuditBlock(models.Model):
    """The events of the transactions `txid_from` <= txid < `txid_to`, sealed (README, "Audit trail: blocks").

    Written only by the owner role's `lowcode_guard.seal_events` (the runtime role may read
    blocks, not write them): `count`, `first_seq`, `last_seq`, `event_hashes` (each event's
    ``seq:hash``, in seq order, hashed when sealed) and `events_hash` (SHA-256 of them joined by
    commas) describe the events, `prev_hash` is the previous block's hash and `hash` the SHA-256
    of these fields but `event_hashes` (which `events_hash` covers). Each block starts where the
    previous ended.
    """

    number = models.BigIntegerField(_("block"), primary_key=True)
    txid_from = models.BigIntegerField(_("from transaction"))
    txid_to = models.BigIntegerField(_("to transaction"))
    count = models.IntegerField(_("events"))
    first_seq = models.BigIntegerField(_("first event"))
    last_seq = models.BigIntegerField(_("last event"))
    events_hash = models.CharField(_("events hash"), max_length=64)
    prev_hash = models.CharField(_("previous hash"), max_length=64)
    created_at = models.DateTimeField(_("sealed at"))
    hash = models.CharField(_("hash"), max_length=64)
    event_hashes = ArrayField(models.TextField(), verbose_name=_("event hashes"), default=list, editable=False)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit block")
        verbose_name_plural = _("audit blocks")
        ordering = ["-number"]
        indexes = [models.Index(fields=["txid_to"], name="audit_block_txid_to_idx")]

    def __str__(self):
        return f"#{self.number} ({self.first_seq}-{self.last_seq})"


class AuditSettings(models.Model):
    """The tenant's retention policy (one row, pk 1)."""

    retention_days = models.PositiveIntegerField(
        _("retention (days)"), null=True, blank=True, validators=[MinValueValidator(1)],
        help_text=_("Events older than this are archived and removed every night. Empty: keep them forever."))
    archive_to_storage = models.BooleanField(
        _("archive to storage"), default=True,
        help_text=_("Write the removed events to the file storage (audit-archive/, gzipped JSON Lines) first."))
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("audit settings")
        verbose_name_plural = _("audit settings")

    def __str__(self):
        return str(_("Audit settings"))

    def save(self, *args, **kwargs):
        self.pk = 1
        super().save(*args, **kwargs)

    @classmethod
    def load(cls) -> "AuditSettings":
        return cls.objects.get_or_create(pk=1)[0]


class AlertRule(models.Model):
    """Raise an alert when `threshold` events matching `action_pattern` happen within the window."""

    name = models.CharField(_("name"), max_length=150)
    action_pattern = models.CharField(
        _("action pattern"), max_length=150,
        help_text=_("Shell-style pattern of actions, e.g. data.*.delete or data.expense.export."))
    threshold = models.PositiveIntegerField(_("threshold"), default=1, validators=[MinValueValidator(1)],
                                            help_text=_("Alert when this many matching events happen in the window."))
    window_minutes = models.PositiveIntegerField(_("window (minutes)"), default=10, validators=[MinValueValidator(1)])
    per_actor = models.BooleanField(_("per actor"), default=False,
                                    help_text=_("Count each actor's events separately."))
    email_recipients = models.TextField(_("email recipients"), blank=True,
                                        help_text=_("Addresses separated by commas or new lines."))
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("alert rule")
        verbose_name_plural = _("alert rules")
        ordering = ["name"]

    def __str__(self):
        return self.name


class Alert(models.Model):
    """A rule's threshold was reached; shown in the admin until someone acknowledges it."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts", verbose_name=_("rule"))
    # Events may be archived and removed by retention: no database constraint.
    event = models.ForeignKey(AuditEvent, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
                              related_name="+", verbose_name=_("event"))
    subject = models.TextField(_("actor counted"), blank=True)
    count = models.PositiveIntegerField(_("events"), default=0)
    message = models.TextField(_("message"))
    created_at = models.DateTimeField(_("raised at"), default=timezone.now, db_index=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+", verbose_name=_("acknowledged by"))
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["rule", "subject", "created_at"], name="audit_alert_rule_idx")]

    def __str__(self):
        return self.message

    @property
    def is_acknowledged(self) -> bool:
        return self.acknowledged_at is not None
