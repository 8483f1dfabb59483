"""Errors of the workflow services."""

from django.core.exceptions import ValidationError


class WorkflowError(ValidationError):
    """A workflow step that cannot be done as asked; its message says why, for the user.

    A ValidationError, so forms and the API's error format show it like any refused input.
    """
