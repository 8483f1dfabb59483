from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PagesConfig(AppConfig):
    """The end-user site (issue 14): generated entity pages, views, menu and theme."""

    name = "pages"
    verbose_name = _("Pages")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from files.registries import file_owner_registry
        from lowcode.site import SitePart, site_part_registry
        from pages.files_owner import ThemeLogo
        from pages.registries import ViewType, view_type_registry

        view_type_registry.register(ViewType("table", _("Table"), "", "pages.views.table"))
        view_type_registry.register(ViewType("kanban", _("Kanban"), "kanban/", "pages.boards.kanban", needs="group"))
        view_type_registry.register(ViewType("calendar", _("Calendar"), "calendar/", "pages.boards.calendar_view",
                                             needs="date"))
        view_type_registry.register(ViewType("gallery", _("Gallery"), "gallery/", "pages.boards.gallery", needs="image"))
        file_owner_registry.register(ThemeLogo())
        site_part_registry.register(SitePart("pages", urls={"": "pages.urls"}, home_view="pages.views.home",
                                                     base_template="pages/base.html"))
