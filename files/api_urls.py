from django.urls import path

from files.api import UploadView

urlpatterns = [
    path("", UploadView.as_view(), name="files-upload"),
]
