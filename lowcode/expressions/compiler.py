"""Compile a syntax tree to a Django `Q` filter or ORM expression.

The result follows the same rules as the Python evaluator, so that filtering in the
database and evaluating in Python select the same rows:

- Every comparison is guarded with `IS NOT NULL` on its non-constant sides, so a filter is
  never NULL, only TRUE or FALSE; `~` then negates it like Python's `not`.
- Parts that read no record field (`user.region`, literals) are evaluated in Python and
  sent as parameters; `user` attributes are therefore never columns. Volatile functions
  (`today()`, `now()`) run in the database, so a compiled queryset never keeps a stale day.
- A part that would fail on some row (division by zero, an invalid date, a number out of
  range) is null for that row, as in Python: divisors go through NULLIF, other operations
  through CASE guards (see functions.py), and numbers are computed as `numeric`, which
  neither overflows like bigint nor rounds like double precision.
- Operations whose SQL depends on column types (`+` on text or numbers, ordering text,
  dates versus datetimes) choose it when the queryset resolves the expression.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import (
    BooleanField,
    DecimalField,
    Expression,
    ExpressionWrapper,
    F,
    Func,
    Q,
    TextField,
    Value,
)
from django.db.models import Field as ModelField
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Collate, NullIf, Round
from django.db.models.lookups import Exact, GreaterThan, GreaterThanOrEqual, In, IsNull, LessThan, LessThanOrEqual
from django.utils.translation import gettext as _

from lowcode.expressions.evaluator import evaluate
from lowcode.expressions.exceptions import ExpressionCompileError
from lowcode.expressions.functions import (
    DIVISION_PLACES,
    TypeDispatch,
    as_bool,
    field_kind,
    function_registry,
    is_true,
    kind_name,
    to_numeric,
    within_text_limit,
)
from lowcode.expressions.parser import (
    ARITHMETIC_OPERATORS,
    BinaryOp,
    Call,
    Field,
    ListLiteral,
    Node,
    UnaryOp,
    walk,
)
from lowcode.registry import NotRegistered

_QUOTIENT_PLACES = 30


def _true() -> Q:
    return Q(Value(True))


def _false() -> Q:
    return Q(Value(False))


_COMPARISON_LOOKUPS = {
    "==": Exact, "!=": Exact, "<": LessThan, "<=": LessThanOrEqual, ">": GreaterThan, ">=": GreaterThanOrEqual,
}


def to_q(tree: Node, context: Mapping[str, Any] | None = None) -> Q:
    """Return a filter selecting the rows for which the boolean `tree` is true.

    :param context: `{"user": {...}}`; `user.<name>` reads from it.
    :raises ExpressionCompileError: if part of the expression cannot run in the database.
    :raises ExpressionEvaluationError: if a part computed in Python fails (for example a
        missing user attribute).
    """
    return _Compiler(tree, context).condition(tree)


def to_orm(tree: Node, context: Mapping[str, Any] | None = None) -> Expression:
    """Return an ORM expression computing `tree` per row, for `annotate()` or `update()`.

    :raises ExpressionCompileError: if part of the expression cannot run in the database.
    :raises ExpressionEvaluationError: if a part computed in Python fails.
    """
    expression = _Compiler(tree, context).value(tree)
    if isinstance(expression, Value) and expression.value is None:
        # A bare null has no type for Django to convert; inside other expressions it takes
        # theirs.
        expression = Value(None, output_field=ModelField())
    return expression


class _Compiler:
    def __init__(self, tree: Node, context: Mapping[str, Any] | None):
        self.context = {"user": (context or {}).get("user") or {}}
        # Nodes that read a record field, and so must run in the database. Walking in
        # reverse pre-order visits every child before its parent.
        self.dynamic: set[int] = set()
        for node in reversed(list(walk(tree))):
            if isinstance(node, Field) or is_volatile(node) or any(
                    id(child) in self.dynamic for child in node.children()):
                self.dynamic.add(id(node))

    def _is_dynamic(self, node: Node) -> bool:
        return id(node) in self.dynamic

    def _constant(self, node: Node) -> Any:
        return evaluate(node, self.context)

    # Conditions: Q objects that are never NULL.

    def condition(self, node: Node) -> Q:
        """Return a filter true where `node` is true, and false where it is false or null."""
        if not self._is_dynamic(node):
            return _true() if as_bool(self._constant(node)) else _false()
        match node:
            case UnaryOp(operator="not", operand=operand):
                return ~self.condition(operand)
            case BinaryOp(operator="and", left=left, right=right):
                return self.condition(left) & self.condition(right)
            case BinaryOp(operator="or", left=left, right=right):
                return self.condition(left) | self.condition(right)
            case BinaryOp(operator=operator) if operator not in ARITHMETIC_OPERATORS:
                return self._comparison(node)
            case Call():
                function = self._function(node)
                arguments = self._arguments(function, node)
                if _null_result(function, arguments):
                    return _false()
                return function.to_q(*arguments)
        return is_true(self.value(node))

    def _comparison(self, node: BinaryOp) -> Q:
        if node.operator in ("in", "not in"):
            return self._membership(node)
        constants = [
            self._constant(side) for side in (node.left, node.right) if not self._is_dynamic(side)
        ]
        if None in constants:
            return _false()  # Comparing with null is false.
        left, right = self.value(node.left), self.value(node.right)
        build = _comparison_builder(node.operator, node.position)
        test = Q(TypeDispatch(build, left, right, output_field=BooleanField()))
        if node.operator == "!=":
            test = ~test
        return self._not_null(node.left, left) & self._not_null(node.right, right) & test

    def _membership(self, node: BinaryOp) -> Q:
        left = self.value(node.left)
        if _is_null(left):
            return _false()  # Null is in no list, and not "not in" one either.
        if self._is_dynamic(node.right):
            if not isinstance(node.right, ListLiteral):
                raise ExpressionCompileError(
                    _("The database can only test “in” against a list."), node.position
                )
            found = _false()
            for item in node.right.items:
                found |= self._comparison(BinaryOp("==", node.left, item, position=item.position))
        else:
            items = self._constant(node.right)
            if not isinstance(items, list):
                raise ExpressionCompileError(_("“in” needs a list on its right."), node.position)
            # Null is never in a list.
            items = [Value(item) for item in items if item is not None]
            found = Q(In(left, items)) if items else _false()
        guard = self._not_null(node.left, left)
        return guard & found if node.operator == "in" else guard & ~found

    def _not_null(self, node: Node, expression: Expression) -> Q:
        return Q(IsNull(expression, False)) if self._is_dynamic(node) else _true()

    # Values: ORM expressions.

    def value(self, node: Node) -> Expression:
        """Return an expression computing `node`, null where the evaluator gives None."""
        if not self._is_dynamic(node):
            value = self._constant(node)
            if isinstance(value, list):
                raise ExpressionCompileError(
                    _("The database can only use a list after “in”."), node.position
                )
            return Value(value)
        if _is_boolean(node):
            return ExpressionWrapper(self.condition(node), output_field=BooleanField())
        match node:
            case Field(name=name):
                return F(name.replace(".", "__"))  # `project.budget`: a join to the related record.
            case UnaryOp(operator="-", operand=operand):
                return self._arithmetic("-", node.position, Value(0), self.value(operand))
            case BinaryOp(operator=operator, left=left, right=right) if operator in ARITHMETIC_OPERATORS:
                return self._arithmetic(operator, node.position, self.value(left), self.value(right))
            case Call():
                function = self._function(node)
                arguments = self._arguments(function, node)
                if _null_result(function, arguments):
                    return Value(None)
                return function.to_orm(*arguments)
            case ListLiteral():
                raise ExpressionCompileError(
                    _("The database can only use a list after “in”."), node.position
                )
        raise AssertionError(f"Unknown node {node!r}")  # pragma: no cover

    def _arithmetic(self, operator: str, position: int, left: Expression, right: Expression) -> Expression:
        if _is_null(left) or _is_null(right):
            # Null on every row: an untyped NULL, as a constant null is, so that min(),
            # coalesce() and the like skip it as Python does.
            return Value(None)
        return TypeDispatch(_arithmetic_builder(operator, position), left, right)

    def _function(self, node: Call):
        try:
            return function_registry.get(node.function)
        except NotRegistered:
            raise ExpressionCompileError(
                _("Unknown function “%(name)s”.") % {"name": node.function}, node.position
            ) from None

    def _arguments(self, function, node: Call) -> list[Expression | Q]:
        return [
            self.condition(argument) if index in function.condition_arguments else self.value(argument)
            for index, argument in enumerate(node.arguments)
        ]


def _is_null(expression) -> bool:
    return isinstance(expression, Value) and expression.value is None


def _null_result(function, arguments: list) -> bool:
    """Whether a function that propagates null gets a constant null: null on every row, as in
    Python (and the database could not type a bare NULL argument)."""
    return function.propagates_null and any(_is_null(argument) for argument in arguments)


def is_volatile(node: Node) -> bool:
    """Whether `node` calls a function whose value changes with time (`today()`)."""
    return isinstance(node, Call) and function_registry.is_registered(node.function) and \
        function_registry.get(node.function).volatile


def _is_boolean(node: Node) -> bool:
    """Return whether `node` is a `not`, `and`, `or` or comparison."""
    if isinstance(node, UnaryOp):
        return node.operator == "not"
    return isinstance(node, BinaryOp) and node.operator not in ARITHMETIC_OPERATORS


def _arithmetic_builder(operator: str, position: int):
    """Return a builder for `left <operator> right` once the operands' types are known."""

    def build(left: Expression, right: Expression) -> Expression:
        kinds = {field_kind(left), field_kind(right)} - {None}
        if operator == "+" and "text" in kinds:
            if kinds != {"text"}:
                raise ExpressionCompileError(
                    _("Cannot add text and another type: use concat() to build text."), position
                )
            # || keeps null null, where Concat() would turn it into "".
            return within_text_limit(
                Func(left, right, template="(%(expressions)s)", arg_joiner=" || ", output_field=TextField()))
        if kinds - {"number"}:
            raise ExpressionCompileError(
                _("“%(operator)s” needs numbers.") % {"operator": operator}, position
            )
        # numeric, as Decimal: bigint columns would overflow (and integer division truncate).
        left, right = to_numeric(left), to_numeric(right)
        if operator == "/":
            # The quotient to at least 30 places, then rounded once to DIVISION_PLACES: PostgreSQL
            # would otherwise keep as few as 16 significant digits of a large quotient.
            return Func(
                Round(left, _QUOTIENT_PLACES), NullIf(right, Value(0)),
                template=f"ROUND(%(expressions)s, {DIVISION_PLACES})", arg_joiner=" / ",
                output_field=DecimalField(),
            )
        if operator == "%":
            return CombinedExpression(left, "%%", NullIf(right, Value(0)), output_field=DecimalField())
        return CombinedExpression(left, operator, right, output_field=DecimalField())

    return build


def _comparison_builder(operator: str, position: int):
    """Return a builder for a comparison once the operands' types are known."""

    def build(left: Expression, right: Expression) -> Expression:
        kinds = (field_kind(left), field_kind(right))
        if kinds[0] != kinds[1] and not {None, "other"} & set(kinds):
            # PostgreSQL would compare a date with a datetime; Python refuses, and so do we.
            raise ExpressionCompileError(
                _("Cannot compare %(left)s with %(right)s.")
                % {"left": kind_name(kinds[0]), "right": kind_name(kinds[1])},
                position,
            )
        if operator not in ("==", "!=") and "text" in kinds:
            # Python orders text by code point; so does the "C" collation, whatever the
            # database's default collation is.
            left, right = Collate(left, "C"), Collate(right, "C")
        return _COMPARISON_LOOKUPS[operator](left, right)

    return build
