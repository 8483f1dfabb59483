"""Functions callable from expressions, and the value rules they share with the evaluator.

Each function is an `ExpressionFunction` registered in `function_registry` under its name.
It has a Python implementation (`evaluate`) and, when the database can compute it, an ORM
implementation (`to_orm`), so the same function works in Python and in a queryset. Plugins
add functions by registering more instances from their `AppConfig.ready()`::

    class FxFunction(ExpressionFunction):
        type = "fx"
        min_arguments = max_arguments = 2
        argument_kinds = (NUMBERS, TEXTS)
        result_kind = "number"

        def evaluate(self, amount, currency):
            return as_number(amount) * rate(as_text(currency))

    function_registry.register(FxFunction())

Values inside expressions are only: null (`None`), booleans, numbers (`int` or
`decimal.Decimal`, never float), text, dates, times, aware or naive datetimes and lists of
these. `clean_value()` refuses anything else, so no Python object can enter an expression.

A function fails on a value it cannot work with (an invalid date, too many decimal places)
with `ExpressionValueError`, which evaluation turns into null; its `to_orm()` gives null in
the same cases, with guards that keep the database from raising (or, for a constant
argument, by checking it in Python when compiling). The argument and result types a
function declares let `checker.py` refuse, before an expression is saved, calls that
would fail on any value.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable
from contextvars import ContextVar
from decimal import ROUND_HALF_UP, Context, Decimal, DivisionByZero, InvalidOperation, Overflow
from typing import Any

from django.db.models import (
    BooleanField,
    Case,
    CharField,
    DateField,
    DateTimeField,
    DecimalField,
    Expression,
    ExpressionWrapper,
    FloatField,
    Func,
    IntegerField,
    Q,
    TextField,
    TimeField,
    Value,
    When,
)
from django.db.models import functions as db
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Cast
from django.db.models.lookups import (
    Contains,
    EndsWith,
    Exact,
    GreaterThanOrEqual,
    In,
    IsNull,
    LessThanOrEqual,
    StartsWith,
)
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from lowcode.expressions.exceptions import (
    ExpressionCompileError,
    ExpressionError,
    ExpressionEvaluationError,
    ExpressionSyntaxError,
    ExpressionTypeError,
    ExpressionValueError,
)
from lowcode.expressions.types import DATE, MAX_DIGITS, ExpressionType, kind, kind_name, unify
from lowcode.expressions.types import number as number_type
from lowcode.registry import Instance, Registry

MAX_TEXT_LENGTH = 10_000
# PostgreSQL's built-in ICU collation for the root locale (PostgreSQL built with ICU, as
# Debian's packages and the official images are).
ICU_COLLATION = "und-x-icu"
MAX_ROUND_PLACES = 20
# Division rounds to a fixed number of places in Python and in SQL alike, so that both give
# the same digits (PostgreSQL picks a division's scale by its own rules).
DIVISION_PLACES = 10
# Wide enough for money and quantities; trapping overflow keeps results bounded in size.
# checker.py bounds the digits of every number a checked expression computes by `prec`,
# so + - * stay exact, as PostgreSQL's numeric is.
DECIMAL_CONTEXT = Context(
    prec=MAX_DIGITS,
    rounding=ROUND_HALF_UP,
    Emax=100,
    Emin=-100,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)
# The first and last day Python's dates (and so expression values) can hold; PostgreSQL's
# reach further, so results outside are null on both sides.
MIN_DATE, MAX_DATE = datetime.date.min, datetime.date.max
MAX_DAYS = (MAX_DATE - MIN_DATE).days
# Dates and times keep a day's margin (in UTC), so that any time zone can show them.
DATETIME_DAYS = (1, MAX_DAYS - 1)

# Argument kinds of functions (see `ExpressionFunction.argument_kinds`).
NUMBERS = frozenset({"number"})
TEXTS = frozenset({"text"})
DATES = frozenset({"date", "datetime"})
ORDERED = frozenset({"number", "text", "boolean", "date", "datetime", "time"})


# --- Values ----------------------------------------------------------------------------------


def type_name(value: Any) -> str:
    """Return the user-facing name of a value's type, for error messages."""
    if value is None:
        return _("null")
    return kind_name(kind(value))


def clean_value(value: Any) -> Any:
    """Return `value` as an expression value, or raise if it has no place in one.

    Floats become `Decimal` through their shortest repr, so that 0.1 stays 0.1. Lists hold
    plain values only, so that reading one never recurses.
    """
    if isinstance(value, (list, tuple)):
        return [_clean_scalar(item) for item in value]
    return _clean_scalar(value)


def _clean_scalar(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str, datetime.date, datetime.time)):
        return value
    if isinstance(value, (Decimal, float)):
        if not math.isfinite(value):
            raise ExpressionEvaluationError(_("Numbers must be finite."))
        return Decimal(repr(value)) if isinstance(value, float) else value
    raise ExpressionEvaluationError(
        _("Values of type %(type)s cannot be used in expressions.") % {"type": type(value).__name__}
    )


def check_comparable(left: Any, right: Any) -> None:
    """Raise unless two non-null values can be compared."""
    if kind(left) != kind(right) or kind(left) in ("list", "other"):
        raise ExpressionEvaluationError(
            _("Cannot compare %(left)s with %(right)s.")
            % {"left": type_name(left), "right": type_name(right)}
        )
    if kind(left) == "datetime" and (left.tzinfo is None) != (right.tzinfo is None):
        raise ExpressionEvaluationError(_("Cannot compare dates and times with and without a time zone."))


def as_bool(value: Any) -> bool:
    """Return a condition's truth: null counts as false, anything but a boolean is an error."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    raise ExpressionEvaluationError(
        _("Expected true or false but got %(type)s.") % {"type": type_name(value)}
    )


def as_number(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise ExpressionEvaluationError(
            _("Expected a number but got %(type)s.") % {"type": type_name(value)}
        )
    return Decimal(value)


def as_integer(value: Any, low: int, high: int) -> int:
    """Return a whole number from `low` to `high`; other numbers fail (null) for this value."""
    number = as_number(value)
    if number != number.to_integral_value() or not low <= number <= high:
        raise ExpressionValueError(_("Expected a whole number from %(low)d to %(high)d but got %(value)s.")
                                   % {"low": low, "high": high, "value": number})
    return int(number)


def as_text(value: Any) -> str:
    if not isinstance(value, str):
        raise ExpressionEvaluationError(
            _("Expected text but got %(type)s.") % {"type": type_name(value)}
        )
    return value


def as_date(value: Any) -> datetime.date:
    """Return a date, taking an aware datetime's date in the current time zone.

    That is what the database does for `TruncDate`/`Extract` on a datetime column.
    """
    if isinstance(value, datetime.datetime):
        return timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    if isinstance(value, datetime.date):
        return value
    raise ExpressionEvaluationError(_("Expected a date but got %(type)s.") % {"type": type_name(value)})


def join_text(*parts: str) -> str:
    """Return the parts joined, refusing results over the size limit before building them."""
    if sum(map(len, parts)) > MAX_TEXT_LENGTH:
        raise ExpressionValueError(
            _("Text results can have at most %(count)d characters.") % {"count": MAX_TEXT_LENGTH}
        )
    return "".join(parts)


# --- Database helpers ------------------------------------------------------------------------


def to_numeric(expression: Expression) -> Expression:
    """Cast to PostgreSQL's arbitrary-precision numeric, which Python's Decimal mirrors."""
    return Func(expression, template="CAST(%(expressions)s AS numeric)", output_field=DecimalField())


def is_true(expression: Expression) -> Q:
    """Return a filter true where `expression` is true: null and false both exclude a row.

    The `IS NOT NULL` guard makes the filter two-valued (FALSE AND NULL is FALSE in SQL), so
    negating it with `~` agrees with Python, where a null condition is simply false.
    """
    return Q(IsNull(expression, False)) & Q(Exact(expression, Value(True)))


def null_unless(condition: Q, value: Expression, output_field=None) -> Expression:
    """Return `value` where `condition` holds, else null: how a failing part gives null in SQL.

    CASE computes `value` only for the rows where `condition` is true, so the database never
    runs the operation that would fail (and raise for the whole query).
    """
    return Case(When(condition, then=value), default=Value(None), output_field=output_field)


def between(expression: Expression, low: Any, high: Any) -> Q:
    return Q(GreaterThanOrEqual(expression, Value(low))) & Q(LessThanOrEqual(expression, Value(high)))


def whole_between(expression: Expression, low: int, high: int) -> Q:
    """A filter true where a number is whole and from `low` to `high` (as `as_integer()` wants)."""
    number = to_numeric(expression)
    whole = Q(Exact(number, Func(number, function="TRUNC", output_field=DecimalField())))
    return between(number, low, high) & whole


def valid_constants(arguments: list[Expression], ranges: list[tuple[int, int]]) -> bool:
    """Whether every constant among compiled arguments is a whole number in its range.

    A function checks its constant arguments in Python: PostgreSQL folds constant parts when
    it plans a query, so a cast that would fail raises even in a CASE branch never taken.
    """
    for expression, (low, high) in zip(arguments, ranges, strict=False):
        is_constant, value = constant(expression)
        if is_constant and value is not None:
            try:
                as_integer(value, low, high)
            except ExpressionError:
                return False
    return True


def constant(expression: Expression) -> tuple[bool, Any]:
    """Return (True, value) if a compiled argument is a constant (computed in Python), else (False, None)."""
    if isinstance(expression, Value):
        return True, expression.value
    return False, None


def default_collation(expression: Expression) -> Expression:
    """Text computed under a collation of its own (ICU to change case, "C" to order) back in
    the default one: PostgreSQL refuses to combine two different explicit collations."""
    return db.Collate(expression, "default")


def within_text_limit(expression: Expression) -> Expression:
    """Text longer than `MAX_TEXT_LENGTH` is null, as `join_text()` fails in Python."""
    return null_unless(Q(LessThanOrEqual(db.Length(expression), MAX_TEXT_LENGTH)), expression, TextField())


class TypeDispatch(Func):
    """Build the SQL for an operation once its operands' column types are known.

    Expressions are compiled without a model, so whether `a + b` adds numbers or joins text,
    or whether a date argument is a date or a datetime column, is only known when the
    queryset resolves the operands; `build` receives them resolved and returns the real
    expression.
    """

    def __init__(self, build: Callable[..., Expression], *expressions: Expression, output_field=None):
        super().__init__(*expressions, output_field=output_field)
        self.build = build

    def resolve_expression(self, query=None, allow_joins=True, reuse=None, summarize=False, for_save=False):
        resolved = [
            expression.resolve_expression(query, allow_joins, reuse, summarize, for_save)
            for expression in self.get_source_expressions()
        ]
        return self.build(*resolved).resolve_expression(query, allow_joins, reuse, summarize, for_save)


def output_field_of(expression: Expression):
    """Return a resolved expression's model field, or None when the database infers it."""
    # Django's own "output field if it can be determined", without raising.
    return expression._output_field_or_none


_TEXT_FIELDS = (CharField, TextField)
_NUMBER_FIELDS = (IntegerField, DecimalField, FloatField)


def field_kind(expression: Expression) -> str | None:
    """Return the value family (see `kind()`) of a resolved expression, if known."""
    field = output_field_of(expression)
    if field is not None and field.is_relation and not field.many_to_many:
        field = field.target_field  # A relation column holds the related record's id.
    if isinstance(field, _TEXT_FIELDS):
        return "text"
    if isinstance(field, _NUMBER_FIELDS):
        return "number"
    if isinstance(field, BooleanField):
        return "boolean"
    # DateTimeField is a DateField.
    if isinstance(field, DateTimeField):
        return "datetime"
    if isinstance(field, DateField):
        return "date"
    if isinstance(field, TimeField):
        return "time"
    return None if field is None else "other"


def common_output_field(*expressions: Expression):
    """Return the output field for a choice among resolved expressions (if, min, coalesce).

    Django refuses to guess between different number fields (an integer column and a
    decimal literal) or text fields (short and long text); the choice is then a decimal, as
    in Python, or text. None lets Django infer.
    """
    fields = [field for field in map(output_field_of, expressions) if field is not None]
    if len({type(field) for field in fields}) > 1:
        if all(isinstance(field, _NUMBER_FIELDS) for field in fields):
            return DecimalField()
        if all(isinstance(field, _TEXT_FIELDS) for field in fields):
            return TextField()
    return None


# --- Registry --------------------------------------------------------------------------------


class ExpressionFunction(Instance):
    """A function callable from expressions, registered under its name (`type`)."""

    min_arguments: int = 0
    """The fewest arguments the function takes."""

    max_arguments: int | None = 0
    """The most arguments the function takes; None for any number."""

    propagates_null: bool = True
    """Return null without calling `evaluate` when an argument is null, like SQL functions."""

    lazy_arguments: bool = False
    """Pass `evaluate` callables that compute each argument, so unused ones never run."""

    condition_arguments: tuple[int, ...] = ()
    """Indexes of arguments that `to_orm` receives compiled as `Q` filters, not expressions."""

    database_function: type[Func] | None = None
    """The Django database function the default `to_orm` applies to the arguments."""

    argument_kinds: tuple[frozenset[str], ...] | None = None
    """The value kinds each argument may have (`kind()`); the last entry stands for any further
    arguments. None: undeclared, and checked expressions (formulas, rules, scopes) cannot
    call the function."""

    result_kind: str | None = None
    """The kind of value the function returns (with `result_type()` computing number bounds)."""

    volatile: bool = False
    """The value changes with time (`today()`): computed when a query runs, never folded."""

    constant_ranges: tuple[tuple[int, int] | None, ...] = ()
    """Per argument, the whole numbers it must lie between (None: any value): a constant
    outside is refused when checking, a value outside gives null."""

    browser_script: str = ""
    """The URL of the script defining the function's JavaScript twin in
    `LowcodeExpressions.functions` (a plugin's; the built-ins' are in expressions.js)."""

    @property
    def in_database(self) -> bool:
        """Whether `to_orm()` can compute the function over columns."""
        return self.database_function is not None or type(self).to_orm is not ExpressionFunction.to_orm

    def check_arity(self, count: int, position: int | None = None) -> None:
        """Raise ExpressionSyntaxError unless the function takes `count` arguments."""
        if count < self.min_arguments or (self.max_arguments is not None and count > self.max_arguments):
            if self.max_arguments is None:
                message = ngettext("%(name)s() takes at least %(min)d argument.",
                                   "%(name)s() takes at least %(min)d arguments.", self.min_arguments)
            elif self.min_arguments == self.max_arguments:
                message = ngettext("%(name)s() takes %(min)d argument.",
                                   "%(name)s() takes %(min)d arguments.", self.min_arguments)
            else:
                message = _("%(name)s() takes %(min)d to %(max)d arguments.")
            raise ExpressionSyntaxError(
                message % {"name": self.type, "min": self.min_arguments, "max": self.max_arguments},
                position,
            )

    def check_types(self, arguments: list[ExpressionType], constants: list[tuple[bool, Any]],
                    position: int | None = None) -> ExpressionType:
        """Return the type of the result for arguments of these types.

        :param constants: (is constant, value) per argument, checked against `constant_ranges`.
        :raises ExpressionTypeError: if the function does not declare its types, an argument
            is of a kind it does not take (null fits any), or a constant is out of range.
        """
        if self.argument_kinds is None or self.result_kind is None:
            raise ExpressionTypeError(
                _("%(name)s() does not declare the types it takes and returns, so it cannot be used here.")
                % {"name": self.type}, position)
        for index, argument in enumerate(arguments):
            allowed = self.argument_kinds[min(index, len(self.argument_kinds) - 1)]
            if argument.kind != "null" and argument.kind not in allowed:
                raise ExpressionTypeError(
                    _("Argument %(number)d of %(name)s() must be %(expected)s, not %(found)s.") % {
                        "number": index + 1, "name": self.type, "found": argument.describe(),
                        "expected": _(" or ").join(kind_name(kind) for kind in sorted(allowed))},
                    position)
        for index, ((is_constant, value), bounds) in enumerate(zip(constants, self.constant_ranges, strict=False)):
            if bounds is not None and is_constant and value is not None:
                try:
                    as_integer(value, *bounds)
                except ExpressionValueError as error:
                    raise ExpressionTypeError(
                        _("Argument %(number)d of %(name)s(): %(error)s")
                        % {"number": index + 1, "name": self.type, "error": error.message},
                        position, code="constant_range") from None
        try:
            return self.result_type(arguments, constants)
        except ExpressionTypeError as error:
            error.position = position if error.position is None else error.position
            raise

    def result_type(self, arguments: list[ExpressionType], constants: list[tuple[bool, Any]]) -> ExpressionType:
        """Return the result's type for arguments whose kinds were checked."""
        if self.result_kind == "number":
            return number_type(10 ** (MAX_DIGITS - DIVISION_PLACES), DIVISION_PLACES)
        return ExpressionType(self.result_kind)

    def evaluate(self, *arguments: Any) -> Any:
        """Return the function's result for argument values (or callables, if lazy)."""
        raise NotImplementedError

    def to_orm(self, *arguments: Expression | Q) -> Expression:
        """Return a database expression computing the function over compiled arguments.

        :raises ExpressionCompileError: if the database cannot compute this function.
        """
        if self.database_function is None:
            raise ExpressionCompileError(
                _("%(name)s() cannot be computed by the database.") % {"name": self.type}
            )
        return self.database_function(*arguments)

    def to_q(self, *arguments: Expression | Q) -> Q:
        """Return a filter true where the function returns true (for boolean functions)."""
        return is_true(self.to_orm(*arguments))


function_registry: Registry[ExpressionFunction] = Registry("expression function")


# --- Dates -----------------------------------------------------------------------------------


fixed_now: ContextVar[datetime.datetime | None] = ContextVar("expression_now", default=None)
"""The moment `today()` and `now()` read while an evaluation fixes it (the context's "now")."""


def current_now() -> datetime.datetime:
    """Return the evaluation's fixed moment, else the clock's."""
    return fixed_now.get() or timezone.now()


def _as_date_sql(expression: Expression) -> Expression:
    """Return a resolved date or datetime expression as a date (in the current time zone)."""
    if isinstance(output_field_of(expression), DateTimeField):
        return db.TruncDate(expression)
    return expression


class TodayFunction(ExpressionFunction):
    type = "today"
    argument_kinds = ()
    result_kind = "date"
    volatile = True

    def evaluate(self):
        return timezone.localdate(current_now())

    def to_orm(self):
        return db.TruncDate(db.Now())


class NowFunction(ExpressionFunction):
    type = "now"
    database_function = db.Now
    argument_kinds = ()
    result_kind = "datetime"
    volatile = True

    def evaluate(self):
        return current_now()


class DateFunction(ExpressionFunction):
    """A date from its year, month and day; null if there is no such day."""

    type = "date"
    min_arguments = max_arguments = 3
    argument_kinds = (NUMBERS,)
    result_kind = "date"
    constant_ranges = ((MIN_DATE.year, MAX_DATE.year), (1, 12), (1, 31))

    def evaluate(self, year, month, day):
        year, month, day = (as_integer(value, low, high)
                            for value, (low, high) in zip((year, month, day), self.constant_ranges, strict=True))
        try:
            return datetime.date(year, month, day)
        except ValueError:
            raise ExpressionValueError(_("That is not a valid date.")) from None

    def to_orm(self, year, month, day):
        if not valid_constants([year, month, day], list(self.constant_ranges)):
            return Value(None, output_field=DateField())
        year, month, day = (to_numeric(part) for part in (year, month, day))
        leap = (Q(Exact(db.Mod(year, 4), 0)) & ~Q(Exact(db.Mod(year, 100), 0))) | Q(Exact(db.Mod(year, 400), 0))
        month_days = Case(
            When(Q(In(month, [4, 6, 9, 11])), then=Value(30)),
            When(Q(Exact(month, 2)), then=Case(When(leap, then=Value(29)), default=Value(28))),
            default=Value(31),
        )
        valid = Q()
        for part, (low, high) in zip((year, month, day), self.constant_ranges, strict=True):
            valid &= whole_between(part, low, high)
        valid &= Q(LessThanOrEqual(day, month_days))
        parts = [Cast(part, IntegerField()) for part in (year, month, day)]
        return null_unless(valid, Func(*parts, function="MAKE_DATE", output_field=DateField()), DateField())


class _ExtractFunction(ExpressionFunction):
    """Return a part of a date, in the current time zone for datetimes (like `Extract`)."""

    min_arguments = max_arguments = 1
    argument_kinds = (DATES,)
    result_kind = "number"
    largest = 31

    def result_type(self, arguments, constants):
        return number_type(self.largest)

    def to_orm(self, value):
        return db.Extract(value, self.type)


class YearFunction(_ExtractFunction):
    type = "year"
    largest = MAX_DATE.year

    def evaluate(self, value):
        return as_date(value).year


class MonthFunction(_ExtractFunction):
    type = "month"

    def evaluate(self, value):
        return as_date(value).month


class DayFunction(_ExtractFunction):
    type = "day"

    def evaluate(self, value):
        return as_date(value).day


class DaysBetweenFunction(ExpressionFunction):
    """Return the days from the first date to the second (negative if it is earlier)."""

    type = "days_between"
    min_arguments = max_arguments = 2
    argument_kinds = (DATES,)
    result_kind = "number"

    def result_type(self, arguments, constants):
        return number_type(MAX_DAYS)

    def evaluate(self, start, end):
        return (as_date(end) - as_date(start)).days

    def to_orm(self, start, end):
        def build(start, end):
            # date - date is a whole number of days in PostgreSQL.
            return Func(
                _as_date_sql(end), _as_date_sql(start),
                template="(%(expressions)s)", arg_joiner=" - ", output_field=IntegerField(),
            )

        return TypeDispatch(build, start, end, output_field=IntegerField())


class AddDaysFunction(ExpressionFunction):
    """A date (or date and time) some days later; null outside the dates Python can hold.

    Dates and times move in UTC, as the database's sessions do, and stay a day inside them.
    """

    type = "add_days"
    min_arguments = max_arguments = 2
    argument_kinds = (DATES, NUMBERS)
    result_kind = "date"
    constant_ranges = (None, (-MAX_DAYS, MAX_DAYS))

    def result_type(self, arguments, constants):
        return arguments[0] if arguments[0].kind != "null" else DATE

    def evaluate(self, value, days):
        if not isinstance(value, datetime.date):
            raise ExpressionEvaluationError(
                _("Expected a date but got %(type)s.") % {"type": type_name(value)}
            )
        days = as_integer(days, -MAX_DAYS, MAX_DAYS)
        low, high = 0, MAX_DAYS
        if isinstance(value, datetime.datetime):
            low, high = DATETIME_DAYS
            if timezone.is_aware(value):
                value = value.astimezone(datetime.UTC)
        if not low <= (value.toordinal() - MIN_DATE.toordinal()) + days <= high:
            raise ExpressionValueError(_("That is not a valid date."))
        return value + datetime.timedelta(days=days)

    def to_orm(self, value, days):
        if not valid_constants([days], [(-MAX_DAYS, MAX_DAYS)]):
            return Value(None)

        def build(value, days):
            is_datetime = isinstance(output_field_of(value), DateTimeField)
            output_field = DateTimeField() if is_datetime else DateField()
            day = Func(value, template="((%(expressions)s) AT TIME ZONE 'UTC')::date") if is_datetime else value
            # The day's number from the first valid date, plus the days: never out of range.
            target = CombinedExpression(
                to_numeric(Func(day, Value(MIN_DATE), template="(%(expressions)s)", arg_joiner=" - ")),
                "+", to_numeric(days), output_field=DecimalField())
            count = Cast(days, IntegerField())
            if is_datetime:
                moved = Func(value, Func(count, template="make_interval(days => %(expressions)s)"),
                             template="(%(expressions)s)", arg_joiner=" + ", output_field=DateTimeField())
            else:
                # date + integer is a date in PostgreSQL.
                moved = Func(value, count, template="(%(expressions)s)", arg_joiner=" + ", output_field=DateField())
            valid = whole_between(days, -MAX_DAYS, MAX_DAYS) & between(
                target, *(DATETIME_DAYS if is_datetime else (0, MAX_DAYS)))
            return null_unless(valid, moved, output_field)

        return TypeDispatch(build, value, days)


# --- Text ------------------------------------------------------------------------------------


class _CaseFunction(ExpressionFunction):
    min_arguments = max_arguments = 1
    argument_kinds = (TEXTS,)
    result_kind = "text"

    def to_orm(self, text):
        # The database's default locale may be "C", which changes the case of ASCII letters
        # only; ICU's root locale maps all of Unicode, as Python does.
        return default_collation(self.database_function(db.Collate(text, ICU_COLLATION)))


class UpperFunction(_CaseFunction):
    type = "upper"
    database_function = db.Upper

    def evaluate(self, text):
        return as_text(text).upper()


class LowerFunction(_CaseFunction):
    type = "lower"
    database_function = db.Lower

    def evaluate(self, text):
        return as_text(text).lower()


class TrimFunction(ExpressionFunction):
    type = "trim"
    min_arguments = max_arguments = 1
    database_function = db.Trim
    argument_kinds = (TEXTS,)
    result_kind = "text"

    def evaluate(self, text):
        # SQL's TRIM removes spaces only.
        return as_text(text).strip(" ")


class LenFunction(ExpressionFunction):
    type = "len"
    min_arguments = max_arguments = 1
    database_function = db.Length
    argument_kinds = (TEXTS,)
    result_kind = "number"

    def result_type(self, arguments, constants):
        return number_type(2**30)  # PostgreSQL's text holds at most 1 GB.

    def evaluate(self, text):
        return len(as_text(text))


class ConcatFunction(ExpressionFunction):
    """Join text, numbers and dates into one text; null counts as "" (like SQL's CONCAT)."""

    type = "concat"
    min_arguments = 1
    max_arguments = None
    propagates_null = False
    argument_kinds = (frozenset({"text", "number", "date"}),)
    result_kind = "text"

    def evaluate(self, *values):
        return join_text(*(self._text(value) for value in values))

    @staticmethod
    def _text(value):
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        if isinstance(value, Decimal):
            # Plain notation like PostgreSQL's numeric::text, never "1E+2".
            return format(value, "f")
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
            return value.isoformat()
        raise ExpressionEvaluationError(
            _("concat() cannot join %(type)s.") % {"type": type_name(value)}
        )

    def to_orm(self, *values):
        # A constant null is "" (an untyped NULL would leave Django without a type to cast).
        values = [Value("") if _is_null(value) else value for value in values]
        if len(values) == 1:
            values = (*values, Value(""))
        return within_text_limit(db.Concat(*values, output_field=TextField()))


class _TextTestFunction(ExpressionFunction):
    min_arguments = max_arguments = 2
    lookup = Contains
    argument_kinds = (TEXTS,)
    result_kind = "boolean"

    def test(self, text: str, part: str) -> bool:
        raise NotImplementedError

    def evaluate(self, text, part):
        return self.test(as_text(text), as_text(part))

    def to_orm(self, text, part):
        return self.lookup(text, part)


class ContainsFunction(_TextTestFunction):
    type = "contains"
    lookup = Contains

    def test(self, text, part):
        return part in text


class StartsWithFunction(_TextTestFunction):
    type = "startswith"
    lookup = StartsWith

    def test(self, text, part):
        return text.startswith(part)


class EndsWithFunction(_TextTestFunction):
    type = "endswith"
    lookup = EndsWith

    def test(self, text, part):
        return text.endswith(part)


# --- Logic and numbers -----------------------------------------------------------------------


def _is_null(expression: Expression) -> bool:
    return constant(expression) == (True, None)


def _without_nulls(values) -> list[Expression]:
    """The arguments but constant nulls, which the database could not type (and which
    coalesce(), min() and max() skip anyway)."""
    return [value for value in values if not _is_null(value)]


class _ChoiceFunction(ExpressionFunction):
    """A function returning one of its arguments (from `first_choice` on): they share a type."""

    first_choice = 0
    argument_kinds = (ORDERED,)
    result_kind = "any"

    def result_type(self, arguments, constants):
        choices = arguments[self.first_choice:]
        result = unify(choices)
        if result is None:
            raise ExpressionTypeError(_("The values %(name)s() chooses from must be of one type, not %(types)s.") % {
                "name": self.type, "types": _(" and ").join(sorted({choice.describe() for choice in choices}))})
        return result


class IfFunction(_ChoiceFunction):
    """Return the second argument where the condition is true, else the third."""

    type = "if"
    min_arguments = max_arguments = 3
    propagates_null = False
    lazy_arguments = True
    condition_arguments = (0,)
    first_choice = 1
    argument_kinds = (frozenset({"boolean"}), ORDERED)

    def evaluate(self, condition, then, otherwise):
        return then() if as_bool(condition()) else otherwise()

    def to_orm(self, condition, then, otherwise):
        if _is_null(then) and _is_null(otherwise):
            return Value(None)

        def build(then, otherwise):
            return Case(
                When(condition, then=then), default=otherwise,
                output_field=common_output_field(then, otherwise),
            )

        return TypeDispatch(build, then, otherwise)


class CoalesceFunction(_ChoiceFunction):
    """Return the first argument that is not null."""

    type = "coalesce"
    min_arguments = 2
    max_arguments = None
    propagates_null = False
    lazy_arguments = True

    def to_orm(self, *values):
        values = _without_nulls(values)
        if len(values) < 2:
            return values[0] if values else Value(None)

        def build(*values):
            return db.Coalesce(*values, output_field=common_output_field(*values))

        return TypeDispatch(build, *values)

    def evaluate(self, *values):
        for value in values:
            result = value()
            if result is not None:
                return result
        return None


class IsNullFunction(ExpressionFunction):
    """Return whether a value is null (comparing with null is always false)."""

    type = "is_null"
    min_arguments = max_arguments = 1
    propagates_null = False
    argument_kinds = (ORDERED,)
    result_kind = "boolean"

    def evaluate(self, value):
        return value is None

    def to_orm(self, value):
        return ExpressionWrapper(self.to_q(value), output_field=BooleanField())

    def to_q(self, value):
        return Q(IsNull(value, True))


class AbsFunction(ExpressionFunction):
    type = "abs"
    min_arguments = max_arguments = 1
    argument_kinds = (NUMBERS,)
    result_kind = "number"

    def result_type(self, arguments, constants):
        return arguments[0]

    def evaluate(self, number):
        return abs(as_number(number))

    def to_orm(self, number):
        return db.Abs(to_numeric(number))  # bigint's abs() overflows on its smallest value.


class RoundFunction(ExpressionFunction):
    """Round half away from zero to a number of decimal places (0 by default)."""

    type = "round"
    min_arguments = 1
    max_arguments = 2
    argument_kinds = (NUMBERS,)
    result_kind = "number"
    constant_ranges = (None, (-MAX_ROUND_PLACES, MAX_ROUND_PLACES))

    def result_type(self, arguments, constants):
        places = 0
        if len(arguments) == 2:
            is_constant, value = constants[1]
            places = int(value) if is_constant and value is not None else MAX_ROUND_PLACES
        # Rounding away from zero at most doubles a value (49 -> 0, 50 -> 100) or adds one (9.99 -> 10).
        return number_type(2 * arguments[0].bound + 1, places)

    def evaluate(self, number, places=0):
        places = as_integer(places, -MAX_ROUND_PLACES, MAX_ROUND_PLACES)
        return as_number(number).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)

    def to_orm(self, number, places=None):
        # ROUND(numeric, integer) rounds half away from zero, like ROUND_HALF_UP; the
        # double precision variant rounds half to even.
        number = to_numeric(number)
        if places is None:
            return db.Round(number)
        if not valid_constants([places], [(-MAX_ROUND_PLACES, MAX_ROUND_PLACES)]):
            return Value(None, output_field=DecimalField())
        rounded = db.Round(number, Cast(places, IntegerField()))
        return null_unless(whole_between(places, -MAX_ROUND_PLACES, MAX_ROUND_PLACES), rounded, DecimalField())


class _ExtremeFunction(_ChoiceFunction):
    """Return the smallest or largest argument, ignoring nulls (as PostgreSQL does)."""

    min_arguments = 2
    max_arguments = None
    propagates_null = False
    pick = min

    def to_orm(self, *values):
        values = _without_nulls(values)
        if len(values) < 2:
            return values[0] if values else Value(None)

        def build(*values):
            if all(field_kind(value) == "text" for value in values):
                # Python orders text by code point, as the "C" collation does.
                values = [db.Collate(value, "C") for value in values]
                return default_collation(self.database_function(*values, output_field=common_output_field(*values)))
            return self.database_function(*values, output_field=common_output_field(*values))

        return TypeDispatch(build, *values)

    def evaluate(self, *values):
        values = [value for value in values if value is not None]
        for value in values[1:]:
            check_comparable(values[0], value)
        return type(self).pick(values) if values else None


class MinFunction(_ExtremeFunction):
    type = "min"
    pick = min
    database_function = db.Least


class MaxFunction(_ExtremeFunction):
    type = "max"
    pick = max
    database_function = db.Greatest


BUILTIN_FUNCTIONS = (
    TodayFunction, NowFunction, DateFunction, YearFunction, MonthFunction, DayFunction,
    DaysBetweenFunction, AddDaysFunction,
    UpperFunction, LowerFunction, TrimFunction, LenFunction, ConcatFunction,
    ContainsFunction, StartsWithFunction, EndsWithFunction,
    IfFunction, CoalesceFunction, IsNullFunction, AbsFunction, RoundFunction, MinFunction, MaxFunction,
)

# The built-ins are the language itself rather than an app's contribution, and the parser
# needs them wherever this package is imported (also before apps are ready), so they are
# registered here instead of from an AppConfig.ready(). Plugins register from theirs.
for _function_class in BUILTIN_FUNCTIONS:
    function_registry.register(_function_class())
del _function_class
