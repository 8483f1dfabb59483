"""Validators of real-world contact data: phone numbers and international email addresses (DM-1).

Phone numbers are parsed by `phonenumbers` (libphonenumber's data): a number written without a
country code ("(918) 458-4364") is read in the field's `region` option, else the tenant's
`phone_region`. What is stored is the number in E.164 ("+19184584364"): one spelling per
number, so that equality filters, uniqueness and exports agree whatever way it was typed; the
API returns it so, and displays format it. A number is accepted when its length is possible for
its country (not only when its block is allocated today: real data holds new and test numbers).

Email addresses are checked by `email-validator`: Unicode local parts ("clara.lefèvre") and
internationalised domains are accepted; the address is stored as entered, with its domain
normalised (lower case, IDNA).
"""

from __future__ import annotations

import email_validator
import phonenumbers
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils.deconstruct import deconstructible
from django.utils.translation import gettext_lazy as _


def default_phone_region() -> str | None:
    """The tenant's region of numbers written without a country code (None: they need one)."""
    return getattr(getattr(connection, "tenant", None), "phone_region", "") or None


def parse_phone(value: str, region: str | None = None) -> phonenumbers.PhoneNumber:
    """The phone number written in `value`; ValidationError (code `phone`) if it is none."""
    region = region or default_phone_region()
    message = _("Enter a valid phone number, such as +1 918 458 4364.") if region is None else _(
        "Enter a valid phone number of %(region)s, or one starting with + and its country code.")
    try:
        number = phonenumbers.parse(str(value), region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        raise ValidationError(message, code="phone", params={"region": region})
    return number


def normalize_phone(value: str, region: str | None = None) -> str:
    """`value` in E.164 (+19184584364), the form phone fields store."""
    return phonenumbers.format_number(parse_phone(value, region), phonenumbers.PhoneNumberFormat.E164)


def format_phone(value: str) -> str:
    """A stored number as people write it: nationally in the tenant's region, else internationally."""
    try:
        number = phonenumbers.parse(value, default_phone_region())
    except phonenumbers.NumberParseException:
        return value
    region = default_phone_region()
    national = region and phonenumbers.region_code_for_number(number) == region
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL if national
                                      else phonenumbers.PhoneNumberFormat.INTERNATIONAL)


@deconstructible
class PhoneValidator:
    """Accepts what `parse_phone` can read, in `region` (None: the tenant's)."""

    def __init__(self, region: str | None = None):
        self.region = region

    def __call__(self, value):
        if value not in (None, ""):
            parse_phone(value, self.region)

    def __eq__(self, other):
        return isinstance(other, PhoneValidator) and other.region == self.region


def normalize_email(value: str) -> str:
    """`value` with its domain normalised; ValidationError (code `invalid`) if it is no address."""
    try:
        checked = email_validator.validate_email(str(value), check_deliverability=False)
    except email_validator.EmailNotValidError:
        raise ValidationError(_("Enter a valid email address."), code="invalid") from None
    return checked.normalized


def validate_email(value) -> None:
    if value not in (None, ""):
        normalize_email(value)
