"""The end-user pages of workflows, under inbox/ (the SitePart of workflows.inbox.site_part)."""

from django.urls import path

from workflows import inbox

app_name = "workflows"

urlpatterns = [
    path("", inbox.inbox, name="inbox"),
    path("list/<slug:kind>/", inbox.inbox, name="inbox_kind"),
    path("tasks/<int:pk>/", inbox.task, name="task"),
    path("tasks/<int:pk>/decide/", inbox.decide, name="decide"),
    path("tasks/<int:pk>/claim/", inbox.claim, name="claim"),
    path("tasks/<int:pk>/reassign/", inbox.reassign, name="reassign"),
    path("out-of-office/", inbox.out_of_office, name="out_of_office"),
    path("processes/<int:pk>/", inbox.process, name="process"),
    path("notifications/", inbox.notification_list, name="notifications"),
    path("notifications/read/", inbox.notifications_read, name="notifications_read"),
    path("notifications/<int:pk>/", inbox.notification_open, name="notification"),
]
