"""Errors raised by the expression engine.

Messages are shown to the builder who wrote the expression, so they are translated and say
what to change; `position` points into the source so an editor can underline the spot.
"""

from __future__ import annotations

from django.utils.translation import gettext as _


class ExpressionError(ValueError):
    """An expression is invalid or cannot be run.

    :param message: A translated, user-facing message.
    :param position: The 0-based offset in the source the error is about, if known.
    """

    def __init__(self, message: str, position: int | None = None):
        super().__init__(message, position)
        self.message = message
        self.position = position

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


class ExpressionEvaluationError(ExpressionError):
    """A valid expression failed on the given values (wrong types, division by zero...)."""


class ExpressionCompileError(ExpressionError):
    """A valid expression cannot be turned into a database filter or expression."""
