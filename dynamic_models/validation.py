"""The validation engine of records (DM-6): one path for admin, API and imports.

Field rules (required, type, length, range, pattern, choices) come from the runtime model's
fields, cross-field rules from the entity body's `rules`; `clean_record()` runs both through
Django's model validation, which admin's model forms call too. Uniqueness is checked before
saving for a friendly message and enforced by the database's unique constraints: `save_record()`
turns a violation that slipped through a race into the same field error.
"""

from __future__ import annotations

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, models
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from lowcode.expressions import ExpressionError, compile_expression
from lowcode.tenancy import quotas


def rule_errors(record: models.Model) -> dict[str, list[ValidationError]]:
    """Check the entity's cross-field rules; a record must make each rule's expression true.

    Comparisons with null are false in the expression language, so a rule over optional fields
    says what an empty value means: `is_null(end_date) or end_date >= start_date`.
    """
    rules = record.lowcode_entity.get("rules")
    if not rules:
        return {}
    values = {f.name: getattr(record, f.attname) for f in record._meta.concrete_fields}
    errors: dict[str, list[ValidationError]] = {}
    for rule in rules:
        try:
            holds = compile_expression(rule["expression"]).is_true({"record": values})
        except ExpressionError as error:
            holds, message = False, _("The rule %(key)s cannot be checked: %(error)s") % {
                "key": rule["key"], "error": error}
        else:
            message = rule.get("translations", {}).get(get_language() or "", rule["message"])
        if not holds:
            errors.setdefault(rule.get("field") or NON_FIELD_ERRORS, []).append(
                ValidationError(message, code=rule["key"]))
    return errors


def clean_record(record: models.Model, *, exclude: set[str] | frozenset[str] = frozenset()) -> None:
    """Validate a record before saving: field rules, uniqueness and cross-field rules.

    :param exclude: fields already validated by the caller (for example relations the API
        looked up), or not editable by it.
    :raises ValidationError: with every problem, per field.
    """
    record.full_clean(exclude=exclude, validate_constraints=False)


def save_record(record: models.Model, *, user=None) -> models.Model:
    """Save a validated record as `user`; a unique violation from a race becomes a field error.

    Call it inside `transaction.atomic()`: after a refused save the block must roll back.

    :raises lowcode.tenancy.quotas.QuotaExceeded: a new record would pass the tenant's records quota.
    """
    if user is not None and user.is_authenticated:
        if record._state.adding:
            record.created_by = user
        record.updated_by = user
    if record._state.adding:
        quotas.check("records")
    try:
        record.save()
    except IntegrityError as error:
        raise integrity_error(record, error) from error
    return record


def integrity_error(record: models.Model, error: IntegrityError) -> ValidationError:
    """The field error a database constraint violation stands for."""
    diag = getattr(error.__cause__, "diag", None)
    constraint = getattr(diag, "constraint_name", None) or ""
    column = getattr(diag, "column_name", None)  # Set by NOT NULL violations, which name no constraint.
    table = record._meta.db_table
    if column:
        field = next((f for f in record._meta.concrete_fields if f.column == column), None)
        if field is not None:
            return ValidationError({field.name: ValidationError(
                _("This field is required."), code="required")})
    matching = [f for f in record._meta.concrete_fields if constraint.startswith(f"{table}_{f.column}_")]
    field = max(matching, key=lambda f: len(f.column), default=None)
    if field is not None and field.unique:
        return ValidationError({field.name: ValidationError(
            _("%(model)s with this %(field)s already exists.") % {
                "model": record._meta.verbose_name, "field": field.verbose_name}, code="unique")})
    if field is not None:
        return ValidationError({field.name: ValidationError(_("This value is not accepted by the database."),
                                                            code="invalid")})
    if constraint:
        return ValidationError(_("The record conflicts with another one (%(constraint)s).")
                               % {"constraint": constraint}, code="integrity")
    return ValidationError(_("The database refused the record: %(reason)s")
                           % {"reason": getattr(diag, "message_primary", None) or error}, code="integrity")
