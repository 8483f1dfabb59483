"""Notifications (WF-9): who hears about tasks and outcomes, and the channels that tell them.

Every notification is a `Notification` row (services.notify creates it): that row is the in-app
channel, the bell of the end-user site. When its transaction commits, `signals.notified` hands it
to each channel of `channel_registry` (email, built in; plugins register more: chat, SMS).

The receivers here create what wfcore's signals call for: a task assigned, reassigned or
delegated (reminders and escalations are created by services.tick and escalate themselves), and a
finished process's outcome for the person who started it, with the last comment.
"""

from __future__ import annotations

import logging

from django.core.mail import send_mail
from django.db import connection
from django.db.models import Q
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from lowcode.registry import Instance, Registry
from workflows import context, signals
from workflows.models import Notification

logger = logging.getLogger(__name__)

#: What a process's end says, by its outcome.
OUTCOMES = {"approved": gettext_lazy("approved"), "rejected": gettext_lazy("rejected"),
            "cancelled": gettext_lazy("cancelled"), "completed": gettext_lazy("completed")}


class Channel(Instance):
    """A way to tell a user of a notification beyond the in-app bell."""

    verbose_name: str = ""

    def deliver(self, notification: Notification) -> None:
        """Send `notification` to its user; raising is logged and does not stop other channels."""
        raise NotImplementedError


class EmailChannel(Channel):
    """Email through the configured Django mail backend, to users who have an address."""

    type = "email"
    verbose_name = gettext_lazy("Email")

    def deliver(self, notification):
        address = notification.user.email
        if not address:
            return
        subject = f"{notification.get_kind_display()}: {Truncator(notification.text.splitlines()[0]).chars(80)}"
        body = notification.text
        if notification.link:
            body += "\n\n" + absolute_url(notification.link)
        send_mail(subject, body, None, [address])


channel_registry: Registry[Channel] = Registry("notification channel")


def absolute_url(path: str) -> str:
    """`path` on the connection's tenant's primary domain (emails are read outside the site)."""
    from django.conf import settings

    tenant = getattr(connection, "tenant", None)
    domain = tenant.get_primary_domain() if tenant is not None and hasattr(tenant, "get_primary_domain") else None
    if domain is None:
        return path
    return f"{'https' if settings.SESSION_COOKIE_SECURE else 'http'}://{domain.domain}{path}"


# ---------------------------------------------------------------- reading


def unread_count(request) -> int:
    """The bell's count: the user's unread notifications."""
    return Notification.objects.filter(user=request.user, read=False).count()


def mark_read(user, pks=None) -> int:
    """Mark `user`'s notifications `pks` (None: all) read; returns how many changed."""
    unread = Notification.objects.filter(user=user, read=False)
    if pks is not None:
        unread = unread.filter(pk__in=pks)
    return unread.update(read=True)


# ---------------------------------------------------------------- receivers


def connect() -> None:
    signals.notified.connect(deliver, dispatch_uid="workflows.notifications.deliver")
    signals.task_assigned.connect(on_task_assigned, dispatch_uid="workflows.notifications.task_assigned")
    signals.process_finished.connect(on_process_finished, dispatch_uid="workflows.notifications.process_finished")


def deliver(sender, *, notification, **kwargs) -> None:
    for channel in channel_registry.get_all():
        try:
            channel.deliver(notification)
        except Exception:  # A mail server down must not fail the step that notified, nor other channels.
            logger.exception("Notification %s not delivered by %s", notification.pk, channel.type)


def _words(task) -> dict:
    record = context.record_of(task.process)
    return {"task": task.flow_task.task_title, "process": task.flow_task.flow_class.process_title,
            "id": task.process_id, "record": str(record) if record is not None else "—"}


def on_task_assigned(sender, *, task, users, queue, reason, **kwargs) -> None:
    from workflows import services

    if reason == "escalated" or not users:  # An escalation told its people already.
        return
    words = _words(task)
    if queue:
        text = _("New task in your queue: %(task)s for %(record)s (%(process)s #%(id)s).") % words
    elif reason == "delegated":
        text = _("Task delegated to you: %(task)s for %(record)s (%(process)s #%(id)s).") % words
    elif reason == "reassigned":
        text = _("Task handed to you: %(task)s for %(record)s (%(process)s #%(id)s).") % words
    else:
        text = _("New task: %(task)s for %(record)s (%(process)s #%(id)s).") % words
    services.notify(users, kind=Notification.Kind.ASSIGNED, text=text, link=services.task_link(task))


def on_process_finished(sender, *, process, outcome, **kwargs) -> None:
    """Tell the starter how their process ended, unless a notify step of the process told them already."""
    from workflows import services

    starter = context.user(process.data.get("started_by"))
    if starter is None or not starter.is_active:
        return
    link = services.process_link(process)
    told = Notification.objects.filter(user=starter, kind=Notification.Kind.MESSAGE, created_at__gte=process.created)
    if told.filter(Q(link=link) if link else Q()).exists():
        return
    record = context.record_of(process)
    words = {"process": process.flow_class.process_title, "id": process.pk,
             "record": str(record) if record is not None else "—", "outcome": OUTCOMES.get(outcome, outcome)}
    text = _("%(process)s #%(id)s for %(record)s ended: %(outcome)s.") % words
    comment, actor = process.data.get("comment"), context.user(process.data.get("actor"))
    if comment:
        who = (actor.get_full_name() or actor.get_username()) if actor is not None else _("someone")
        text += "\n" + _("%(user)s wrote: %(comment)s") % {"user": who, "comment": comment}
    services.notify([starter], kind=Notification.Kind.OUTCOME, text=text, link=link)
