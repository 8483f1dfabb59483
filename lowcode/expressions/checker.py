"""Check an expression where it will run, before it is saved (EX-1).

`check()` proves, from the types of the fields and user attributes an expression may read,
that evaluating it can only fail on values (a division by zero, an invalid date), never on
types or names: every field and attribute exists and can be read, operators and functions
get the kinds of values they take, lists only follow `in`, and, where the database computes
the expression, every part of it can run there. Constant parts are computed once, so a
constant that fails (`date(2020, 13, 45)`, a division by zero) is refused, as are constant
arguments out of a function's range (`round(amount, 99)`). Numbers carry bounds on their
digits (see types.py): a calculation that could exceed `MAX_DIGITS` digits is refused, so
Python and PostgreSQL compute exactly the same digits and neither overflows.

Errors are `ExpressionTypeError`s whose `code` names the rule: `unknown_field`,
`field_not_readable`, `user_not_available`, `unknown_user_attribute`, `expression_type`,
`number_range`, `constant_value`, `constant_range` or `expression_database`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext as _

from lowcode.expressions.compiler import is_volatile
from lowcode.expressions.evaluator import evaluate
from lowcode.expressions.exceptions import ExpressionEvaluationError, ExpressionTypeError, ExpressionValueError
from lowcode.expressions.functions import DIVISION_PLACES, function_registry
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
    walk,
)
from lowcode.expressions.types import (
    BOOLEAN,
    MAX_DIGITS,
    NULL,
    ORDERED_KINDS,
    TEXT,
    ExpressionType,
    number,
    type_of_value,
    unify,
)
from lowcode.registry import NotRegistered

#: A field's type, or why expressions cannot read it (a message), or None (cannot, no reason given).
FieldTypes = Mapping[str, "ExpressionType | str | None"]


def check(tree: Node, fields: FieldTypes, *, user: Mapping[str, ExpressionType] | None = None,
          database: bool = True, condition: bool = False) -> ExpressionType:
    """Return the type of `tree`'s value, or raise if it would fail on more than its values.

    :param fields: the record fields the expression may read, by key.
    :param user: the attributes `user.<name>` may read; None: the expression cannot read the
        user (formulas and rules are computed per record, whoever reads it).
    :param database: the expression is compiled to SQL (formulas, scopes): every part that
        reads a field must be computable by the database.
    :param condition: the value must be true/false (rules, scopes).
    :raises ExpressionTypeError: naming the rule broken and the position.
    """
    checker = _Checker(tree, fields, user, database)
    return checker.condition(tree) if condition else checker.value(tree)


class _Checker:
    def __init__(self, tree: Node, fields: FieldTypes, user: Mapping[str, ExpressionType] | None, database: bool):
        self.fields = fields
        self.user = user
        self.database = database
        self.folded: dict[int, Any] = {}
        # Nodes whose value depends on the record or the user (or the clock): not constant.
        # Reverse pre-order visits every child before its parent.
        self.variable: set[int] = set()
        self.reads_record: set[int] = set()
        for node in reversed(list(walk(tree))):
            children = node.children()
            if isinstance(node, Field) or is_volatile(node) or any(id(c) in self.reads_record for c in children):
                self.reads_record.add(id(node))
            if id(node) in self.reads_record or isinstance(node, UserAttribute) or any(
                    id(c) in self.variable for c in children):
                self.variable.add(id(node))

    # Entry points.

    def value(self, node: Node) -> ExpressionType:
        result = self._type(node)
        if result.kind == "list":
            raise ExpressionTypeError(_("A list can only follow “in”."), node.position, code="expression_type")
        return result

    def condition(self, node: Node) -> ExpressionType:
        result = self.value(node)
        if result.kind not in ("boolean", "null"):
            raise ExpressionTypeError(_("Expected true or false, not %(type)s.") % {"type": result.describe()},
                                      node.position, code="expression_type")
        return BOOLEAN

    # Types of nodes.

    def _type(self, node: Node, *, in_constant: bool = False) -> ExpressionType:
        if in_constant or id(node) in self.variable:
            result = self._structure(node, in_constant=in_constant)
        else:
            # The largest constant parts are computed now: a failure there fails every row.
            self._structure(node, in_constant=True)
            result = type_of_value(self._fold(node))
        if result.kind == "number" and result.digits + result.places > MAX_DIGITS:
            raise ExpressionTypeError(
                _("This calculation can give numbers of %(count)d digits; expressions compute exactly with at "
                  "most %(max)d. Round or divide the parts first.")
                % {"count": result.digits + result.places, "max": MAX_DIGITS},
                node.position, code="number_range")
        return result

    def _fold(self, node: Node) -> Any:
        try:
            value = evaluate(node, strict=True)
        except ExpressionValueError as error:
            raise ExpressionTypeError(error.message, error.position, code="constant_value") from None
        except ExpressionEvaluationError as error:
            raise ExpressionTypeError(error.message, error.position, code="expression_type") from None
        self.folded[id(node)] = value
        return value

    def _constant(self, node: Node) -> tuple[bool, Any]:
        if id(node) in self.folded:
            return True, self.folded[id(node)]
        return False, None

    def _structure(self, node: Node, *, in_constant: bool) -> ExpressionType:
        child = {"in_constant": in_constant}
        match node:
            case Literal(value=value):
                return type_of_value(value)
            case ListLiteral():
                raise ExpressionTypeError(_("A list can only follow “in”."), node.position, code="expression_type")
            case Field(name=name):
                return self._field(name, node.position)
            case UserAttribute(name=name):
                return self._user_attribute(name, node.position)
            case UnaryOp(operator="not", operand=operand):
                self._condition_of(operand, **child)
                return BOOLEAN
            case UnaryOp(operator="-", operand=operand):
                operand_type = self._scalar(operand, **child)
                self._need_numbers("-", [operand_type], node.position)
                return operand_type if operand_type.kind == "number" else NULL
            case BinaryOp(operator="and" | "or", left=left, right=right):
                self._condition_of(left, **child)
                self._condition_of(right, **child)
                return BOOLEAN
            case BinaryOp(operator=operator, left=left, right=right) if operator in ARITHMETIC_OPERATORS:
                return self._arithmetic(node, self._scalar(left, **child), self._scalar(right, **child))
            case BinaryOp(operator="in" | "not in"):
                self._membership(node, in_constant=in_constant)
                return BOOLEAN
            case BinaryOp(operator=operator, left=left, right=right):
                self._comparison(operator, self._scalar(left, **child), self._scalar(right, **child), node.position)
                return BOOLEAN
            case Call():
                return self._call(node, in_constant=in_constant)
        raise AssertionError(f"Unknown node {node!r}")  # pragma: no cover

    def _scalar(self, node: Node, *, in_constant: bool) -> ExpressionType:
        result = self._type(node, in_constant=in_constant)
        if result.kind == "list":
            raise ExpressionTypeError(_("A list can only follow “in”."), node.position, code="expression_type")
        return result

    def _condition_of(self, node: Node, *, in_constant: bool) -> None:
        result = self._scalar(node, in_constant=in_constant)
        if result.kind not in ("boolean", "null"):
            raise ExpressionTypeError(_("Expected true or false, not %(type)s.") % {"type": result.describe()},
                                      node.position, code="expression_type")

    def _field(self, name: str, position: int) -> ExpressionType:
        if name not in self.fields:
            raise ExpressionTypeError(_("There is no field “%(name)s”.") % {"name": name}, position,
                                      code="unknown_field")
        field_type = self.fields[name]
        if not isinstance(field_type, ExpressionType):
            raise ExpressionTypeError(
                field_type or _("The field “%(name)s” cannot be used in expressions.") % {"name": name},
                position, code="field_not_readable")
        return field_type

    def _user_attribute(self, name: str, position: int) -> ExpressionType:
        if self.user is None:
            raise ExpressionTypeError(
                _("user.%(name)s cannot be used here: the value is computed per record, the same for whoever "
                  "reads it.") % {"name": name}, position, code="user_not_available")
        if name not in self.user:
            raise ExpressionTypeError(
                _("The user has no attribute “%(name)s”; use one of: %(names)s.")
                % {"name": name, "names": ", ".join(sorted(self.user))}, position, code="unknown_user_attribute")
        return self.user[name]

    def _need_numbers(self, operator: str, operands: list[ExpressionType], position: int) -> None:
        wrong = [operand for operand in operands if operand.kind not in ("number", "null")]
        if not wrong:
            return
        if any(operand.kind in ("date", "datetime") for operand in wrong):
            message = _("“%(operator)s” needs numbers, not %(type)s: use add_days() or days_between() with dates.")
        else:
            message = _("“%(operator)s” needs numbers, not %(type)s.")
        raise ExpressionTypeError(message % {"operator": operator, "type": wrong[0].describe()}, position,
                                  code="expression_type")

    def _arithmetic(self, node: BinaryOp, left: ExpressionType, right: ExpressionType) -> ExpressionType:
        operator, position = node.operator, node.position
        if operator == "+" and "text" in (left.kind, right.kind):
            if {left.kind, right.kind} - {"text", "null"}:
                raise ExpressionTypeError(
                    _("Cannot add %(left)s and %(right)s: use concat() to build text.")
                    % {"left": left.describe(), "right": right.describe()}, position, code="expression_type")
            return TEXT
        self._need_numbers(operator, [left, right], position)
        if NULL in (left, right):
            return NULL
        if operator in ("/", "%"):
            is_constant, divisor = self._constant(node.right)
            if is_constant and divisor == 0:
                raise ExpressionTypeError(_("Division by zero."), node.right.position, code="constant_value")
            # The smallest divisor that is not 0 is one unit of its last place.
            quotient = number(left.bound * 10**right.places, DIVISION_PLACES)
            if operator == "/":
                return quotient
            if quotient.digits > MAX_DIGITS:
                raise ExpressionTypeError(
                    _("This remainder needs a quotient of %(count)d digits; expressions compute exactly with at "
                      "most %(max)d.") % {"count": quotient.digits, "max": MAX_DIGITS},
                    position, code="number_range")
            return number(min(left.bound, right.bound), max(left.places, right.places))
        if operator == "*":
            return number(left.bound * right.bound, left.places + right.places)
        return number(left.bound + right.bound, max(left.places, right.places))

    def _comparison(self, operator: str, left: ExpressionType, right: ExpressionType, position: int) -> None:
        common = unify([left, right])
        if common is None:
            raise ExpressionTypeError(
                _("Cannot compare %(left)s with %(right)s.") % {"left": left.describe(), "right": right.describe()},
                position, code="expression_type")
        if operator not in ("==", "!=") and common.kind not in ORDERED_KINDS | {"null"}:
            raise ExpressionTypeError(_("%(type)s cannot be ordered.") % {"type": common.describe()}, position,
                                      code="expression_type")

    def _membership(self, node: BinaryOp, *, in_constant: bool) -> None:
        left = self._scalar(node.left, in_constant=in_constant)
        if isinstance(node.right, ListLiteral):
            items = [self._scalar(item, in_constant=in_constant) for item in node.right.items]
        else:
            right = self._type(node.right, in_constant=in_constant)
            if right.kind == "null":
                items = []
            elif right.kind != "list":
                raise ExpressionTypeError(
                    _("“in” needs a list on its right, not %(type)s.") % {"type": right.describe()},
                    node.right.position, code="expression_type")
            elif self.database and id(node.right) in self.reads_record:
                raise ExpressionTypeError(
                    _("The database can only test “in” against a list written in the expression or one of "
                      "the user's."), node.right.position, code="expression_database")
            else:
                items = [right.item or NULL]
        for item in items:
            self._comparison("==", left, item, node.position)

    def _call(self, node: Call, *, in_constant: bool) -> ExpressionType:
        try:
            function = function_registry.get(node.function)
        except NotRegistered:
            raise ExpressionTypeError(_("Unknown function “%(name)s”.") % {"name": node.function}, node.position,
                                      code="expression_type") from None
        arguments = []
        for index, argument in enumerate(node.arguments):
            if index in function.condition_arguments:
                self._condition_of(argument, in_constant=in_constant)
                arguments.append(BOOLEAN)
            else:
                arguments.append(self._scalar(argument, in_constant=in_constant))
        if self.database and id(node) in self.reads_record and not function.in_database:
            raise ExpressionTypeError(
                _("%(name)s() cannot be computed by the database, so it cannot read fields here.")
                % {"name": node.function}, node.position, code="expression_database")
        constants = [self._constant(argument) for argument in node.arguments]
        return function.check_types(arguments, constants, node.position)


