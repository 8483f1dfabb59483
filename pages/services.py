"""The end-user site's services: the tenant's theme, the menu a person sees, the home page's
summaries and saved views. Views and the admin call these; rows come through rbac's read path."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q
from django.http import QueryDict
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from dynamic_models import runtime
from files import services as files
from lowcode import site
from pages.models import MenuItem, SavedView, Theme
from pages.registries import view_type_registry
from rbac import services as rbac

LOGO_OWNER = "theme"
LOGO_FIELD = "logo"
ENTITY_TARGET = "entity:"
#: Records the home page lists as recent.
RECENT = 8

# --- theme -------------------------------------------------------------------------------------


def theme() -> Theme:
    """The tenant's theme: its row, or the defaults (unsaved) until an administrator sets one."""
    return Theme.objects.select_related("logo").first() or Theme()


def set_logo(current: Theme, upload, *, user) -> None:
    """Store `upload` (an image, checked by the files app's limits) as the theme's logo."""
    stored = files.upload(upload, name=upload.name, user=user, rules=files.FileRules(allowed_types=("image/*",)))
    with transaction.atomic():
        current.logo = stored
        current.save()
        files.set_attachments(owner_type=LOGO_OWNER, owner_key=LOGO_OWNER, object_id=current.pk, field=LOGO_FIELD,
                              files=[stored], user=user)


def logo_url(current: Theme) -> str:
    """The logo's stable URL (the files app checks the reader and redirects to a signed one); "" if none."""
    if current.logo_id is None or current.pk is None:
        return ""
    return files.open_url(current.logo, owner_type=LOGO_OWNER, owner_key=LOGO_OWNER, object_id=current.pk,
                          field=LOGO_FIELD)


# --- the entities a person may see -------------------------------------------------------------


@dataclass(frozen=True)
class EntityLink:
    key: str
    label: str
    url: str


def viewable_entities(request) -> list[EntityLink]:
    """The published entities the viewer may view, by label."""
    links = []
    for model in runtime.current().get_models():
        key = model.lowcode_entity["key"]
        if rbac.check(request.user, rbac.entity_operation(key, "view"), request=request):
            links.append(EntityLink(key, str(model._meta.verbose_name_plural).capitalize(),
                                    reverse("pages:table", kwargs={"entity": key})))
    return sorted(links, key=lambda link: link.label.lower())


# --- menu --------------------------------------------------------------------------------------


@dataclass
class MenuLink:
    label: str
    url: str
    target: str
    #: A count shown beside the label (0: none).
    badge: int = 0
    icon: str = ""


@dataclass
class MenuSection:
    label: str
    links: list[MenuLink] = field(default_factory=list)


def _site_links(request, *, icons: bool = False) -> list[MenuLink]:
    """Apps' links: those of the menu, or (`icons`) those of the top bar, with their badges counted."""
    links = []
    for entry in site.menu_entries():
        if bool(entry.icon) != icons or (entry.visible and not import_string(entry.visible)(request)):
            continue
        try:
            url = reverse(entry.url_name)
        except NoReverseMatch:  # An app's page not served in this tenant.
            continue
        badge = import_string(entry.badge)(request) if entry.badge else 0
        links.append(MenuLink(str(entry.label), url, entry.url_name, badge=badge, icon=entry.icon))
    return links


def topbar_links(request) -> list[MenuLink]:
    """Apps' icon links of the top bar (the notifications' bell), with their counts."""
    return _site_links(request, icons=True)


def menu(request) -> list[MenuSection]:
    """The viewer's menu: apps' pages and the entities they may view, grouped and ordered as the
    builder set them (MenuItem), the rest after, by label; hidden items left out."""
    links = _site_links(request) + [MenuLink(link.label, link.url, ENTITY_TARGET + link.key)
                             for link in viewable_entities(request)]
    items = {item.target: item for item in MenuItem.objects.select_related("group")}
    sections: dict[object, MenuSection] = {}
    placed = []
    for link in links:
        item = items.get(link.target)
        if item is not None and item.hidden:
            continue
        if item is not None and item.label:
            link.label = item.label
        placed.append((item, link))
    grouped = sorted(placed, key=lambda pair: (
        (0, pair[0].group.position, pair[0].group.pk) if pair[0] and pair[0].group else (1, 0, 0),
        (0, pair[0].position) if pair[0] else (1, 0), pair[1].label.lower()))
    for item, link in grouped:
        group = item.group if item is not None else None
        section = sections.setdefault(group.pk if group else None, MenuSection(group.label if group else ""))
        section.links.append(link)
    return list(sections.values())


def menu_targets() -> list[tuple[str, str]]:
    """What a menu item may point at: every published entity and every app's page."""
    targets = [(ENTITY_TARGET + key, str(runtime.get_model(key)._meta.verbose_name_plural).capitalize())
               for key in runtime.published_entity_bodies()]
    targets += [(entry.url_name, str(entry.label)) for entry in site.menu_entries() if not entry.icon]
    return targets


# --- home --------------------------------------------------------------------------------------


@dataclass
class EntitySummary:
    link: EntityLink
    count: int


@dataclass
class RecentRecord:
    entity: EntityLink
    record: object
    url: str


def home(request) -> tuple[list[EntitySummary], list[RecentRecord]]:
    """The viewer's entities with how many records they may see, and the records changed last
    among them (one count and one query per entity)."""
    summaries, recent = [], []
    for link in viewable_entities(request):
        model = runtime.get_model(link.key)
        visible = rbac.scope_queryset(request.user, model.objects.all(), request=request)
        summaries.append(EntitySummary(link, visible.count()))
        for record in visible.order_by("-updated_at", "-id")[:RECENT]:
            recent.append(RecentRecord(link, record, reverse("pages:detail", kwargs={"entity": link.key, "pk": record.pk})))
    recent.sort(key=lambda item: item.record.updated_at, reverse=True)
    return summaries, recent[:RECENT]


# --- saved views -------------------------------------------------------------------------------

#: Query parameters a saved view keeps besides filters.
STATE_PARAMS = {"q": "search", "sort": "sort", "group": "group_field", "date": "date_field", "image": "image_field"}


def state_from_query(view_type: str, params: QueryDict, filter_names: set[str]) -> dict:
    """A saved view's state from a page's query string: its view type, filters, sort, columns and fields."""
    state = {"type": view_type, "filters": {name: value for name, value in params.items()
                                            if name in filter_names and value != ""},
             "columns": [key for key in params.get("columns", "").split(",") if key]}
    for param, name in STATE_PARAMS.items():
        state[name] = params.get(param, "")
    return state


def view_url(entity_key: str, view: SavedView) -> str:
    """Where a saved view opens: its view type's page with its state in the query string."""
    state = view.state
    view_type = state.get("type", "table")
    if not view_type_registry.is_registered(view_type):
        view_type = "table"
    params = QueryDict(mutable=True)
    params.update(state.get("filters") or {})
    for param, name in STATE_PARAMS.items():
        if state.get(name):
            params[param] = state[name]
    if state.get("columns"):
        params["columns"] = ",".join(state["columns"])
    params["view"] = str(view.pk)
    return f"{reverse(view_type_registry.get(view_type).url_name, kwargs={'entity': entity_key})}?{params.urlencode()}"


def views_for(user, entity_key: str, *, request=None):
    """The saved views of an entity `user` may open: their own and those shared with a role they hold."""
    roles = rbac.effective(user, request).roles
    return SavedView.objects.filter(Q(owner=user) | Q(roles__key__in=roles), entity_key=entity_key).distinct()


def save_view(user, entity_key: str, *, name: str, state: dict, role_keys=()) -> SavedView:
    """Keep a view for `user`, shared with the roles named (only roles they hold themselves)."""
    from rbac.models import Role

    held = rbac.effective(user).roles
    refused = sorted(set(role_keys) - set(held)) if not user.is_superuser else []
    if refused:
        raise ValueError(_("You can share a view only with roles you hold."))
    with transaction.atomic():
        view = SavedView.objects.create(entity_key=entity_key, name=name, owner=user, state=state)
        view.roles.set(Role.objects.filter(key__in=role_keys))
    return view


def delete_view(user, view: SavedView) -> None:
    """Remove a saved view: its owner's to do."""
    if view.owner_id != user.pk:
        raise PermissionError(_("Only its owner can remove a saved view."))
    view.delete()
