from django.urls import path

from datafactory import views

app_name = "datafactory"

urlpatterns = [
    path("", views.module_list, name="list"),
    path("<slug:space>/<slug:action>/", views.ModuleView.as_view(), name="module"),
]
