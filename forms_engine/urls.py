from django.urls import path

from forms_engine import views

app_name = "forms_engine"

urlpatterns = [
    path("", views.form_list, name="list"),
    path("<slug:key>/", views.FillView.as_view(), name="fill"),
    path("<slug:key>/done/", views.done, name="done"),
    path("<slug:key>/drafts/<int:draft_id>/", views.FillView.as_view(), name="draft"),
    path("<slug:key>/relation/<slug:field>/", views.relation_search, name="relation_search"),
]
