"""Evaluate a syntax tree in Python against plain values.

The context is a mapping with an optional `record` mapping (fields, read as `amount` or
`record.amount`) and an optional `user` mapping (read as `user.region`). Values are only
ever read with `mapping[key]`: nothing here calls getattr on a caller's object.

A part that fails on its values (division by zero, an invalid date, a number too large)
is null, and the rest of the expression goes on with that null, as the compiled SQL does:
one failing value never takes a whole list down. Type errors and missing fields still
raise: checker.py refuses them before an expression is saved.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from decimal import Decimal, DecimalException, localcontext
from functools import partial
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from lowcode.expressions.exceptions import ExpressionEvaluationError, ExpressionValueError
from lowcode.expressions.functions import (
    DECIMAL_CONTEXT,
    DIVISION_PLACES,
    as_bool,
    as_number,
    check_comparable,
    clean_value,
    fixed_now,
    function_registry,
    join_text,
    type_name,
)
from lowcode.expressions.parser import (
    ARITHMETIC_OPERATORS,
    BinaryOp,
    Call,
    Field,
    ListLiteral,
    Literal,
    Node,
    UnaryOp,
    UserAttribute,
)
from lowcode.expressions.types import kind
from lowcode.registry import NotRegistered

_DIVISION_QUANTUM = Decimal(1).scaleb(-DIVISION_PLACES)
# A quotient is computed far beyond the places it keeps, then rounded once to them (as SQL's
# ROUND(a / b, 10) over a quotient of 30 places or more).
_DIVISION_CONTEXT = DECIMAL_CONTEXT.copy()
_DIVISION_CONTEXT.prec = 100


def evaluate(tree: Node, context: Mapping[str, Any] | None = None, *, strict: bool = False) -> Any:
    """Return the value of `tree` for `context` (`{"record": {...}, "user": {...}}`).

    An aware datetime under the context's "now" is the moment `today()` and `now()` read
    (a form evaluated in the browser and on the server then agrees on "today").

    :param strict: raise on a value-dependent failure instead of making that part null.
    :raises ExpressionEvaluationError: on a type mismatch or a missing field; with
        `strict`, `ExpressionValueError` on division by zero, an invalid date, or a result
        over the size limits.
    """
    context = context or {}
    if not isinstance(context, Mapping):
        raise ExpressionEvaluationError(_("The context must be given as a mapping."))
    record, user = context.get("record") or {}, context.get("user") or {}
    if not isinstance(record, Mapping) or not isinstance(user, Mapping):
        raise ExpressionEvaluationError(_("The record and the user must be given as mappings."))
    now = context.get("now")
    if now is not None and not (isinstance(now, datetime.datetime) and timezone.is_aware(now)):
        raise ExpressionEvaluationError(_("“now” must be given as a date and time with a time zone."))
    now_token = fixed_now.set(now)
    try:
        with localcontext(DECIMAL_CONTEXT):
            return _Evaluator(record, user, strict).value(tree)
    finally:
        fixed_now.reset(now_token)


class _Evaluator:
    def __init__(self, record: Mapping[str, Any], user: Mapping[str, Any], strict: bool):
        self.record = record
        self.user = user
        self.strict = strict

    def value(self, node: Node) -> Any:
        try:
            return _plain(self._value(node))
        except DecimalException:
            if self.strict:
                raise ExpressionValueError(_("This number is too large."), node.position) from None
            return None
        except ExpressionValueError as error:
            if not self.strict:
                return None
            if error.position is None:
                error.position = node.position
            raise
        except ExpressionEvaluationError as error:
            # The innermost node that failed names the position.
            if error.position is None:
                error.position = node.position
            raise

    def condition(self, node: Node) -> bool:
        try:
            return as_bool(self.value(node))
        except ExpressionEvaluationError as error:
            if error.position is None:
                error.position = node.position
            raise

    def _value(self, node: Node) -> Any:
        match node:
            case Literal(value=value):
                return value
            case ListLiteral(items=items):
                return [self.value(item) for item in items]
            case Field(name=name):
                return self._read(self.record, name, _("There is no field “%(name)s”."))
            case UserAttribute(name=name):
                return self._read(self.user, name, _("The user has no attribute “%(name)s”."))
            case UnaryOp(operator="not", operand=operand):
                return not self.condition(operand)
            case UnaryOp(operator="-", operand=operand):
                return _arithmetic("-", Decimal(0), self.value(operand))
            case BinaryOp(operator="and", left=left, right=right):
                return self.condition(left) and self.condition(right)
            case BinaryOp(operator="or", left=left, right=right):
                return self.condition(left) or self.condition(right)
            case BinaryOp(operator=operator, left=left, right=right) if operator in ARITHMETIC_OPERATORS:
                return _arithmetic(operator, self.value(left), self.value(right))
            case BinaryOp(operator=operator, left=left, right=right):
                return _compare(operator, self.value(left), self.value(right))
            case Call():
                return self._call(node)
        raise AssertionError(f"Unknown node {node!r}")  # pragma: no cover

    def _read(self, mapping: Mapping[str, Any], name: str, missing_message: str) -> Any:
        try:
            value = mapping[name]
        except KeyError:
            raise ExpressionEvaluationError(missing_message % {"name": name}) from None
        return clean_value(value)

    def _call(self, node: Call) -> Any:
        try:
            function = function_registry.get(node.function)
        except NotRegistered:
            raise ExpressionEvaluationError(
                _("Unknown function “%(name)s”.") % {"name": node.function}
            ) from None
        if function.lazy_arguments:
            arguments = [partial(self.value, argument) for argument in node.arguments]
        else:
            arguments = [self.value(argument) for argument in node.arguments]
            if function.propagates_null and any(argument is None for argument in arguments):
                return None
        # A plugin's function must not hand a Python object back into the expression.
        return clean_value(function.evaluate(*arguments))


def _plain(value: Any) -> Any:
    """A number as PostgreSQL's numeric writes it: no exponent (1.3E+3), no negative zero."""
    if isinstance(value, Decimal):
        if value.as_tuple().exponent > 0:
            value = value.quantize(1)
        if value.is_zero():
            value = value.copy_abs()
    return value


def _arithmetic(operator: str, left: Any, right: Any) -> Any:
    if left is None or right is None:
        return None
    if operator == "+" and (isinstance(left, str) or isinstance(right, str)):
        if not (isinstance(left, str) and isinstance(right, str)):
            raise ExpressionEvaluationError(
                _("Cannot add %(left)s and %(right)s: use concat() to build text.")
                % {"left": type_name(left), "right": type_name(right)}
            )
        return join_text(left, right)
    if kind(left) != "number" or kind(right) != "number":
        raise ExpressionEvaluationError(
            _("“%(operator)s” needs numbers but got %(left)s and %(right)s.")
            % {"operator": operator, "left": type_name(left), "right": type_name(right)}
        )
    left, right = as_number(left), as_number(right)
    if operator in ("/", "%") and right == 0:
        raise ExpressionValueError(_("Division by zero."))
    if operator == "+":
        return left + right
    if operator == "-":
        return left - right
    if operator == "*":
        return left * right
    if operator == "/":
        with localcontext(_DIVISION_CONTEXT):
            quotient = left / right
        return quotient.quantize(_DIVISION_QUANTUM)
    # Decimal's remainder takes the dividend's sign, like SQL (Python's int % does not).
    return left % right


def _compare(operator: str, left: Any, right: Any) -> bool:
    if operator in ("in", "not in"):
        if not isinstance(right, list):
            raise ExpressionEvaluationError(
                _("“in” needs a list on its right but got %(type)s.") % {"type": type_name(right)}
            )
        # Like SQL: null is in no list, and not "not in" one either.
        if left is None:
            return False
        found = any(item is not None and _equals(left, item) for item in right)
        return found if operator == "in" else not found
    if left is None or right is None:
        return False
    if operator == "==":
        return _equals(left, right)
    if operator == "!=":
        return not _equals(left, right)
    check_comparable(left, right)
    if operator == "<":
        return left < right
    if operator == "<=":
        return left <= right
    if operator == ">":
        return left > right
    return left >= right


def _equals(left: Any, right: Any) -> bool:
    check_comparable(left, right)
    return left == right
