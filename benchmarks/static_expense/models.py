"""Static twins of the scenario's `project` and `expense` entities (tests/dynamic_models/conftest.py).

Written by hand to match, column for column, what `dynamic_models.runtime.build_model` makes of
the published bodies: the same system columns and soft-delete manager (`DynamicRecord`,
`ActiveRecordManager`), the same column types, nullability (text fields that are not required
are nullable there too), uniqueness, choices, defaults and validators, and the same auto number
(`EXP-0001`: the same database default as `AutoNumberType`'s, drawing from a PostgreSQL sequence
that the migration creates).
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Cast, Concat, LPad

from dynamic_models.field_types import GreaterThanValidator, NotInFutureValidator

#: The sequence of `Expense.number`, created by migration 0001 in each tenant schema.
NUMBER_SEQUENCE = "static_expense_expense_number_seq"
CODE_PATTERN = r"^[A-Z]{3}-\d{3}$"


class ActiveManager(models.Manager):
    """Records not soft-deleted."""

    def get_queryset(self):
        return super().get_queryset().filter(deleted_at__isnull=True)


class Record(models.Model):
    """The system columns every entity table has."""

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, editable=False,
                                   on_delete=models.SET_NULL, related_name="+")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, editable=False,
                                   on_delete=models.SET_NULL, related_name="+")
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False, db_index=True)

    objects = ActiveManager()
    all_objects = models.Manager()  # noqa: DJ012 - `objects` first: the default manager

    class Meta:
        abstract = True
        ordering = ["-id"]


class Project(Record):
    name = models.CharField("name", max_length=100, unique=True)
    code = models.CharField(  # noqa: DJ001 - nullable like the dynamic column
        "code", max_length=7, null=True, blank=True,
        validators=[RegexValidator(CODE_PATTERN, f"Does not match the pattern {CODE_PATTERN}.", code="regex")])
    budget = models.DecimalField("budget", max_digits=12, decimal_places=2, null=True, blank=True)
    active = models.BooleanField("active", default=True)

    class Meta(Record.Meta):
        verbose_name = "Project"
        verbose_name_plural = "Projects"

    def __str__(self):
        return str(self.name)


class Expense(Record):
    CURRENCIES = [("CNY", "CNY"), ("USD", "USD"), ("EUR", "EUR")]
    CATEGORIES = [("travel", "travel"), ("meals", "meals"), ("equipment", "equipment"), ("other", "other")]
    STATUSES = [("draft", "draft"), ("submitted", "submitted"), ("approved", "approved"), ("rejected", "rejected")]

    number = models.CharField(
        "number", max_length=40, unique=True, editable=False,
        # EXP- and at least 4 digits: padded to 20 digits, then the zeros beyond 4 stripped (lpad() truncates).
        db_default=Concat(models.Value("EXP-"), models.Func(
            LPad(Cast(models.Func(models.Value(NUMBER_SEQUENCE), function="nextval"), models.CharField()),
                 20, models.Value("0")),
            models.Value("^0{0,16}"), models.Value(""), function="regexp_replace", output_field=models.CharField())))
    title = models.CharField("title", max_length=120)
    amount = models.DecimalField("amount", max_digits=12, decimal_places=2,
                                 validators=[GreaterThanValidator(Decimal("0"))])
    currency = models.CharField("currency", max_length=64, choices=CURRENCIES, default="CNY")
    spent_on = models.DateField("spent on", validators=[NotInFutureValidator()])
    category = models.CharField("category", max_length=64, choices=CATEGORIES, null=True, blank=True)  # noqa: DJ001
    project = models.ForeignKey(Project, on_delete=models.PROTECT, null=True, blank=True,
                                related_name="expense_project_set", verbose_name="project")
    iban = models.CharField("iban", max_length=34, null=True, blank=True)  # noqa: DJ001
    notes = models.TextField("notes", null=True, blank=True)  # noqa: DJ001
    status = models.CharField("status", max_length=64, choices=STATUSES, default="draft")
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+", verbose_name="submitted by")

    class Meta(Record.Meta):
        verbose_name = "Expense"
        verbose_name_plural = "Expenses"

    def __str__(self):
        return str(self.title)
