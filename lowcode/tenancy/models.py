import re

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.dispatch import Signal
from django.utils.translation import gettext_lazy as _
from django_tenants.models import DomainMixin, TenantMixin

from lowcode.models import TimestampedModel

_UPLOAD_TYPE = re.compile(r"[a-z][a-z0-9.+-]*/(\*|[a-z0-9][a-z0-9.+-]*)|\.[a-z0-9]+")


def validate_upload_types(value) -> None:
    """A list of MIME types ("image/*", "application/pdf") or extensions (".pdf")."""
    if not isinstance(value, list) or not all(isinstance(item, str) and _UPLOAD_TYPE.fullmatch(item.lower())
                                              for item in value):
        raise ValidationError(_('Give a list of MIME types ("image/*", "application/pdf") or extensions (".pdf").'),
                              code="invalid_upload_types")


#: Sent with the model after a bulk update changed tenant or domain rows (post_save's counterpart).
rows_updated = Signal()


class TenantRowsQuerySet(models.QuerySet):
    """Bulk updates of tenant and domain rows send `rows_updated`: the processes' cached copies
    (tenancy.domains) are dropped as on a save; a publish writes its definition token so."""

    def update(self, **kwargs):
        rows = super().update(**kwargs)
        if rows:
            rows_updated.send(sender=self.model)
        return rows


class Tenant(TenantMixin, TimestampedModel):
    """A customer company: one PostgreSQL schema holding its users and data."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")

    class Plan(models.TextChoices):
        FREE = "free", _("Free")
        TEAM = "team", _("Team")
        ENTERPRISE = "enterprise", _("Enterprise")

    name = models.CharField(_("name"), max_length=100)
    status = models.CharField(_("status"), max_length=20, choices=Status, default=Status.ACTIVE)
    plan = models.CharField(_("plan"), max_length=20, choices=Plan, default=Plan.FREE)
    max_users = models.PositiveIntegerField(_("max users"), null=True, blank=True,
                                            help_text=_("Empty means unlimited."))
    max_records = models.PositiveBigIntegerField(_("max records"), null=True, blank=True,
                                                 help_text=_("Empty means unlimited."))
    max_storage_bytes = models.PositiveBigIntegerField(_("max storage (bytes)"), null=True, blank=True,
                                                       help_text=_("Empty means unlimited."))
    max_upload_bytes = models.PositiveBigIntegerField(_("max upload size (bytes)"), null=True, blank=True,
                                                      help_text=_("Per file. Empty means the platform's limit."))
    allowed_upload_types = models.JSONField(
        _("allowed upload types"), default=list, blank=True, validators=[validate_upload_types],
        help_text=_('MIME types ("image/*", "application/pdf") or extensions (".pdf"); empty means the '
                    "platform's list."))
    max_api_calls_per_day = models.PositiveIntegerField(_("max API calls per day"), null=True, blank=True,
                                                        help_text=_("Empty means unlimited."))
    phone_region = models.CharField(
        _("phone region"), max_length=2, blank=True, default="", validators=[RegexValidator(r"^[A-Z]{2}$")],
        help_text=_("Country (ISO 3166 code, such as US) of phone numbers entered without a country code."))
    # {definition kind: token}, a new token on every publish of that kind (metadata.services).
    # django-tenants loads this row on each request, so comparing a kind's token with the one a
    # cached runtime (the entity snapshot) was built from tells freshness without a query.
    definition_versions = models.JSONField(_("definition versions"), default=dict, blank=True, editable=False)

    auto_create_schema = True

    objects = TenantRowsQuerySet.as_manager()

    class Meta:
        verbose_name = _("tenant")
        verbose_name_plural = _("tenants")
        ordering = ["schema_name"]

    def __str__(self):
        return f"{self.name} ({self.schema_name})"

    def _drop_schema(self, force_drop=False):
        """Drop the schema as django-tenants does, but through the owner's guard: the schema holds
        the audit trail, which the runtime role cannot drop itself (audit/sql/guard.sql)."""
        from django.db import connection
        from django_tenants.utils import get_public_schema_name, schema_exists

        if connection.schema_name not in (self.schema_name, get_public_schema_name()):
            raise RuntimeError(f"Can't delete tenant {self.schema_name} from schema {connection.schema_name}.")
        if (force_drop or self.auto_drop_schema) and schema_exists(self.schema_name):
            self.pre_drop()
            with connection.cursor() as cursor:
                cursor.execute("SELECT lowcode_guard.drop_tenant_schema(%s)", [self.schema_name])

    @property
    def is_public(self) -> bool:
        from django_tenants.utils import get_public_schema_name

        return self.schema_name == get_public_schema_name()

    @property
    def is_suspended(self) -> bool:
        return self.status == self.Status.SUSPENDED


class Domain(DomainMixin):
    """A host name routed to a tenant, for example `acme.localhost`."""

    objects = TenantRowsQuerySet.as_manager()

    class Meta:
        verbose_name = _("domain")
        verbose_name_plural = _("domains")
        ordering = ["domain"]
