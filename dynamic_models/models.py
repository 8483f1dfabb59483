from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from viewflow import fsm

from dynamic_models.registries import field_type_registry
from lowcode.models import TimestampedModel


def new_field_id() -> str:
    return uuid.uuid4().hex[:12]


def field_type_choices() -> list[tuple[str, str]]:
    return [(t.type, t.verbose_name) for t in field_type_registry.get_all()]


class Entity(TimestampedModel):
    """The design (draft) of an entity, edited in admin; publishing makes it a table (DM-1)."""

    key = models.CharField(_("key"), max_length=40, unique=True,
                           help_text=_("Lowercase identifier; the table is named dm_ followed by the key."))
    label = models.CharField(_("label"), max_length=200, blank=True)
    label_plural = models.CharField(_("plural label"), max_length=200, blank=True)
    description = models.TextField(_("description"), blank=True)
    app = models.CharField(_("app"), max_length=63, blank=True, help_text=_("Groups entities in bundles."))
    display_field = models.CharField(_("display field"), max_length=50, blank=True)
    ordering = models.CharField(_("ordering"), max_length=200, blank=True,
                                help_text=_("Comma-separated field keys; prefix with - for descending."))
    translations = models.JSONField(
        _("translations"), default=dict, blank=True,
        help_text=_('Labels in other languages, e.g. {"zh-hans": {"label": "费用", "label_plural": "费用", '
                    '"fields": {"title": "标题"}}}.'))
    sensitive = models.BooleanField(
        _("sensitive"), default=False, help_text=_("Reads of its records through API keys are audited."))
    single = models.BooleanField(
        _("settings (one record)"), default=False,
        help_text=_("Holds exactly one record, such as a company's settings: lists open it, and there is no second."))
    child_of = models.JSONField(
        _("child of"), default=dict, blank=True,
        help_text=_('Ordered child rows edited inline in their parent, e.g. {"relation": "claim", '
                    '"order_field": "position"}: a many-to-one relation to the parent and an integer field '
                    'holding the order.'))
    rules = models.JSONField(
        _("rules"), default=list, blank=True,
        help_text=_('Cross-field rules checked on every save, e.g. [{"key": "dates", "expression": '
                    '"end_date >= start_date", "message": "The end cannot be before the start.", "field": "end_date"}].'))
    published_version = models.PositiveIntegerField(_("published version"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("entity")
        verbose_name_plural = _("entities")
        ordering = ["key"]

    def __str__(self):
        return self.label or self.key


class Field(models.Model):
    """A field of an entity design. `uid` stays when the key changes, so renames keep data."""

    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="fields", verbose_name=_("entity"))
    uid = models.CharField(_("id"), max_length=32, default=new_field_id, editable=False)
    key = models.CharField(_("key"), max_length=50)
    label = models.CharField(_("label"), max_length=200, blank=True)
    type = models.CharField(_("type"), max_length=40, choices=field_type_choices)
    position = models.PositiveIntegerField(_("position"), default=0)
    required = models.BooleanField(_("required"), default=False)
    unique = models.BooleanField(_("unique"), default=False)
    index = models.BooleanField(_("index"), default=False)
    default = models.JSONField(_("default"), null=True, blank=True)
    help_text = models.CharField(_("help text"), max_length=500, blank=True)
    read_only = models.BooleanField(_("read-only"), default=False)
    encrypted = models.BooleanField(_("encrypted at rest"), default=False,
                                    help_text=_("Stored encrypted; found by exact value only."))
    show_in_list = models.BooleanField(_("show in list"), default=True)
    filterable = models.BooleanField(_("filterable"), default=False)
    searchable = models.BooleanField(_("searchable"), default=False)
    options = models.JSONField(_("options"), default=dict, blank=True,
                               help_text=_('Type options, e.g. {"max_length": 120} or {"choices": [{"value": "a"}]}.'))

    class Meta:
        verbose_name = _("field")
        verbose_name_plural = _("fields")
        ordering = ["entity", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["entity", "key"], name="dynamic_models_field_key"),
            models.UniqueConstraint(fields=["entity", "uid"], name="dynamic_models_field_uid"),
        ]

    def __str__(self):
        return f"{self.entity.key}.{self.key}"


class SchemaMigration(models.Model):
    """One applied change of an entity's table, with its SQL both ways (DM-3)."""

    class Status(models.TextChoices):
        PREPARING = "preparing", _("Preparing")  # Online phases run before the publish (schema_online).
        APPLIED = "applied", _("Applied")
        FAILED = "failed", _("Failed")  # What it had prepared was rolled back; nothing was published.
        ROLLED_BACK = "rolled_back", _("Rolled back")
        PURGED = "purged", _("Purged")

    entity_key = models.CharField(_("entity"), max_length=40, db_index=True)
    from_version = models.PositiveIntegerField(_("from version"), null=True, blank=True)
    to_version = models.PositiveIntegerField(_("to version"))
    operations = models.JSONField(_("operations"), default=list)
    forward_sql = models.TextField(_("forward SQL"), blank=True)
    backward_sql = models.TextField(_("backward SQL"), blank=True)
    status = models.CharField(_("status"), max_length=20, choices=Status, default=Status.APPLIED)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+", verbose_name=_("author"))
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    rows_affected = models.PositiveBigIntegerField(_("rows affected"), default=0)
    phases = models.JSONField(_("phases"), default=list, blank=True, help_text=_(
        "The online steps of the change (indexes built concurrently, columns copied in batches) and how each went."))
    body_checksum = models.CharField(_("design checksum"), max_length=64, blank=True, editable=False,
                                     help_text=_("The design being published: a publish of the same one resumes."))
    created_at = models.DateTimeField(_("applied at"), auto_now_add=True)

    class Meta:
        verbose_name = _("schema migration")
        verbose_name_plural = _("schema migrations")
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.entity_key} v{self.from_version or 0} → v{self.to_version}"


class ImportJob(models.Model):
    """An import of records too big for one request, run by a Celery worker (DM-5).

    The upload is kept in `payload` until the job finishes. While the job runs, its progress
    lives in the cache (the job's transaction hides the row's updates from other sessions).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        XLSX = "xlsx", "XLSX"
        JSON = "json", "JSON"

    entity_key = models.CharField(_("entity"), max_length=40, db_index=True)
    status = models.CharField(_("status"), max_length=20, choices=Status, default=Status.QUEUED)
    dry_run = models.BooleanField(_("dry run"), default=False)
    file_format = models.CharField(_("file format"), max_length=10, choices=Format)
    payload = models.BinaryField(_("payload"), default=b"", editable=False)
    language = models.CharField(_("language"), max_length=20, blank=True,
                                help_text=_("Error messages are written in this language."))
    total = models.PositiveIntegerField(_("rows"), default=0)
    processed = models.PositiveIntegerField(_("processed"), default=0)
    valid = models.PositiveIntegerField(_("valid"), default=0)
    created = models.PositiveIntegerField(_("created"), default=0)
    errors = models.JSONField(_("errors"), default=list, blank=True)
    message = models.TextField(_("message"), blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+", verbose_name=_("user"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("import job")
        verbose_name_plural = _("import jobs")
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.entity_key} #{self.pk}"

    @property
    def flow(self) -> ImportJobFlow:
        """The job's status transitions (change the status through these, then save)."""
        return ImportJobFlow(self)

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)

    @property
    def progress(self) -> int:
        """Percentage of rows processed (100 once the job has succeeded)."""
        if self.status == self.Status.SUCCEEDED:
            return 100
        return min(100, self.processed * 100 // self.total) if self.total else 0


class ImportJobFlow:
    """The declared life of an import job: queued -> running -> succeeded or failed.

    A job whose worker died stays running and is run again; it never goes back to queued.
    """

    status = fsm.State(ImportJob.Status, default=ImportJob.Status.QUEUED)

    def __init__(self, job: ImportJob):
        self.job = job

    @status.getter()
    def _get_status(self):
        return self.job.status

    @status.setter()
    def _set_status(self, value):
        self.job.status = value

    @status.transition(source=ImportJob.Status.QUEUED, target=ImportJob.Status.RUNNING, permission=None)
    def start(self):
        self.job.started_at = timezone.now()

    @status.transition(source=ImportJob.Status.RUNNING, target=ImportJob.Status.SUCCEEDED, permission=None)
    def succeed(self):
        """All rows were imported, or a dry run found what it found."""

    @status.transition(source=ImportJob.Status.RUNNING, target=ImportJob.Status.FAILED, permission=None)
    def fail(self):
        """Nothing was imported: rows with errors, or the job stopped on an error."""
