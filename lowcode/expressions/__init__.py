"""The expression language builders write logic in (EX-1).

Used for form visibility and validation, formula fields, workflow gateway conditions,
row-level permission rules and page bindings::

    expression = compile_expression('record.amount < 1000 and record.region == user.region')
    expression.evaluate({"record": {"amount": 250, "region": "north"}, "user": {"region": "north"}})
    Expense.objects.filter(expression.to_q({"user": {"region": "north"}}))

The language: numbers (exact, as `Decimal`), text in single or double quotes with backslash
escapes, `true`, `false`, `null`, lists `[...]`; record fields written `amount` or
`record.amount`, and `user.<attribute>`; `+ - * / %` (`+` also joins text), `== != < <= > >=`,
`in`, `not in`, `and`, `or`, `not` and parentheses; and the functions in
`function_registry` (`today() now() date() year() month() day() days_between() add_days()
upper() lower() trim() len() concat() contains() startswith() endswith() if() coalesce()
is_null() abs() round() min() max()`, plus any a plugin registers). Keywords are
case-insensitive; names are lowercase.

Null behaves as in SQL, in Python and in the database alike: comparing with null (`==`,
`!=`, `<`, `in`, `not in`...) is false, arithmetic and most functions with a null argument
give null, a null condition counts as false (so `not (amount > 5)` is true when amount is
null), `concat()` treats null as "", `min()`/`max()` skip nulls, and `coalesce()` and
`is_null()` are how to handle null explicitly. Division rounds to 10 decimal places.

A part that fails on its values (division by zero, `date()` of a day that does not exist,
`add_days()` past year 9999, `round()` to more than 20 places, text over 10,000
characters) is null, in Python and in SQL alike, and the rest of the expression goes on:
one bad row never fails a whole query. Everything else is checked before an expression is
saved (`Expression.check()`, see checker.py): names, types, constants, number sizes, and
what the database can compute.

In the browser: pages evaluate the same trees with static/lowcode/expressions.js, which
implements these rules in JavaScript (exact decimals with the vendored decimal.js). The
server parses and sends `expression.to_json()` (serialize.py), plus
`serialize.browser_options()` (now, today, time zone) so both sides agree on dates;
`LowcodeExpressions.evaluate(tree, {record, user}, options)` then gives what `evaluate()`
gives, as tests/lowcode/expression_cases.json checks in pytest and in Chromium. Values
go to and fro as tagged JSON (`serialize.to_tagged()`, `LowcodeExpressions.values.fromJSON`);
a plugin's function needs a JavaScript twin in `LowcodeExpressions.functions`.

Safety: the source is parsed by our own parser, never by Python; there is no attribute
access, import or builtin to reach. Sources, trees, lists and text results have size
limits, and evaluation takes time linear in the size of the tree and its values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.db.models import Expression as OrmExpression
from django.db.models import Q
from django.utils.translation import gettext as _

from lowcode.expressions import checker, compiler, evaluator, serialize
from lowcode.expressions.exceptions import (
    ExpressionCompileError,
    ExpressionError,
    ExpressionEvaluationError,
    ExpressionSyntaxError,
    ExpressionTypeError,
    ExpressionValueError,
)
from lowcode.expressions.functions import ExpressionFunction, as_bool, function_registry
from lowcode.expressions.parser import Field, Node, parse, walk
from lowcode.expressions.types import ExpressionType
from lowcode.registry import visibility_key

__all__ = [
    "Expression",
    "ExpressionCompileError",
    "ExpressionError",
    "ExpressionEvaluationError",
    "ExpressionFunction",
    "ExpressionSyntaxError",
    "ExpressionType",
    "ExpressionTypeError",
    "ExpressionValueError",
    "compile_expression",
    "editor_check",
    "function_registry",
    "references",
]


@dataclass(frozen=True)
class Expression:
    """A parsed expression, ready to evaluate in Python or to compile for the database."""

    source: str
    tree: Node
    references: frozenset[str]
    """The record fields the expression reads."""

    def evaluate(self, context: Mapping[str, Any] | None = None, *, strict: bool = False) -> Any:
        """Return the expression's value for `{"record": {...}, "user": {...}}`.

        Parts that fail on these values are null (with `strict`, they raise
        `ExpressionValueError`).

        :raises ExpressionEvaluationError: on a type mismatch or a missing name.
        """
        return evaluator.evaluate(self.tree, context, strict=strict)

    def check(self, fields: checker.FieldTypes, *, user: Mapping[str, ExpressionType] | None = None,
              database: bool = True, condition: bool = False) -> ExpressionType:
        """Return the type of the value, or raise if the expression can fail on more than values.

        :param fields: the types of the record fields it may read (see checker.check()).
        :raises ExpressionTypeError: with a `code` naming the rule broken.
        """
        return checker.check(self.tree, fields, user=user, database=database, condition=condition)

    def is_true(self, context: Mapping[str, Any] | None = None) -> bool:
        """Return whether this condition holds, by the rules of `to_q()`: null is false.

        :raises ExpressionEvaluationError: if the value is not a boolean or null.
        """
        return as_bool(self.evaluate(context))

    def to_q(self, context: Mapping[str, Any] | None = None) -> Q:
        """Return a filter selecting the rows for which this condition is true.

        :param context: `{"user": {...}}`; user attributes become query parameters.
        :raises ExpressionCompileError: if the database cannot compute the condition.
        """
        return compiler.to_q(self.tree, context)

    def to_json(self) -> dict:
        """Return the tree as JSON for the browser's evaluator (see serialize.py)."""
        return serialize.to_json(self.tree)

    def to_orm(self, context: Mapping[str, Any] | None = None) -> OrmExpression:
        """Return an ORM expression computing the value per row (for `annotate()`).

        :raises ExpressionCompileError: if the database cannot compute the value.
        """
        return compiler.to_orm(self.tree, context)


def compile_expression(source: str) -> Expression:
    """Parse `source` once; the same source returns the same cached `Expression`.

    :raises ExpressionSyntaxError: if `source` is not a valid expression.
    """
    if not isinstance(source, str):
        raise ExpressionSyntaxError(_("An expression must be text."))
    return _compile(source, visibility_key())


def editor_check(source: str, fields: checker.FieldTypes, **options) -> dict:
    """What an expression editor shows as the builder types: {"type": "a number", "errors": []}, or
    {"errors": [{"code", "message", "position"}]}. `options` are Expression.check()'s."""
    try:
        value_type = compile_expression(source).check(fields, **options)
    except ExpressionError as error:
        return {"errors": [{"code": error.code or "invalid", "message": str(error), "position": error.position}]}
    return {"type": value_type.describe(), "errors": []}


# Parsing depends only on the source text and on which functions exist (plugins' functions
# exist only in tenants that enable them), so one process-wide cache keyed on both is safe;
# failed parses raise and are not cached.
@lru_cache(maxsize=1024)
def _compile(source: str, functions_visible) -> Expression:
    tree = parse(source)
    fields = frozenset(node.name for node in walk(tree) if isinstance(node, Field))
    return Expression(source, tree, fields)


def references(expression: str | Expression) -> frozenset[str]:
    """Return the names of the record fields an expression reads."""
    if isinstance(expression, str):
        expression = compile_expression(expression)
    return expression.references
