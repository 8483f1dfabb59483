"""The audit trail (AD-1..AD-5): recording, integrity in the database, export, history, retention, alerts."""

import csv
import io
import json
from datetime import date, timedelta
from io import StringIO
from types import SimpleNamespace

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, schema_context, tenant_context

from audit import services, tasks
from audit.actions import AuditAction, UndeclaredAuditAction, audit_action_registry
from audit.models import Alert, AlertRule, AppendOnlyError, AuditEvent, AuditSettings
from dynamic_models import audit_actions as dm_actions
from lowcode.logs import request_var
from lowcode.registry import AlreadyRegistered
from rbac import audit_actions as rbac_actions

#: Tests of the trail itself record `test.*` actions besides the declared ones.
pytestmark = pytest.mark.usefixtures("test_audit_actions")

PASSWORD = "correct-horse-battery"
BANNER_TEMPLATE = ('{% extends "admin/base_site.html" %}{% load audit_alerts %}'
                   "{% block messages %}{% audit_alerts %}{{ block.super }}{% endblock %}")


@pytest.fixture
def alice(tenant, make_user):
    return make_user(tenant, "alice")


@pytest.fixture
def boss_client(tenant, make_user, acme_client):
    boss = make_user(tenant, "boss", is_staff=True, is_superuser=True)
    acme_client.force_login(boss)
    return acme_client


@pytest.fixture
def in_request():
    """Run record() inside a request: in_request(user=..., api_key=...)."""
    tokens = []

    def enter(user=None, **attributes):
        request = RequestFactory().post("/x", HTTP_USER_AGENT="agent/1.0 " + "x" * 700, REMOTE_ADDR="10.1.2.3")
        request.id = "req-0123456789"
        if user is not None:
            request.user = user
        for name, value in attributes.items():
            setattr(request, name, value)
        tokens.append(request_var.set(request))
        return request

    yield enter
    for token in reversed(tokens):
        request_var.reset(token)


def sql(statement: str, params=()) -> list:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


# Recording


def test_record_fills_in_the_request_context_and_leaves_the_hash_to_the_sealing(alice, in_request):
    previous = services.record("test.first")
    in_request(user=alice, api_key=SimpleNamespace(prefix="abcd1234"))

    event = services.record("data.expense.update", target_type="data.expense", target_id=7, target_repr="Taxi",
                            before={"amount": "12.50"}, after={"amount": "13.00"}, data={"reason": "typo"})

    stored = AuditEvent.objects.get(seq=event.seq)
    # Numbered by the sequence, hashed by the sealing into its block (tests/audit/test_audit_blocks.py).
    assert event.seq == previous.seq + 1 and event.txid == previous.txid == stored.txid > 0
    assert event.prev_hash == event.hash == stored.hash == ""
    assert (stored.actor, stored.actor_repr, stored.api_key_prefix) == (alice, "alice", "abcd1234")
    assert (stored.target_type, stored.target_id, stored.target_repr) == ("data.expense", "7", "Taxi")
    assert (stored.before, stored.after, stored.data) == ({"amount": "12.50"}, {"amount": "13.00"}, {"reason": "typo"})
    assert (stored.request_id, stored.ip, stored.result) == ("req-0123456789", "10.1.2.3", "ok")
    assert stored.user_agent.startswith("agent/1.0") and len(stored.user_agent) == 500


def test_record_takes_target_and_actor_from_arguments(alice, make_user, tenant):
    bob = make_user(tenant, "bob")
    event = services.record("rbac.role.update", target=bob, actor=alice, result="denied")
    assert (event.target_type, event.target_id, event.target_repr) == ("auth.user", str(bob.pk), "bob")
    assert (event.actor_repr, event.result, event.request_id, event.ip) == ("alice", "denied", "", None)
    with pytest.raises(ValueError, match="result"):
        services.record("x.y", result="maybe")


def test_record_is_a_single_insert(tenant, alice, in_request):
    in_request(user=alice)
    services.record("test.warm_up")
    with CaptureQueriesContext(connection) as captured:
        services.record("data.expense.view", target_type="data.expense", target_id="1")
    # django-tenants may set the search path before a cursor.
    statements = [q["sql"] for q in captured.captured_queries if not q["sql"].startswith("SET search_path")]
    assert len(statements) == 1 and statements[0].startswith("INSERT") and "RETURNING" in statements[0]


def test_a_change_that_rolls_back_leaves_no_event(tenant):
    before = AuditEvent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.record("data.expense.delete", target_type="data.expense", target_id="1")
        raise RuntimeError("the change failed")
    assert AuditEvent.objects.count() == before
    kept = services.record("data.expense.delete", target_type="data.expense", target_id="2")
    assert AuditEvent.objects.filter(seq__lt=kept.seq).count() == before  # No gap either.
    assert services.verify().ok


def test_orm_refuses_changes_and_deletes(tenant):
    event = services.record("test.event")
    event.action = "test.changed"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(seq=event.seq).update(action="x")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(seq=event.seq).delete()


def test_users_can_be_deleted_and_their_events_keep_the_name(alice):
    event = services.record("test.event", actor=alice)
    alice.delete()
    stored = AuditEvent.objects.get(seq=event.seq)
    assert (stored.actor_id, stored.actor_repr) == (event.actor_id, "alice")
    assert services.verify().ok


def test_events_are_per_tenant(tenant, globex):
    services.record("test.acme_only")
    acme_count = AuditEvent.objects.count()
    with tenant_context(globex):
        assert not AuditEvent.objects.filter(action="test.acme_only").exists()
        event = services.record("test.globex_only")
        assert services.verify().ok
    assert not AuditEvent.objects.filter(action="test.globex_only").exists()
    assert AuditEvent.objects.count() == acme_count
    assert event.seq == sql("SELECT max(seq) FROM globex.audit_auditevent")[0][0]


def test_record_refuses_the_public_schema(db):
    with pytest.raises(RuntimeError, match="tenant's schema"):
        services.record("test.event")


def test_record_returns_the_stored_row(alice, in_request):
    in_request(user=alice, api_key=SimpleNamespace(prefix="k1"))
    event = services.record("data.expense.update", target_type="data.expense", target_id=3, target_repr="Hotel",
                            before={"amount": "1.50"}, after={"spent_on": date(2026, 1, 2)}, result="error")
    stored = AuditEvent.objects.get(seq=event.seq)
    # record() writes one INSERT of its own and builds the instance from it: every column as read back.
    assert not event._state.adding and event.actor == alice
    columns = [field.attname for field in AuditEvent._meta.concrete_fields if field.name != "after"]
    assert {name: getattr(event, name) for name in columns} == {name: getattr(stored, name) for name in columns}
    # As the ORM's save left it: the value given; stored as Django's JSON encoder writes it.
    assert (event.after, stored.after) == ({"spent_on": date(2026, 1, 2)}, {"spent_on": "2026-01-02"})


def test_the_insert_trigger_refuses_another_schema_on_the_search_path(tenant):
    with schema_context(get_public_schema_name()), pytest.raises(Exception, match="first in the search path"), \
            transaction.atomic():
        sql("INSERT INTO acme.audit_auditevent (created_at, actor_repr, api_key_prefix, action, target_type, "
            "target_id, target_repr, data, result, request_id, user_agent) "
            "VALUES (now(), '', '', 'x', '', '', '', '{}', 'ok', '', '')")


# Query and export (AD-4)


def test_filter_events(tenant, alice, make_user):
    bob = make_user(tenant, "bob")
    start = timezone.now()
    services.record("data.expense.delete", target_type="data.expense", target_id="1", actor=alice)
    services.record("data.project.delete", target_type="data.project", target_id="2", actor=bob)
    services.record("data.expense.update", target_type="data.expense", target_id="1", actor=alice)
    recent = services.filter_events(since=start)
    assert [e.action for e in recent] == ["data.expense.delete", "data.project.delete", "data.expense.update"]
    assert services.filter_events(recent, action="data.*.delete").count() == 2
    assert services.filter_events(recent, action="data.expense.?pdate").count() == 1
    assert services.filter_events(recent, action="data.expense.delet").count() == 0
    assert services.filter_events(recent, actor="bob").get().target_type == "data.project"
    assert services.filter_events(recent, target_type="data.expense", target_id=1).count() == 2
    assert services.filter_events(recent, until=start).count() == 0


def test_export_command_jsonl_to_stdout_and_csv_to_a_file(tenant, alice, tmp_path, capsys):
    start = timezone.now()
    for n in range(3):
        services.record("data.expense.update", target_type="data.expense", target_id=str(n), actor=alice,
                        before={"title": f"old {n}", "amount": n}, after={"title": f"new {n} 费用"})
    services.record("auth.login", actor=alice)
    since = start.isoformat()

    output = StringIO()
    call_command("lowcode", "audit", "export", "--tenant", "acme", "--format", "jsonl", "--since", since,
                 "--action", "data.*.update", "--actor", "alice", "--target-type", "data.expense", stdout=output)
    lines = [json.loads(line) for line in output.getvalue().splitlines()]
    assert [line["target_id"] for line in lines] == ["0", "1", "2"]
    assert lines[0]["before"] == {"title": "old 0", "amount": 0} and lines[2]["after"] == {"title": "new 2 费用"}
    assert set(lines[0]) == set(services.EXPORT_COLUMNS) and lines[0]["actor_repr"] == "alice"
    stored = AuditEvent.objects.get(seq=lines[0]["seq"])
    assert lines[0]["hash"] == sql("SELECT audit_event_hash(e) FROM audit_auditevent e WHERE seq = %s",
                                   [stored.seq])[0][0]
    assert len(lines[0]["hash"]) == 64 and lines[0]["created_at"].startswith(str(stored.created_at.date()))

    target = tmp_path / "audit.csv"
    call_command("lowcode", "audit", "export", "--tenant", "acme", "--since", since, "--output", str(target))
    rows = list(csv.DictReader(target.open(encoding="utf-8", newline="")))
    assert [row["action"] for row in rows] == ["data.expense.update"] * 3 + ["auth.login"] + ["audit.export"] * 2
    assert json.loads(rows[0]["before"]) == {"title": "old 0", "amount": 0}
    assert "6 events written" in capsys.readouterr().err
    assert json.loads(rows[-1]["data"])["output"] == str(target)


def test_export_options_are_checked(tenant):
    with pytest.raises(CommandError, match="not an ISO date"):
        call_command("lowcode", "audit", "export", "--tenant", "acme", "--since", "yesterday")
    with pytest.raises(CommandError, match="No tenant"):
        call_command("lowcode", "audit", "verify", "--tenant", "nope")


def test_export_streams_in_blocks(tenant):
    start = timezone.now()
    for n in range(7):
        services.record("test.bulk", data={"n": n})
    seen = []
    blocks = list(services.iter_export(services.filter_events(since=start), "csv", chunk_size=3,
                                       progress=seen.append))
    assert len(blocks) == 3 and seen == [3, 3, 1]
    rows = list(csv.reader(io.StringIO("".join(blocks))))
    assert rows[0] == services.EXPORT_COLUMNS and [json.loads(r[11])["n"] for r in rows[1:]] == list(range(7))
    with pytest.raises(ValueError):
        list(services.iter_export(AuditEvent.objects.all(), "xml"))


# Declared actions


def test_record_refuses_an_undeclared_action(tenant):
    before = AuditEvent.objects.count()
    with pytest.raises(UndeclaredAuditAction, match="made.up.action"):
        services.record("made.up.action")
    with pytest.raises(UndeclaredAuditAction):
        services.record("data.expense.teleport", target_type="data.expense", target_id="1")
    with pytest.raises(TypeError, match="family"):
        services.record(dm_actions.RECORD_UPDATE)  # A family needs its entity: RECORD_UPDATE.of("expense").
    assert AuditEvent.objects.count() == before


def test_actions_are_declared_once_with_the_names_stored_so_far(tenant):
    assert services.record(rbac_actions.ROLE_CREATE).action == "rbac.role.create"
    assert services.record(dm_actions.RECORD_UPDATE.of("expense")).action == "data.expense.update"
    with pytest.raises(ValueError):
        dm_actions.RECORD_UPDATE.of("Expense; drop")
    with pytest.raises(AlreadyRegistered):
        audit_action_registry.register(AuditAction("rbac.role.create", "again"))
    stored = ["auth.login", "auth.logout", "auth.login_failed", "audit.export", "audit.archive", "rbac.role.create",
              "rbac.role.update", "rbac.role.grant", "rbac.role.revoke", "rbac.role.delete", "rbac.membership.assign",
              "rbac.membership.unassign", "rbac.scope.create", "rbac.scope.delete", "rbac.column_rule.set",
              "rbac.department.create", "rbac.department.update", "rbac.department.add_member",
              "rbac.department.remove_member", "rbac.department.delete", "rbac.grant.share", "rbac.grant.unshare",
              "metadata.entity.publish", "metadata.entity.rollback", "dynamic_models.migration.apply",
              *(f"data.expense.{verb}" for verb in ("create", "update", "delete", "restore", "purge",
                                                     "restore_version", "view", "export", "import"))]
    for name in stored:
        assert audit_action_registry.declaration(name)
    assert audit_action_registry.describe("data.expense.update") == "Record changed (expense)"
    assert audit_action_registry.describe("metadata.form.publish") == "Definition published (form)"
    assert audit_action_registry.describe("rbac.role.create") == "Role created"
    assert audit_action_registry.describe("gone.since.long") == "gone.since.long"  # Old events still read.


def test_admin_and_exports_show_the_description(boss_client, tenant):
    services.record(dm_actions.RECORD_DELETE.of("expense"), target_type="data.expense", target_id="5")
    page = boss_client.get("/admin/audit/auditevent/?action=data.expense.delete").content.decode()
    assert "Record deleted (expense)" in page

    response = boss_client.get("/admin/audit/auditevent/export/csv/?action=data.expense.delete")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert [(row["action"], row["action_description"]) for row in rows] == [
        ("data.expense.delete", "Record deleted (expense)")]
    response = boss_client.get("/admin/audit/auditevent/export/jsonl/?action=data.expense.delete")
    lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert list(lines[0]) == services.EXPORT_COLUMNS and lines[0]["action_description"] == "Record deleted (expense)"


# History (AD-3)


def test_history_and_state_at(tenant):
    key = ("data.expense", "42")
    created = services.record("data.expense.create", target_type=key[0], target_id=key[1],
                              after={"title": "Taxi", "amount": 10})
    renamed = services.record("data.expense.update", target_type=key[0], target_id=key[1],
                              before={"title": "Taxi"}, after={"title": "Cab"})
    services.record("data.expense.update", target_type=key[0], target_id="43", before={"title": "Other"})
    repriced = services.record("data.expense.update", target_type=key[0], target_id=key[1],
                               before={"amount": 10}, after={"amount": 12})
    current = {"title": "Cab", "amount": 12, "note": ""}

    assert list(services.history(*key)) == [created, renamed, repriced]
    assert services.state_at(*key, created, current) == {"title": "Taxi", "amount": 10, "note": ""}
    assert services.state_at(*key, renamed, current) == {"title": "Cab", "amount": 10, "note": ""}
    assert services.state_at(*key, repriced.seq, current) == current
    assert services.changed_fields({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}) == ({"b": 2, "c": None},
                                                                                  {"b": 3, "c": 4})


# Hooks (AD-1)


def test_login_logout_and_failed_login_are_recorded(tenant, alice, acme_client):
    start = timezone.now()
    acme_client.post("/accounts/login/", {"username": "alice", "password": "wrong-secret-9"},
                     HTTP_USER_AGENT="pytest-agent")
    acme_client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    acme_client.post("/accounts/logout/")
    connection.set_tenant(tenant)

    failed, login, logout = services.filter_events(since=start, action="auth.*")
    assert (failed.action, failed.result, failed.data, failed.actor) == (
        "auth.login_failed", "denied", {"username": "alice"}, None)
    assert failed.user_agent == "pytest-agent" and failed.ip == "127.0.0.1" and failed.request_id
    assert "wrong-secret-9" not in json.dumps(AuditEvent.objects.filter(seq=failed.seq).values().get(), default=str)
    assert (login.action, login.actor, login.target_id) == ("auth.login", alice, str(alice.pk))
    assert (logout.action, logout.actor) == ("auth.logout", alice)


def test_metadata_publish_rollback_and_schema_migration_are_recorded(tenant):
    from dynamic_models import services as dm_services

    start = timezone.now()
    body = {"key": "thing", "fields": [{"id": "f1abcdef", "key": "name", "type": "text"}]}
    migration = dm_services.publish_body(body, note="first")
    dm_services.publish_body({**body, "fields": [*body["fields"], {"id": "f2abcdef", "key": "size",
                                                                    "type": "integer"}]})
    dm_services.rollback("thing")

    events = list(services.filter_events(since=start))
    actions = [e.action for e in events]
    # Each publish records both, in the order its steps run (the table change may run last, issue 16).
    assert [sorted(actions[n:n + 2]) for n in (0, 2, 4)] == [
        ["dynamic_models.migration.apply", "metadata.entity.publish"]] * 3
    assert actions[-1] == "metadata.entity.rollback"
    applied, published = sorted(events[:2], key=lambda event: event.action)
    assert (published.target_type, published.target_id, published.data["version"], published.data["note"]) == (
        "metadata.entity", "thing", 1, "first")
    assert (applied.target_type, applied.target_id) == ("dynamic_models.schemamigration", str(migration.pk))
    assert applied.data["entity"] == "thing" and applied.data["to"] == 1 and "CREATE TABLE" in applied.data["sql"]
    assert events[-1].data == {"version": 3, "from_version": 2, "to_version": 1}
    assert services.verify().ok


# Admin


def test_admin_lists_events_read_only(boss_client, tenant):
    event = services.record("data.expense.update", target_type="data.expense", target_id="9", target_repr="Taxi")
    page = boss_client.get("/admin/audit/auditevent/?action=data.expense.update")
    assert page.status_code == 200 and "Taxi" in page.content.decode()
    assert "Export CSV" in page.content.decode() and "Verify chain" in page.content.decode()
    assert boss_client.get("/admin/audit/auditevent/?q=9").status_code == 200
    assert boss_client.get(f"/admin/audit/auditevent/?created_at__year={event.created_at.year}").status_code == 200
    detail = boss_client.get(f"/admin/audit/auditevent/{event.seq}/change/")
    assert detail.status_code == 200 and 'name="_save"' not in detail.content.decode()
    assert boss_client.get("/admin/audit/auditevent/add/").status_code == 403
    assert boss_client.post(f"/admin/audit/auditevent/{event.seq}/delete/", {"post": "yes"}).status_code == 403
    assert boss_client.post(f"/admin/audit/auditevent/{event.seq}/change/", {"action": "x"}).status_code == 403
    connection.set_tenant(tenant)
    assert AuditEvent.objects.get(seq=event.seq).action == "data.expense.update"


def test_admin_exports_the_filtered_list_as_a_stream(boss_client, tenant):
    for n in range(3):
        services.record("data.expense.export", target_type="data.expense", target_id=str(n))
    services.record("data.project.export", target_type="data.project", target_id="1")

    response = boss_client.get("/admin/audit/auditevent/export/csv/?action=data.expense.export")
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert [row["target_id"] for row in rows] == ["0", "1", "2"]

    response = boss_client.get("/admin/audit/auditevent/export/jsonl/?target_type=data.project")
    lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert [line["action"] for line in lines] == ["data.project.export"]

    connection.set_tenant(tenant)
    selected = list(AuditEvent.objects.filter(action="data.expense.export").values_list("seq", flat=True)[:2])
    response = boss_client.post("/admin/audit/auditevent/", {"action": "export_jsonl", "_selected_action": selected})
    assert len(b"".join(response.streaming_content).decode().splitlines()) == 2
    connection.set_tenant(tenant)
    assert AuditEvent.objects.filter(action="audit.export").count() == 3


def test_admin_verify_view(boss_client, tenant):
    services.record("test.event")
    page = boss_client.get("/admin/audit/auditevent/verify/").content.decode()
    assert "OK:" in page  # A tampered trail's page: tests/audit/test_audit_integrity.py.


def test_admin_settings_is_a_single_page(boss_client, tenant):
    response = boss_client.get("/admin/audit/auditsettings/")
    assert response.status_code == 302 and response["Location"].endswith("/admin/audit/auditsettings/1/change/")
    response = boss_client.post("/admin/audit/auditsettings/1/change/", {"retention_days": "90",
                                                                           "archive_to_storage": "on"})
    assert response.status_code == 302
    connection.set_tenant(tenant)
    assert AuditSettings.load().retention_days == 90


def test_staff_without_the_permission_cannot_see_events(tenant, make_user, acme_client):
    acme_client.force_login(make_user(tenant, "clerk", is_staff=True))
    assert acme_client.get("/admin/audit/auditevent/").status_code == 403
    assert acme_client.get("/admin/audit/auditevent/export/csv/").status_code == 403
    assert acme_client.get("/admin/audit/auditevent/verify/").status_code == 403


# Alerts (AD-5)


def test_alert_fires_once_per_window_and_actor_with_an_email(tenant, alice, make_user, mailoutbox,
                                                             django_capture_on_commit_callbacks):
    bob = make_user(tenant, "bob")
    AlertRule.objects.create(name="Mass delete", action_pattern="data.*.delete", threshold=3, window_minutes=10,
                             per_actor=True, email_recipients="sec@example.com, boss@example.com")
    AlertRule.objects.create(name="Unrelated", action_pattern="data.*.export", threshold=1)
    for n in range(5):  # Each in its own transaction, as in real life.
        with django_capture_on_commit_callbacks(execute=True):
            services.record("data.expense.delete", target_type="data.expense", target_id=str(n), actor=alice)
            services.record("data.expense.update", actor=alice)
    alert = Alert.objects.get()
    assert (alert.rule.name, alert.subject, alert.count) == ("Mass delete", str(alice.pk), 3)
    assert "alice" in alert.message and "data.*.delete" in alert.message
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["sec@example.com", "boss@example.com"]
    assert "Mass delete" in mailoutbox[0].subject and alert.message in mailoutbox[0].body

    for n in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            services.record("data.project.delete", target_type="data.project", target_id=str(n), actor=bob)
    assert Alert.objects.count() == 2 and len(mailoutbox) == 2


def test_alert_on_any_export_and_again_after_the_window(tenant, alice, mailoutbox,
                                                         django_capture_on_commit_callbacks):
    rule = AlertRule.objects.create(name="Expense export", action_pattern="data.expense.export", threshold=1,
                                    window_minutes=5)
    with django_capture_on_commit_callbacks(execute=True):
        services.record("data.expense.export", actor=alice)
        services.record("data.expense.export", actor=alice)
        services.record("data.expenses.export", actor=alice)
    assert Alert.objects.count() == 1 and not mailoutbox  # No recipients: the banner only.
    Alert.objects.update(created_at=timezone.now() - timedelta(minutes=6))
    with django_capture_on_commit_callbacks(execute=True):
        services.record("data.expense.export", actor=alice)
    assert Alert.objects.filter(rule=rule).count() == 2
    rule.active = False
    rule.save()
    with django_capture_on_commit_callbacks(execute=True):
        services.record("data.expense.export", actor=alice)
    assert Alert.objects.count() == 2


def test_a_changed_alert_rule_takes_effect_at_once(tenant, django_capture_on_commit_callbacks):
    def evaluated(action: str) -> bool:
        """Record `action` twice: the first commit loads the rules if need be; whether the second evaluates alerts."""
        with django_capture_on_commit_callbacks(execute=True):
            services.record(action)
        with django_capture_on_commit_callbacks() as callbacks:
            services.record(action)
        return bool(callbacks)

    services.forget_rules()
    with CaptureQueriesContext(connection) as captured:
        services.record("data.expense.delete")  # Rules not loaded yet: never loaded by record() itself.
    assert [q["sql"].split()[0] for q in captured.captured_queries if not q["sql"].startswith("SET")] == ["INSERT"]
    assert not evaluated("data.expense.delete")  # No rule to count it for: nothing runs after the commit.
    rule = AlertRule.objects.create(name="Deletes", action_pattern="data.*.delete", threshold=1)
    assert evaluated("data.expense.delete") and Alert.objects.filter(rule=rule).count() == 1
    assert not evaluated("data.expense.export")
    rule.action_pattern = "data.*.export"
    rule.save()
    assert evaluated("data.expense.export") and not evaluated("data.expense.delete")
    rule.delete()
    assert not evaluated("data.expense.export")


def test_no_alert_for_a_change_that_rolls_back(tenant, django_capture_on_commit_callbacks):
    AlertRule.objects.create(name="Any delete", action_pattern="data.*.delete", threshold=1)
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError), \
            transaction.atomic():
        services.record("data.expense.delete")
        raise RuntimeError
    assert not callbacks and not Alert.objects.exists()


def test_banner_shows_unacknowledged_alerts_until_acknowledged(boss_client, tenant, settings, tmp_path):
    # The project's templates/admin/base_site.html holds these lines (see audit/templatetags/audit_alerts.py).
    (tmp_path / "admin").mkdir()
    (tmp_path / "admin" / "base_site.html").write_text(BANNER_TEMPLATE)
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}]
    rule = AlertRule.objects.create(name="Mass delete", action_pattern="data.*.delete", threshold=1)
    alert = Alert.objects.create(rule=rule, message="Mass delete: 60 deletes by frank", count=60)

    page = boss_client.get("/admin/").content.decode()
    assert 'id="audit-alerts-banner"' in page and "Mass delete: 60 deletes by frank" in page
    assert 'id="audit-alerts-banner"' in boss_client.get("/admin/auth/user/").content.decode()

    response = boss_client.post("/admin/audit/alert/", {"action": "acknowledge", "_selected_action": [alert.pk]})
    assert response.status_code == 302
    assert 'id="audit-alerts-banner"' not in boss_client.get("/admin/").content.decode()
    connection.set_tenant(tenant)
    alert.refresh_from_db()
    assert alert.acknowledged_by.username == "boss" and alert.acknowledged_at is not None


def test_banner_is_not_shown_to_non_staff_or_in_public(tenant, alice):
    from django.template import Context, Template

    rule = AlertRule.objects.create(name="r", action_pattern="*", threshold=1)
    Alert.objects.create(rule=rule, message="m")
    template = Template("{% load audit_alerts %}{% audit_alerts %}")
    assert template.render(Context({"request": SimpleNamespace(user=alice)})) == ""
    alice.is_staff = alice.is_superuser = True
    assert "audit-alerts-banner" in template.render(Context({"request": SimpleNamespace(user=alice)}))
    with schema_context(get_public_schema_name()):
        assert template.render(Context({"request": SimpleNamespace(user=alice)})) == ""


# Retention (AD-5); the rest of it is in tests/audit/test_audit_integrity.py


def test_retention_task_fans_out_per_tenant(tenant, monkeypatch):
    queued = []
    monkeypatch.setattr(tasks.apply_retention, "delay",
                        lambda: queued.append(connection.schema_name) or SimpleNamespace(id=f"id-{len(queued)}"))
    with schema_context(get_public_schema_name()):
        summary = tasks.apply_retention()
    assert {"acme", "globex"} <= set(queued) and get_public_schema_name() not in queued
    assert summary["queued"]["acme"].startswith("id-")
    assert tasks.apply_retention() == {"schema": "acme", "removed": 0}
    assert django_settings.CELERY_BEAT_SCHEDULE["audit-retention"]["task"] == "audit.apply_retention"
