"""The kinds of view an entity's records can be seen in (table here; kanban, calendar and gallery
from pages.boards): each has its route under /data/<entity>/ and its view, and the view switcher
of every entity page offers those registered."""

from __future__ import annotations

from django.utils.functional import Promise

from lowcode.registry import Instance, Registry


class ViewType(Instance):
    """A way of showing an entity's records.

    :param type: its key, stored in saved views' state ("table", "kanban", ...).
    :param label: what the switcher says.
    :param route: its path under /data/<entity>/ ("" for the table, "kanban/"...).
    :param view: the dotted path of its view function, called with (request, entity).
    :param needs: the query parameter naming the field it arranges records by ("group",
        "date", "image"), offered when the entity has such a field; "" for none.
    """

    def __init__(self, type: str, label: str | Promise, route: str, view: str, needs: str = ""):  # noqa: A002
        self.type, self.label, self.route, self.view, self.needs = type, label, route, view, needs

    @property
    def url_name(self) -> str:
        return f"pages:{self.type}"


view_type_registry: Registry[ViewType] = Registry("view type")
