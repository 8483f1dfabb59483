"""Errors raised by the expression engine.

Messages are shown to the builder who wrote the expression, so they are translated and say
what to change; `position` points into the source so an editor can underline the spot, and
`code` names the rule that was broken (an API error's code).
"""

from __future__ import annotations

from django.utils.translation import gettext as _


class ExpressionError(ValueError):
    """An expression is invalid or cannot be run.

    :param message: A translated, user-facing message.
    :param position: The 0-based offset in the source the error is about, if known.
    :param code: The rule broken; the class's `code` by default.
    """

    code = "expression"

    def __init__(self, message: str, position: int | None = None, *, code: str | None = None):
        super().__init__(message, position)
        self.message = message
        self.position = position
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        if self.position is None:
            return self.message
        # Editors count characters from 1.
        return _("%(message)s (at character %(position)d)") % {
            "message": self.message,
            "position": self.position + 1,
        }


class ExpressionSyntaxError(ExpressionError):
    """The source is not a valid expression, or it is too long or too complex."""

    code = "expression_syntax"


class ExpressionTypeError(ExpressionError):
    """A valid expression does not fit where it is used: unknown fields, mismatched types,
    a constant out of range, or a part the database cannot compute (see checker.py)."""

    code = "expression_type"


class ExpressionEvaluationError(ExpressionError):
    """A valid expression failed on the given values (wrong types, a missing field...)."""

    code = "expression_evaluation"


class ExpressionValueError(ExpressionEvaluationError):
    """A value-dependent failure (division by zero, a date out of range, a number too large).

    Evaluation turns it into null for the failing part only, as the compiled SQL does; with
    `strict=True` it is raised instead (to check constants and count failing rows).
    """

    code = "expression_value"


class ExpressionCompileError(ExpressionError):
    """A valid expression cannot be turned into a database filter or expression."""

    code = "expression_database"
