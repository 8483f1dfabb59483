from django.urls import path

from plugins import views

urlpatterns = [
    path("static/<str:name>/<str:version>/<path:path>", views.static_file, name="plugin-static"),
]
