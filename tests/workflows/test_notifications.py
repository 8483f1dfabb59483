"""Notifications (WF-9): task assigned, outcome, reminder and escalation, in-app (the bell, the list,
marking read) and by email through Django's mail backend (locmem in tests); channels plugins add."""

from __future__ import annotations

import datetime

import pytest

from tests.scenario import client_for
from tests.workflows.test_engine import open_task
from workflows import notifications, services
from workflows.models import Notification


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks):
    """Signals go out when the transaction commits: run those callbacks (and those they add)."""
    def run(step):
        with django_capture_on_commit_callbacks(execute=True):
            return step()

    return run


def test_an_assigned_task_notifies_in_app_and_by_email(scenario, expense, run_on_commit, mailoutbox):
    claim = expense("500.00", title="Train to Ningbo")
    process = run_on_commit(lambda: services.start("expense_approval", claim, user=scenario["alice"]))
    task = open_task(process, "manager")

    notification = Notification.objects.get(user=scenario["mia"], kind=Notification.Kind.ASSIGNED)
    assert "Manager approval" in notification.text and "Train to Ningbo" in notification.text
    assert notification.link == f"/inbox/tasks/{task.pk}/" and not notification.read
    mail = next(item for item in mailoutbox if item.to == ["mia@acme.example"])
    assert "Train to Ningbo" in mail.body and f"http://acme.localhost/inbox/tasks/{task.pk}/" in mail.body
    assert mail.subject.startswith("Task assigned: ")


def test_a_queue_task_notifies_its_members(scenario, expense, run_on_commit):
    process = services.start("expense_approval", expense("1500.00"), user=scenario["alice"])
    run_on_commit(lambda: services.complete(open_task(process, "manager"), user=scenario["mia"], outcome="approved"))
    text = Notification.objects.get(user=scenario["frank"], kind=Notification.Kind.ASSIGNED).text
    assert text.startswith("New task in your queue: Finance approval")


def test_approval_tells_the_submitter_the_outcome_with_the_comment(scenario, expense, run_on_commit, mailoutbox):
    process = services.start("expense_approval", expense("500.00"), user=scenario["alice"])
    run_on_commit(lambda: services.complete(open_task(process, "manager"), user=scenario["mia"],
                                            outcome="approved", comment="Enjoy the fair."))
    outcome = Notification.objects.get(user=scenario["alice"], kind=Notification.Kind.OUTCOME)
    assert "ended: approved" in outcome.text and "Enjoy the fair." in outcome.text
    assert outcome.link == f"/inbox/processes/{process.pk}/"
    assert any("Enjoy the fair." in mail.body for mail in mailoutbox if mail.to == ["alice@acme.example"])


def test_rejection_tells_the_submitter_once_with_the_comment(scenario, expense, run_on_commit, mailoutbox):
    """The workflow's own notify step tells alice; no second, generic outcome notification."""
    process = services.start("expense_approval", expense("500.00"), user=scenario["alice"])
    run_on_commit(lambda: services.complete(open_task(process, "manager"), user=scenario["mia"],
                                            outcome="rejected", comment="No receipt attached."))
    told = list(Notification.objects.filter(user=scenario["alice"]))
    assert len(told) == 1 and "No receipt attached." in told[0].text
    mails = [mail for mail in mailoutbox if mail.to == ["alice@acme.example"]]
    assert len(mails) == 1 and "No receipt attached." in mails[0].body


def test_reminder_and_escalation_are_delivered_by_email(scenario, expense, run_on_commit, mailoutbox):
    process = services.start("expense_approval", expense("500.00"), user=scenario["alice"])
    task = open_task(process, "manager")
    run_on_commit(lambda: services.tick(task.created + datetime.timedelta(days=2, minutes=1)))
    assert Notification.objects.filter(user=scenario["mia"], kind=Notification.Kind.REMINDER).exists()
    run_on_commit(lambda: services.tick(task.created + datetime.timedelta(days=5, minutes=1)))
    assert Notification.objects.filter(user=scenario["frank"], kind=Notification.Kind.ESCALATION).count() == 1
    assert not Notification.objects.filter(user=scenario["frank"], kind=Notification.Kind.ASSIGNED).exists()
    subjects = [mail.subject for mail in mailoutbox]
    assert any(subject.startswith("Reminder: ") for subject in subjects)
    assert any(subject.startswith("Escalation: ") for subject in subjects)


class Collected(notifications.Channel):
    """A channel as a plugin would add one: it keeps what it was given."""

    type = "collected"
    delivered: list = []

    def deliver(self, notification):
        self.delivered.append(notification.text)


class Broken(notifications.Channel):
    type = "broken"

    def deliver(self, notification):
        raise ConnectionError("The chat server is down.")


@pytest.fixture
def plugin_channels():
    Collected.delivered = []
    for channel in (Broken(), Collected()):
        notifications.channel_registry.register(channel)
    yield Collected.delivered
    for name in ("broken", "collected"):
        notifications.channel_registry.unregister(name)


def test_plugins_add_channels_and_a_failing_one_stops_nobody(scenario, run_on_commit, plugin_channels, mailoutbox):
    run_on_commit(lambda: services.notify([scenario["bob"]], kind="message", text="Lunch is on us."))
    assert plugin_channels == ["Lunch is on us."]
    assert [mail.to for mail in mailoutbox] == [["bob@acme.example"]]


def test_users_without_an_address_get_no_email(scenario, run_on_commit, mailoutbox):
    bob = scenario["bob"]
    bob.email = ""
    bob.save(update_fields=["email"])
    run_on_commit(lambda: services.notify([bob], kind="message", text="Hello"))
    assert mailoutbox == [] and Notification.objects.filter(user=bob).count() == 1


def test_the_bell_counts_unread_and_the_list_marks_them_read(scenario):
    alice = scenario["alice"]
    first, second = services.notify([alice], kind="message", text="First news", link="/inbox/") + \
        services.notify([alice], kind="message", text="Second news")
    services.notify([scenario["bob"]], kind="message", text="Bob's news")
    client = client_for(alice, key=False)

    home = client.get("/").content.decode()
    assert 'href="/inbox/notifications/"' in home and "Notifications: 2 new" in home

    listing = client.get("/inbox/notifications/").content.decode()
    assert "First news" in listing and "Second news" in listing and "Bob&#x27;s news" not in listing

    opened = client.get(f"/inbox/notifications/{first.pk}/")
    assert opened.status_code == 302 and opened["Location"] == "/inbox/"
    first.refresh_from_db()
    assert first.read
    assert "Notifications: 1 new" in client.get("/").content.decode()

    client.post("/inbox/notifications/read/")
    second.refresh_from_db()
    assert second.read and "pg-badge" not in client.get("/inbox/notifications/").content.decode()


def test_nobody_opens_or_reads_another_persons_notification(scenario):
    note, = services.notify([scenario["alice"]], kind="message", text="Private")
    bob = client_for(scenario["bob"], key=False)
    assert bob.get(f"/inbox/notifications/{note.pk}/").status_code == 404
    bob.post("/inbox/notifications/read/", {"pk": [note.pk]})
    note.refresh_from_db()
    assert not note.read


def test_a_process_link_opens_the_record_for_those_who_may_see_it(scenario, expense):
    claim = expense("500.00")
    process = services.start("expense_approval", claim, user=scenario["alice"])
    alice = client_for(scenario["alice"], key=False)
    assert alice.get(f"/inbox/processes/{process.pk}/")["Location"] == f"/data/expense/{claim.pk}/"
    assert client_for(scenario["bob"], key=False).get(f"/inbox/processes/{process.pk}/")["Location"] == "/inbox/"


def test_a_cancelled_process_tells_its_starter(scenario, expense, run_on_commit):
    from django.contrib.auth.models import Permission

    bea = scenario["bea"]
    bea.user_permissions.add(Permission.objects.get(codename="manage_process"))
    bea = type(bea).objects.get(pk=bea.pk)
    process = services.start("expense_approval", expense("500.00"), user=scenario["alice"])
    run_on_commit(lambda: services.cancel(process, user=bea))
    text = Notification.objects.get(user=scenario["alice"], kind=Notification.Kind.OUTCOME).text
    assert text.startswith(f"Expense approval #{process.pk} for ") and text.endswith("ended: cancelled.")


def test_the_inbox_is_a_menu_target_the_bell_sits_in_the_top_bar(scenario):
    from pages import services as pages

    targets = dict(pages.menu_targets())
    assert "workflows:inbox" in targets and "workflows:notifications" not in targets
