from django.urls import path

from files import views

urlpatterns = [
    path("d/<str:token>/", views.DownloadView.as_view(), name="files-download"),
    path("open/<str:owner_type>/<str:owner_key>/<str:object_id>/<str:field>/<uuid:file_id>/",
         views.open_view, name="files-open"),
]
