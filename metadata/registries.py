"""Kinds of definitions. An app owning a kind registers it from its `ready()`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext as _

from lowcode.registry import Instance, Registry
from metadata.diff import diff

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
    #: The query parameter naming definitions of this kind in a bundle export ("" : none).
    bundle_parameter: str = ""
    #: Model permissions a designer needs to read this kind's definitions (export them in bundles).
    view_permissions: tuple[str, ...] = ()
    #: Model permissions a designer needs to import this kind's definitions from bundles.
    import_permissions: tuple[str, ...] = ()

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

    def without_dependencies(self, body: dict, dependencies: set[tuple[str, str]]) -> dict | None:
        """Return `body` without what needs `dependencies`: the first of two steps of an import
        where definitions depend on each other (a cycle), the whole body being the second.
        None: this kind cannot be imported in two steps.
        """
        return None

    def preview(self, body: dict, *, key: str, published: Definition | None) -> dict:
        """Describe what publishing `body` over `published` (None: new) would change, changing nothing.

        The result holds at least `summary` (readable lines); `conflicts` lists reasons the
        change must not be applied as it is (an import reports them and refuses).
        """
        if published is None:
            return {"summary": [_("New %(kind)s %(key)s.") % {"kind": self.type, "key": key}], "conflicts": []}
        return {"summary": self.summarize(diff(published.body, body)), "conflicts": []}

    def normalize(self, body: dict) -> dict:
        """Return `body` as this kind stores it (defaults filled in): what an import publishes.

        Called before validation: leave a malformed body as it is, validation says why.
        """
        return body


definition_kind_registry: Registry[DefinitionKind] = Registry("definition kind")
