"""Kinds of definitions. An app owning a kind registers it from its `ready()`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext as _

from lowcode.registry import Instance, Registry

if TYPE_CHECKING:
    from metadata.models import Definition


class DefinitionKind(Instance):
    """A kind of definition: its JSON Schema and the hooks run on its lifecycle.

    Its token is `definition_versions[type]` of the tenant row, new on each publish, roll back,
    archive or import of this kind only. django-tenants loads the row on every request, so a
    runtime built from the kind's published definitions checks its freshness without a query.
    """

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

    def dependencies(self, body: dict) -> list[tuple[str, str]]:
        """Return the (kind, key) definitions `body` needs published first (bundles, MD-4).

        Called on bodies not validated yet: tolerate a malformed body rather than raise.
        """
        return []

    def preview_body(self, body: dict, *, key: str) -> dict:
        """Describe what publishing `body` would change, without changing anything.

        The result holds at least `summary` (readable lines); `conflicts` lists reasons the
        change must not be applied as it is (an import reports them and refuses).
        """
        from metadata import services
        from metadata.diff import diff

        published = services.get_published(self.type, key)
        if published is None:
            return {"summary": [_("New %(kind)s %(key)s.") % {"kind": self.type, "key": key}], "conflicts": []}
        return {"summary": self.summarize(diff(published.body, body)), "conflicts": []}

    def import_body(self, body: dict, *, key: str, author=None, note: str = "") -> None:
        """Publish an imported `body` as the new live version of `key` (draft, then publish)."""
        from metadata import services

        services.save_draft(self.type, key, body, author=author, note=note)
        services.publish(self.type, key, author=author, note=note)


definition_kind_registry: Registry[DefinitionKind] = Registry("definition kind")
