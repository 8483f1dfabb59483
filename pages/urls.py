"""The end-user site at the root of each tenant (served by the pages SitePart): home, then each
published entity's pages under /data/<entity>/, with a route per registered view type."""

from django.urls import path
from django.utils.module_loading import import_string

from pages import boards, editing, views
from pages.registries import view_type_registry

app_name = "pages"

ENTITY = "data/<slug:entity>/"

urlpatterns = [
    path(f"{ENTITY}export.<str:file_format>", views.export, name="export"),
    path(f"{ENTITY}bulk/", views.bulk, name="bulk"),
    path(f"{ENTITY}new/", editing.create, name="create"),
    path(f"{ENTITY}views/", views.save_view, name="save-view"),
    path(f"{ENTITY}views/<int:view_id>/", views.open_saved_view, name="saved-view"),
    path(f"{ENTITY}views/<int:view_id>/delete/", views.delete_view, name="delete-view"),
    path(f"{ENTITY}<int:pk>/", views.detail, name="detail"),
    path(f"{ENTITY}<int:pk>/edit/", editing.edit, name="edit"),
    path(f"{ENTITY}<int:pk>/delete/", views.delete, name="delete"),
    path(f"{ENTITY}<int:pk>/cell/", views.cell, name="cell"),
    path(f"{ENTITY}<int:pk>/move/", boards.move, name="move"),
    *(path(ENTITY + view_type.route, import_string(view_type.view), name=view_type.type)
      for view_type in view_type_registry.get_all()),
]
