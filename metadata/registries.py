"""Kinds of definitions. An app owning a kind registers it from its `ready()`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lowcode.registry import Instance, Registry

if TYPE_CHECKING:
    from metadata.models import Definition


class DefinitionKind(Instance):
    """A kind of definition: its JSON Schema and the hooks run on its lifecycle."""

    verbose_name: str = ""
    #: JSON Schema (draft 2020-12) every body of this kind must satisfy.
    schema: dict = {"type": "object"}

    def validate(self, body: dict) -> list[dict]:
        """Return rule violations beyond the schema, as {"path", "code", "message"} dicts."""
        return []

    def publish(self, definition: Definition, previous: Definition | None, *, author=None) -> None:
        """Make `definition` live; runs inside the publish transaction, raising aborts it."""

    def summarize(self, changes: list[dict]) -> list[str]:
        """Describe a structured diff in readable lines."""
        return [f"{c['op']} {c['path']}" for c in changes]


definition_kind_registry: Registry[DefinitionKind] = Registry("definition kind")
