"""Tokenizer and recursive-descent parser producing a small, immutable AST.

Grammar, loosest binding first::

    expression     := or_expr
    or_expr        := and_expr ("or" and_expr)*
    and_expr       := not_expr ("and" not_expr)*
    not_expr       := "not" not_expr | comparison
    comparison     := additive [("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not" "in") additive]
    additive       := multiplicative (("+" | "-") multiplicative)*
    multiplicative := unary (("*" | "/" | "%") unary)*
    unary          := "-" unary | primary
    primary        := NUMBER | STRING | "true" | "false" | "null"
                    | "[" [expression ("," expression)* [","]] "]"
                    | "(" expression ")"
                    | NAME "(" [expression ("," expression)*] ")"
                    | ("record" | "user") "." NAME
                    | NAME ["." NAME]      (a field of the record a relation points to)

The source is never handed to Python's `eval`, `compile` or `ast`: only the node types below
exist, so there is no way to name a Python attribute, builtin or module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

from lowcode.expressions.exceptions import ExpressionSyntaxError
from lowcode.expressions.functions import function_registry

MAX_SOURCE_LENGTH = 2_000
MAX_DEPTH = 64
MAX_NODES = 500
MAX_LIST_ITEMS = 100
MAX_NAME_LENGTH = 63  # PostgreSQL's identifier length, since names become columns.
MAX_NUMBER_DIGITS = 30

KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})
COMPARISON_OPERATORS = frozenset({"==", "!=", "<", "<=", ">", ">=", "in", "not in"})
ARITHMETIC_OPERATORS = frozenset({"+", "-", "*", "/", "%"})
BOOLEAN_OPERATORS = frozenset({"and", "or"})

_NAME_RE = re.compile(r"[a-z_][a-z0-9_]*\Z")
_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+)
    |(?P<number>[0-9]+(?:\.[0-9]+)?)
    |(?P<name>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<op>==|!=|<=|>=|[-+*/%<>()\[\],.])
    """,
    re.VERBOSE,
)
_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t", "r": "\r"}


# --- AST -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """A node of the syntax tree; `position` is its 0-based offset in the source."""

    # Left out of comparisons so that `a+b` and `a + b` give equal trees.
    position: int = field(kw_only=True, compare=False)

    def children(self) -> tuple[Node, ...]:
        """Return the nodes directly below this one."""
        return ()


@dataclass(frozen=True)
class Literal(Node):
    """A number (`Decimal`), string, boolean or null written in the source."""

    value: Decimal | str | bool | None


@dataclass(frozen=True)
class ListLiteral(Node):
    items: tuple[Node, ...]

    def children(self) -> tuple[Node, ...]:
        return self.items


@dataclass(frozen=True)
class Field(Node):
    """A field of the record, written `amount` or `record.amount`."""

    name: str


@dataclass(frozen=True)
class UserAttribute(Node):
    """An attribute of the current user, written `user.region`."""

    name: str


@dataclass(frozen=True)
class UnaryOp(Node):
    operator: str  # "-" or "not"
    operand: Node

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True)
class BinaryOp(Node):
    """An arithmetic, comparison or boolean operation; `position` is the operator's."""

    operator: str
    left: Node
    right: Node

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True)
class Call(Node):
    function: str
    arguments: tuple[Node, ...]

    def children(self) -> tuple[Node, ...]:
        return self.arguments


def walk(node: Node):
    """Yield `node` and every node below it, without recursion (trees can be deep)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children()))


# --- Tokenizer -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # "number", "string", "name", "keyword", "op" or "end"
    value: Any
    position: int

    def describe(self) -> str:
        if self.kind == "end":
            return _("the end of the expression")
        if self.kind == "string":
            return _("a text value")
        return f"“{self.value}”"


def tokenize(source: str) -> list[Token]:
    """Split `source` into tokens, ending with an `end` token."""
    tokens: list[Token] = []
    position = 0
    while position < len(source):
        char = source[position]
        if char in "\"'":
            value, position_after = _read_string(source, position)
            tokens.append(Token("string", value, position))
            position = position_after
            continue
        match = _TOKEN_RE.match(source, position)
        if match is None:
            raise ExpressionSyntaxError(_unexpected_character_message(source, position), position)
        kind, text = match.lastgroup, match.group()
        if kind == "number":
            tokens.append(Token("number", _read_number(text, position), position))
        elif kind == "name":
            tokens.append(_name_token(text, position))
        elif kind == "op":
            tokens.append(Token("op", text, position))
        position = match.end()
    tokens.append(Token("end", None, len(source)))
    return tokens


def _read_string(source: str, start: int) -> tuple[str, int]:
    quote = source[start]
    chars: list[str] = []
    position = start + 1
    while position < len(source):
        char = source[position]
        if char == quote:
            return "".join(chars), position + 1
        if char == "\\":
            escaped = source[position + 1 : position + 2]
            if escaped not in _ESCAPES:
                raise ExpressionSyntaxError(
                    _("Unknown escape sequence “\\%(char)s” in text.") % {"char": escaped},
                    position,
                )
            chars.append(_ESCAPES[escaped])
            position += 2
            continue
        chars.append(char)
        position += 1
    raise ExpressionSyntaxError(_("This text is not closed: add a matching %(quote)s.") % {"quote": quote}, start)


def _read_number(text: str, position: int) -> Decimal:
    if len(text) > MAX_NUMBER_DIGITS:
        raise ExpressionSyntaxError(
            _("Numbers can have at most %(count)d digits.") % {"count": MAX_NUMBER_DIGITS}, position
        )
    return Decimal(text)


def _name_token(text: str, position: int) -> Token:
    lowered = text.lower()
    if lowered in KEYWORDS:
        return Token("keyword", lowered, position)
    if "__" in text:
        # Double underscores name Python internals and Django lookups (`a__b` would follow
        # a relation): neither may be reachable from an expression.
        raise ExpressionSyntaxError(_("Names cannot contain “__”: %(name)s") % {"name": text}, position)
    if not _NAME_RE.match(text):
        raise ExpressionSyntaxError(
            _("Names are written in lowercase letters, digits and “_”: %(name)s") % {"name": text},
            position,
        )
    if len(text) > MAX_NAME_LENGTH:
        raise ExpressionSyntaxError(
            _("Names can have at most %(count)d characters.") % {"count": MAX_NAME_LENGTH}, position
        )
    return Token("name", text, position)


def _unexpected_character_message(source: str, position: int) -> str:
    char = source[position]
    if char == "=":
        return _("Use “==” to compare values.")
    if char in "&|":
        return _("Use “and” and “or” to combine conditions.")
    if char == "!":
        return _("Use “not” to negate a condition.")
    return _("Unexpected character %(char)s.") % {"char": repr(char)}


# --- Parser ----------------------------------------------------------------------------------


def parse(source: str) -> Node:
    """Parse `source` into a syntax tree.

    :raises ExpressionSyntaxError: if the source is not a valid expression or exceeds the
        size limits.
    """
    if not isinstance(source, str):
        raise ExpressionSyntaxError(_("An expression must be text."))
    if len(source) > MAX_SOURCE_LENGTH:
        raise ExpressionSyntaxError(
            _("Expressions can have at most %(count)d characters.") % {"count": MAX_SOURCE_LENGTH},
            MAX_SOURCE_LENGTH,
        )
    if "\x00" in source:
        raise ExpressionSyntaxError(_("Expressions cannot contain NUL characters."), source.index("\x00"))
    if not source.strip():
        raise ExpressionSyntaxError(_("The expression is empty."), 0)
    node = _Parser(tokenize(source)).parse()
    _check_size(node)
    return node


def _check_size(tree: Node) -> None:
    """Refuse trees too deep to evaluate or compile without exhausting the stack."""
    count = 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ExpressionSyntaxError(
                _("This expression is too long: split it into smaller ones."), node.position
            )
        if depth > MAX_DEPTH:
            raise ExpressionSyntaxError(_("This expression is nested too deeply."), node.position)
        stack.extend((child, depth + 1) for child in node.children())


class _Parser:
    def __init__(self, tokens: list[Token]):
        self.tokens = tokens
        self.index = 0
        # Parentheses, lists, calls and prefix operators recurse: bound them before the
        # Python stack is at risk; _check_size() bounds the finished tree.
        self.nesting = 0

    def parse(self) -> Node:
        node = self._expression()
        token = self._peek()
        if token.kind != "end":
            raise self._unexpected(token)
        return node

    # Token helpers.

    def _peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def _advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def _at(self, kind: str, value: str | None = None, offset: int = 0) -> bool:
        token = self._peek(offset)
        return token.kind == kind and (value is None or token.value == value)

    def _expect_op(self, value: str) -> Token:
        if not self._at("op", value):
            token = self._peek()
            raise ExpressionSyntaxError(
                _("Expected “%(expected)s” but found %(found)s.")
                % {"expected": value, "found": token.describe()},
                token.position,
            )
        return self._advance()

    def _unexpected(self, token: Token) -> ExpressionSyntaxError:
        if token.kind == "end":
            return ExpressionSyntaxError(_("The expression ends too early."), token.position)
        return ExpressionSyntaxError(
            _("Unexpected %(found)s.") % {"found": token.describe()}, token.position
        )

    def _enter(self, token: Token) -> None:
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise ExpressionSyntaxError(_("This expression is nested too deeply."), token.position)

    def _leave(self) -> None:
        self.nesting -= 1

    # Grammar rules, loosest binding first.

    def _expression(self) -> Node:
        return self._or()

    def _or(self) -> Node:
        node = self._and()
        while self._at("keyword", "or"):
            token = self._advance()
            node = BinaryOp("or", node, self._and(), position=token.position)
        return node

    def _and(self) -> Node:
        node = self._not()
        while self._at("keyword", "and"):
            token = self._advance()
            node = BinaryOp("and", node, self._not(), position=token.position)
        return node

    def _not(self) -> Node:
        if self._at("keyword", "not"):
            token = self._advance()
            self._enter(token)
            operand = self._not()
            self._leave()
            return UnaryOp("not", operand, position=token.position)
        return self._comparison()

    def _comparison_operator(self) -> str | None:
        token = self._peek()
        if token.kind == "op" and token.value in COMPARISON_OPERATORS:
            return token.value
        if self._at("keyword", "in"):
            return "in"
        if self._at("keyword", "not") and self._at("keyword", "in", offset=1):
            return "not in"
        return None

    def _comparison(self) -> Node:
        node = self._additive()
        operator = self._comparison_operator()
        if operator is None:
            return node
        token = self._advance()
        if operator == "not in":
            self._advance()
        node = BinaryOp(operator, node, self._additive(), position=token.position)
        if self._comparison_operator() is not None:
            raise ExpressionSyntaxError(
                _("Comparisons cannot be chained: combine them with “and”."), self._peek().position
            )
        return node

    def _additive(self) -> Node:
        node = self._multiplicative()
        while self._at("op", "+") or self._at("op", "-"):
            token = self._advance()
            node = BinaryOp(token.value, node, self._multiplicative(), position=token.position)
        return node

    def _multiplicative(self) -> Node:
        node = self._unary()
        while self._at("op", "*") or self._at("op", "/") or self._at("op", "%"):
            token = self._advance()
            node = BinaryOp(token.value, node, self._unary(), position=token.position)
        return node

    def _unary(self) -> Node:
        if self._at("op", "-"):
            token = self._advance()
            self._enter(token)
            operand = self._unary()
            self._leave()
            if isinstance(operand, Literal) and isinstance(operand.value, Decimal):
                return Literal(-operand.value, position=token.position)
            return UnaryOp("-", operand, position=token.position)
        return self._primary()

    def _primary(self) -> Node:
        token = self._peek()
        if token.kind in ("number", "string"):
            self._advance()
            return Literal(token.value, position=token.position)
        if token.kind == "keyword" and token.value in ("true", "false", "null"):
            self._advance()
            value = {"true": True, "false": False, "null": None}[token.value]
            return Literal(value, position=token.position)
        if self._at("op", "("):
            self._advance()
            self._enter(token)
            node = self._expression()
            self._expect_op(")")
            self._leave()
            return node
        if self._at("op", "["):
            return self._list()
        if token.kind == "name":
            return self._name()
        raise self._unexpected(token)

    def _list(self) -> ListLiteral:
        start = self._advance()
        self._enter(start)
        items: list[Node] = []
        while not self._at("op", "]"):
            if len(items) == MAX_LIST_ITEMS:
                raise ExpressionSyntaxError(
                    _("Lists can have at most %(count)d items.") % {"count": MAX_LIST_ITEMS},
                    self._peek().position,
                )
            items.append(self._expression())
            if not self._at("op", ","):
                break
            self._advance()
        self._expect_op("]")
        self._leave()
        return ListLiteral(tuple(items), position=start.position)

    def _name(self) -> Node:
        token = self._advance()
        name = token.value
        if self._at("op", "("):
            return self._call(token)
        if name in ("record", "user"):
            if not self._at("op", "."):
                raise ExpressionSyntaxError(
                    _("Write %(name)s.<name> to read one of its values.") % {"name": name},
                    token.position,
                )
            self._advance()
            attribute = self._peek()
            if attribute.kind != "name":
                raise ExpressionSyntaxError(
                    _("Expected a name after “%(name)s.”.") % {"name": name}, attribute.position
                )
            self._advance()
            node_class = Field if name == "record" else UserAttribute
            node = node_class(attribute.value, position=token.position)
        else:
            node = Field(name, position=token.position)
            if self._at("op", "."):  # A field of the record a relation points to: `project.budget`.
                self._advance()
                attribute = self._peek()
                if attribute.kind != "name":
                    raise ExpressionSyntaxError(
                        _("Expected a name after “%(name)s.”.") % {"name": name}, attribute.position
                    )
                self._advance()
                node = Field(f"{name}.{attribute.value}", position=token.position)
        if self._at("op", "."):
            raise ExpressionSyntaxError(
                _("Only relation.<field>, record.<field> and user.<attribute> can be written with a dot."),
                self._peek().position,
            )
        return node

    def _call(self, name_token: Token) -> Call:
        name = name_token.value
        if not function_registry.is_registered(name):
            raise ExpressionSyntaxError(
                _("Unknown function “%(name)s”.") % {"name": name}, name_token.position
            )
        self._advance()  # "("
        self._enter(name_token)
        arguments: list[Node] = []
        while not self._at("op", ")"):
            arguments.append(self._expression())
            if not self._at("op", ","):
                break
            self._advance()
        self._expect_op(")")
        self._leave()
        function_registry.get(name).check_arity(len(arguments), name_token.position)
        return Call(name, tuple(arguments), position=name_token.position)
