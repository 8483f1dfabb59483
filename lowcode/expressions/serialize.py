"""The syntax tree as JSON, for the browser's evaluator (static/lowcode/expressions.js).

Expressions are parsed on the server only; a page receives the parsed tree and evaluates it
with the same rules as evaluator.py. Node forms (`p` is the node's position in the source)::

    {"t": "num", "v": "1.50", "p": 0}                number literal, exact, as text
    {"t": "lit", "v": "text" | true | false | null, "p": 0}
    {"t": "list", "items": [...], "p": 0}
    {"t": "field", "name": "amount", "p": 0}         amount, record.amount
    {"t": "user", "name": "region", "p": 0}          user.region
    {"t": "unary", "op": "-" | "not", "arg": {...}, "p": 0}
    {"t": "binary", "op": "+", "left": {...}, "right": {...}, "p": 0}
    {"t": "call", "fn": "round", "args": [...], "p": 0}

Values given to the browser use tagged JSON (`to_tagged()`): numbers
`{"$decimal": "1.50"}`, dates `{"$date": "2026-01-02"}`, datetimes
`{"$datetime": "2026-01-02T03:04:05+01:00"}`, times `{"$time": "12:30:00"}`; text,
booleans, null and lists as themselves.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from lowcode.expressions.parser import BinaryOp, Call, Field, ListLiteral, Literal, Node, UnaryOp, UserAttribute


def to_json(tree: Node) -> dict:
    """Return the JSON form of a syntax tree (see the module docstring)."""
    match tree:
        case Literal(value=Decimal() as value):
            return {"t": "num", "v": format(value, "f"), "p": tree.position}
        case Literal(value=value):
            return {"t": "lit", "v": value, "p": tree.position}
        case ListLiteral(items=items):
            return {"t": "list", "items": [to_json(item) for item in items], "p": tree.position}
        case Field(name=name):
            return {"t": "field", "name": name, "p": tree.position}
        case UserAttribute(name=name):
            return {"t": "user", "name": name, "p": tree.position}
        case UnaryOp(operator=operator, operand=operand):
            return {"t": "unary", "op": operator, "arg": to_json(operand), "p": tree.position}
        case BinaryOp(operator=operator, left=left, right=right):
            return {"t": "binary", "op": operator, "left": to_json(left), "right": to_json(right),
                    "p": tree.position}
        case Call(function=function, arguments=arguments):
            return {"t": "call", "fn": function, "args": [to_json(argument) for argument in arguments],
                    "p": tree.position}
    raise AssertionError(f"Unknown node {tree!r}")  # pragma: no cover


def to_tagged(value: Any) -> Any:
    """Return an expression value as tagged JSON, as `LowcodeExpressions.values.fromJSON` reads it."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, Decimal)):
        return {"$decimal": format(value, "f") if isinstance(value, Decimal) else str(value)}
    # datetime is a subclass of date.
    if isinstance(value, datetime.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, datetime.date):
        return {"$date": value.isoformat()}
    if isinstance(value, datetime.time):
        return {"$time": value.isoformat()}
    if isinstance(value, (list, tuple)):
        return [to_tagged(item) for item in value]
    raise TypeError(f"Not an expression value: {type(value).__name__}")


def from_tagged(value: Any) -> Any:
    """Return the expression value of tagged JSON (the inverse of `to_tagged()`)."""
    if isinstance(value, list):
        return [from_tagged(item) for item in value]
    if isinstance(value, dict) and len(value) == 1:
        (tag, text), = value.items()
        readers = {"$decimal": Decimal, "$date": datetime.date.fromisoformat,
                   "$datetime": datetime.datetime.fromisoformat, "$time": datetime.time.fromisoformat}
        if tag in readers and isinstance(text, str):
            return readers[tag](text)
    return value


def browser_options(now: datetime.datetime | None = None) -> dict:
    """The clock and time zone for `LowcodeExpressions.evaluate(tree, context, options)`.

    The browser then computes `today()`, `now()` and the dates of datetimes as the server
    does, in the current time zone, whatever the visitor's computer says.
    """
    now = timezone.localtime(now or timezone.now())
    return {"now": now.isoformat(), "today": now.date().isoformat(),
            "timeZone": timezone.get_current_timezone_name()}
