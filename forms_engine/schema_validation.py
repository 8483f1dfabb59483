"""JSON Schema (draft 2020-12) validation of form data, per field, with translated messages.

The browser runs the same rules (static/forms_engine/schema.js over the vendored
@cfworker/json-schema) and gets the same list of errors: both sides use the formats below
(identical regular expressions), the same keyword set (check_schema refuses the rest) and the
message templates of messages(), which the page receives in the form's config.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from fractions import Fraction

from django.utils.translation import gettext as _
from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import SchemaError, ValidationError

# Keywords both validators check the same way; anything else is refused at publish.
ASSERTION_KEYWORDS = frozenset({
    "type", "enum", "const", "required", "dependentRequired", "properties", "items",
    "minLength", "maxLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "multipleOf", "minItems", "maxItems", "uniqueItems",
    "if", "then", "else", "allOf", "anyOf", "oneOf", "not",
})
ANNOTATION_KEYWORDS = frozenset({
    "$schema", "$comment", "title", "description", "default", "examples", "readOnly", "writeOnly", "deprecated",
})
SUBSCHEMA_KEYWORDS = frozenset({"items", "if", "then", "else", "not"})
SUBSCHEMA_LIST_KEYWORDS = frozenset({"allOf", "anyOf", "oneOf"})

# Formats: the same expressions as FORMATS in static/forms_engine/schema.js (ASCII digits only).
DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
DATE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$")
DATE_TIME = re.compile(r"^([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)?"
                       r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))$")
# RFC 3986 URI (absolute, with a scheme); "//" starts an authority, never a path.
_PCHAR = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})"
URI = re.compile(
    r"^[A-Za-z][A-Za-z0-9+.\-]*:"
    r"(?://(?:(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})*@)?"
    r"(?:\[[0-9A-Fa-f:.]+\]|\[[Vv][0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+\]"
    r"|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)(?::[0-9]*)?(?:/" + _PCHAR + r"*)*"
    r"|(?!//)(?:/?" + _PCHAR + r"+(?:/" + _PCHAR + r"*)*)?)"
    r"(?:\?(?:" + _PCHAR + r"|[/?])*)?(?:#(?:" + _PCHAR + r"|[/?])*)?$")
UUID = re.compile(r"^[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}$")
# E-mail, pragmatic: a dot-atom local part (any non-ASCII letter allowed, as in RFC 6531) or a
# quoted one; a host name (labels of letters, digits, hyphens; non-ASCII allowed) or an address literal.
EMAIL_LOCAL = re.compile(r"""^(?:"(?:[^"\\\x00-\x1f]|\\[\x20-\x7e])*"|[^\x00-\x20()<>\[\]:;@\\,."]+(?:\.[^\x00-\x20()<>\[\]:;@\\,."]+)*)$""")
EMAIL_HOST = re.compile(r"^(?:[A-Za-z0-9]|[^\x00-\x7f])(?:[A-Za-z0-9\-]|[^\x00-\x7f])*"
                        r"(?:\.(?:[A-Za-z0-9]|[^\x00-\x7f])(?:[A-Za-z0-9\-]|[^\x00-\x7f])*)*$")
IPV4 = re.compile(r"^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$")
IPV6_LITERAL = re.compile(r"^IPv6:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$", re.IGNORECASE)


def is_date(value: str) -> bool:
    match = DATE.fullmatch(value)
    if not match:
        return False
    year, month, day = map(int, match.groups())
    return 1 <= month <= 12 and 1 <= day <= _days_in_month(year, month)


def _days_in_month(year: int, month: int) -> int:
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return 29 if month == 2 and leap else DAYS_IN_MONTH[month - 1]


def is_date_time(value: str) -> bool:
    match = DATE_TIME.fullmatch(value)
    if not match or not is_date(match[1]):
        return False
    hour, minute, second = int(match[2]), int(match[3]), int(match[4])
    offset_hour, offset_minute = int(match[6] or 0), int(match[7] or 0)
    if hour > 23 or minute > 59 or second > 60 or offset_hour > 23 or offset_minute > 59:
        return False
    if second < 60:
        return True
    # A leap second is 23:59:60 in UTC.
    sign = {"+": 1, "-": -1}.get(match[5], 0)
    return (hour * 60 + minute - sign * (offset_hour * 60 + offset_minute)) % 1440 == 23 * 60 + 59


def is_email(value: str) -> bool:
    local, at, host = value.rpartition("@")
    if not at or not EMAIL_LOCAL.fullmatch(local):
        return False
    if host.startswith("[") and host.endswith("]"):
        literal = host[1:-1]
        return bool(IPV4.fullmatch(literal) or IPV6_LITERAL.fullmatch(literal))
    return bool(EMAIL_HOST.fullmatch(host)) and all(not label.endswith("-") for label in host.split("."))


FORMATS = {
    "date": is_date,
    "date-time": is_date_time,
    "email": is_email,
    "uri": lambda value: bool(URI.fullmatch(value)),
    "uuid": lambda value: bool(UUID.fullmatch(value)),
}


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())
    for name, check in FORMATS.items():
        # Formats apply to strings only; other types pass.
        checker.checks(name)(lambda value, check=check: not isinstance(value, str) or check(value))
    return checker


def _pattern(validator, pattern, instance, schema):
    # ECMAScript (flag "u") classes: \d, \w and \b are ASCII, as re.ASCII makes them.
    if validator.is_type(instance, "string") and not re.search(pattern, instance, re.ASCII):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _required(validator, required, instance, schema):
    # The error goes on the missing property's path, so it lands on that field.
    if validator.is_type(instance, "object"):
        for name in required:
            if name not in instance:
                yield ValidationError(f"{name!r} is a required property", path=[name])


def _dependent_required(validator, dependent_required, instance, schema):
    if validator.is_type(instance, "object"):
        for name, dependencies in dependent_required.items():
            if name in instance:
                for each in dependencies:
                    if each not in instance:
                        yield ValidationError(f"{each!r} is a dependency of {name!r}", path=[each])


def _multiple_of(validator, divisor, instance, schema):
    # Exact decimal arithmetic on the shortest form of each number, as the browser does: 0.3 is 3 x 0.1.
    if validator.is_type(instance, "number") and Fraction(repr(instance)) % Fraction(repr(divisor)) != 0:
        yield ValidationError(f"{instance!r} is not a multiple of {divisor}")


FormValidator = validators.extend(Draft202012Validator, {
    "pattern": _pattern, "required": _required, "dependentRequired": _dependent_required,
    "multipleOf": _multiple_of})
FORMAT_CHECKER = _format_checker()


@dataclass(frozen=True)
class FieldError:
    field: str  # top-level property key; "" for the whole form
    code: str  # the keyword that failed
    message: str

    def as_dict(self) -> dict:
        return asdict(self)


def messages() -> dict[str, str]:
    """Message templates by keyword (or "keyword:limit" for a particular limit), in the active language.

    `%(limit_value)s` stands for the keyword's value; where Django says the same, its message (and
    translation) is reused.
    """
    return {
        "required": _("This field is required."),
        "dependentRequired": _("This field is required."),
        "type": _("Enter a valid value."),
        "type:string": _("Enter text."),
        "type:number": _("Enter a number."),
        "type:integer": _("Enter a whole number."),
        "type:boolean": _("Choose yes or no."),
        "type:array": _("Enter a list of values."),
        "type:object": _("Enter a group of values."),
        "enum": _("Select a valid choice. That choice is not one of the available choices."),
        "const": _("Enter the expected value."),
        "minLength": _("Enter at least %(limit_value)s characters."),
        "minLength:1": _("Enter at least one character."),
        "maxLength": _("Enter at most %(limit_value)s characters."),
        "pattern": _("Enter a value in the expected format."),
        "format": _("Enter a valid value."),
        "format:date": _("Enter a valid date."),
        "format:date-time": _("Enter a valid date/time."),
        "format:email": _("Enter a valid email address."),
        "format:uri": _("Enter a valid URL."),
        "format:uuid": _("Enter a valid UUID."),
        "minimum": _("Ensure this value is greater than or equal to %(limit_value)s."),
        "maximum": _("Ensure this value is less than or equal to %(limit_value)s."),
        "exclusiveMinimum": _("Ensure this value is greater than %(limit_value)s."),
        "exclusiveMaximum": _("Ensure this value is less than %(limit_value)s."),
        "multipleOf": _("Ensure this value is a multiple of step size %(limit_value)s."),
        "minItems": _("Choose at least %(limit_value)s items."),
        "minItems:1": _("Choose at least one item."),
        "maxItems": _("Choose at most %(limit_value)s items."),
        "maxItems:1": _("Choose at most one item."),
        "uniqueItems": _("Remove the repeated items."),
        "anyOf": _("Enter a value that matches one of the allowed forms."),
        "oneOf": _("Enter a value that matches exactly one of the allowed forms."),
        "not": _("This value is not allowed."),
    }


def _limit_text(limit) -> str:
    # As JavaScript's String(number) writes it: 2.0 -> "2".
    if isinstance(limit, float) and limit.is_integer() and abs(limit) < 1e21:
        return str(int(limit))
    return str(limit)


def message(templates: dict[str, str], code: str, limit) -> str:
    """The template for "code:limit" (a string or number limit), else for the code, filled with the limit."""
    specific = isinstance(limit, str | int | float) and not isinstance(limit, bool) and f"{code}:{_limit_text(limit)}"
    template = templates.get(specific) or templates.get(code) or templates["not"]
    return template.replace("%(limit_value)s", _limit_text(limit))


def _sort_key(error: FieldError, order: dict[str, int]):
    return (order.get(error.field, len(order)), error.field, error.code, error.message)


def validate(schema: dict | bool, data) -> list[FieldError]:
    """The errors of `data` under `schema`, one per failed keyword, on the top-level field they concern.

    The order (fields as in schema.properties, then by code and message) makes the list comparable
    with the browser's; a message repeated on a field (missing: both `required` and
    `dependentRequired`) is given once.
    """
    templates = messages()
    errors = set()
    for error in FormValidator(schema, format_checker=FORMAT_CHECKER).iter_errors(data):
        # A `false` subschema fails with no keyword: it means "not anything", as the browser says.
        code = error.validator or "not"
        field = str(error.path[0]) if isinstance(data, dict) and error.path else ""
        errors.add(FieldError(field, code, message(templates, code, error.validator_value)))
    properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
    order = {"": -1, **{key: index for index, key in enumerate(properties)}}
    unique = {}
    for error in sorted(errors, key=lambda error: _sort_key(error, order)):
        unique.setdefault((error.field, error.message), error)
    return list(unique.values())


def check_schema(schema) -> list[dict]:
    """Why `schema` cannot be a form's data schema: [{"path", "code", "message"}], path relative to it.

    It must be a valid draft 2020-12 schema that uses only the keywords and formats both the
    server and the browser check (no $ref, no unknown format), with patterns both can run.
    """
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        return [{"path": "/".join(map(str, error.absolute_path)), "code": "invalid_schema",
                 "message": _("Not a valid JSON Schema: %(reason)s") % {"reason": error.message}}]
    return list(_unsupported(schema, []))


# Escapes that mean the same in Python and in an ECMAScript "u" pattern (the browser rejects
# other escapes such as \_ in that mode; Python reads \A, \Z, \g... its own way).
PORTABLE_ESCAPES = frozenset("dDwWsSbBfnrtv0123456789xu^$\\.*+?()[]{}|/")
# Groups both read alike: (?: (?= (?! (?<= (?<!; not (?P<name>, (?#...), inline flags.
PORTABLE_GROUP = re.compile(r"\?(?::|=|!|<=|<!)")


def _unsupported(schema, path: list[str]):
    if isinstance(schema, bool):
        return
    where = "/".join(path)
    for keyword, value in schema.items():
        here = f"{where}/{keyword}".lstrip("/")
        if keyword not in ASSERTION_KEYWORDS | ANNOTATION_KEYWORDS:
            yield {"path": here, "code": "unsupported_keyword",
                   "message": _("The keyword %(keyword)s is not supported in forms.") % {"keyword": keyword}}
        elif keyword == "format" and value not in FORMATS:
            yield {"path": here, "code": "unsupported_format",
                   "message": _("The format %(format)s is not supported in forms; use one of: %(formats)s.")
                   % {"format": value, "formats": ", ".join(FORMATS)}}
        elif keyword == "pattern" and not _portable_pattern(value):
            yield {"path": here, "code": "unsupported_pattern",
                   "message": _("This pattern cannot be checked the same way in the browser.")}
        elif keyword == "properties":
            for name, subschema in value.items():
                yield from _unsupported(subschema, [*path, keyword, name])
        elif keyword in SUBSCHEMA_KEYWORDS:
            yield from _unsupported(value, [*path, keyword])
        elif keyword in SUBSCHEMA_LIST_KEYWORDS:
            for index, subschema in enumerate(value):
                yield from _unsupported(subschema, [*path, keyword, str(index)])


def _portable_pattern(pattern: str) -> bool:
    try:
        re.compile(pattern, re.ASCII)
    except re.error:
        return False
    index, in_class = 0, False
    while index < len(pattern):
        character = pattern[index]
        if character == "\\":
            escaped = pattern[index + 1]
            if escaped not in PORTABLE_ESCAPES and not (in_class and escaped == "-"):
                return False
            index += 2
            continue
        if character == "(" and not in_class and pattern.startswith("?", index + 1) \
                and not PORTABLE_GROUP.match(pattern, index + 1):
            return False
        in_class = (in_class or character == "[") and character != "]"
        index += 1
    return True
