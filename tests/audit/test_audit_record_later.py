"""Audit events sent with the transaction's next round trip (`audit.services.record_later`, issue 16).

Record writes send their event in the same message as the COMMIT or RELEASE SAVEPOINT that follows
(lowcode.db_backend's `send_with_next`), as a statement the session prepared once. Nothing may
change for anyone who reads: the transaction sees its own events, a rollback takes them away, a
failure at the commit fails the commit, and an event lands in the schema it was recorded in, also
after a tenant switch.
"""

import decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context

from audit import services
from audit.models import AlertRule, AuditEvent
from lowcode.db_backend.base import numbered_placeholders
from tests.database_admin import reset_trail

pytestmark = pytest.mark.usefixtures("test_audit_actions")


def _statements_with(queries, *parts: str) -> list[str]:
    return [query["sql"] for query in queries if all(part in query["sql"] for part in parts)]


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements WHERE name LIKE 'lowcode_deferred_%%' ORDER BY name")
        return [name for (name,) in cursor.fetchall()]


def test_the_event_goes_with_the_release_of_the_savepoint_and_is_read_back_at_once(tenant):
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        assert services.record_later("test.later", target_type="x", target_id="1") is None
        assert connection.deferred_writes
    assert not connection.deferred_writes
    # One message: the prepared INSERT's EXECUTE and the RELEASE SAVEPOINT; the INSERT itself is
    # only ever sent to be prepared, once per session.
    assert len(_statements_with(queries.captured_queries, "EXECUTE lowcode_deferred_", "RELEASE SAVEPOINT")) == 1
    assert all(sql.startswith("PREPARE lowcode_deferred_")
               for sql in _statements_with(queries.captured_queries, "INSERT INTO audit_auditevent"))
    stored = AuditEvent.objects.get(target_id="1")
    assert stored.action == "test.later" and stored.txid


def test_a_statement_after_the_event_sees_it_even_on_a_cursor_opened_before(tenant):
    with transaction.atomic(), connection.cursor() as cursor:
        services.record_later("test.later", target_type="x", target_id="2")
        cursor.execute("SELECT count(*) FROM audit_auditevent WHERE target_id = '2'")
        assert cursor.fetchone() == (1,) and not connection.deferred_writes
        services.record_later("test.later", target_type="x", target_id="2")
        assert AuditEvent.objects.filter(target_id="2").count() == 2


def test_an_execute_wrapper_block_ending_meanwhile_leaves_the_event_to_be_sent(tenant):
    """`execute_wrapper()` pops the last wrapper when its block ends, whatever was added after it."""
    seen = []

    def note(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with transaction.atomic():
        with connection.execute_wrapper(note):
            services.record_later("test.later", target_type="x", target_id="7")
        assert AuditEvent.objects.filter(target_id="7").count() == 1
    assert not seen


def test_a_rolled_back_block_takes_its_events_away(tenant):
    with pytest.raises(RuntimeError), transaction.atomic():
        services.record_later("test.later", target_type="x", target_id="3")
        raise RuntimeError
    assert not connection.deferred_writes
    with transaction.atomic():
        services.record_later("test.later", target_type="x", target_id="4")
        with pytest.raises(RuntimeError), transaction.atomic():
            services.record_later("test.later", target_type="x", target_id="3")
            raise RuntimeError
    assert list(AuditEvent.objects.filter(target_id__in=["3", "4"]).values_list("target_id", flat=True)) == ["4"]


def test_an_event_recorded_before_a_tenant_switch_lands_in_its_own_schema(tenant, globex):
    with transaction.atomic():
        AuditEvent.objects.exists()  # The session is on acme's path.
        services.record_later("test.later", target_type="x", target_id="5")
        connection.set_tenant(globex)
        assert not AuditEvent.objects.filter(target_id="5").exists()  # Sent under acme's path first.
        connection.set_tenant(tenant)
        assert AuditEvent.objects.filter(target_id="5").count() == 1


def test_the_prepared_insert_follows_the_tenant_it_is_run_in(tenant, globex):
    """One statement prepared per session, whichever tenant: PostgreSQL plans it again for each path."""
    for schema, target_id in ((tenant, "10"), (globex, "11"), (tenant, "12")):
        connection.set_tenant(schema)
        with transaction.atomic():
            AuditEvent.objects.exists()  # On the tenant's path, so the event waits for the release.
            services.record_later("test.later", target_type="x", target_id=target_id)
    for schema, expected in ((tenant, ["10", "12"]), (globex, ["11"])):
        connection.set_tenant(schema)
        assert sorted(AuditEvent.objects.filter(target_id__in=["10", "11", "12"])
                      .values_list("target_id", flat=True)) == expected
    assert _prepared_statements() == sorted(connection.prepared_writes.values())
    assert len(connection.prepared_writes) <= 2  # The INSERT with and without RETURNING.


def test_outside_a_transaction_the_event_is_written_at_once(committed_acme):
    reset_trail("acme")
    with tenant_context(committed_acme):
        services.record_later("test.later", target_type="x", target_id="6")
        assert not connection.deferred_writes
        assert AuditEvent.objects.filter(target_id="6").exists()
    reset_trail("acme")


def test_an_event_sent_first_in_its_transaction_is_taken_away_by_its_rollback(committed_acme):
    reset_trail("acme")
    with tenant_context(committed_acme):
        services.evaluate_alerts(AuditEvent(action="test.later"))  # Loads the tenant's active rules: none.
        with transaction.atomic():  # The session prepares the INSERT: then nothing else is sent before it.
            AuditEvent.objects.exists()
            services.record_later("test.later", target_type="x", target_id="12")
        AuditEvent.objects.exists()  # The session is on acme's path, outside a transaction.
        with pytest.raises(RuntimeError), transaction.atomic():
            services.record_later("test.later", target_type="x", target_id="13")  # Nothing sent yet.
            assert not AuditEvent.objects.filter(target_id="14").exists()  # Sent first, in the transaction.
            raise RuntimeError
        assert not AuditEvent.objects.filter(target_id="13").exists()
    reset_trail("acme")


def test_the_events_numbers_are_read_back_only_for_an_alert_rule(tenant):
    services.evaluate_alerts(AuditEvent(action="test.later"))  # Loads the tenant's active rules: none.
    with transaction.atomic():
        services.record_later("test.later", target_type="x", target_id="8")
        assert "RETURNING" not in connection.deferred_writes[0][0]
    rule = AlertRule.objects.create(name="Later", action_pattern="test.*", threshold=1000)  # Forgets the rules.
    with transaction.atomic():
        services.record_later("test.later", target_type="x", target_id="9")
        assert "RETURNING" in connection.deferred_writes[0][0]
        _savepoints, evaluate_alerts, _robust = connection.run_on_commit[-1]
    event = evaluate_alerts.args[1]  # Once sent, the alerts after the commit get the event with its number.
    assert event.seq == AuditEvent.objects.get(target_id="9").seq
    rule.delete()  # And forgets the rules again: nothing of this test stays cached.


def test_the_commit_carries_the_event_and_a_failed_event_fails_the_commit(committed_acme, make_user):
    reset_trail("acme")
    user = make_user(committed_acme, "carol")
    with tenant_context(committed_acme):
        with CaptureQueriesContext(connection) as queries, transaction.atomic():
            user.first_name = "Carol"
            user.save(update_fields=["first_name"])
            services.record_later("test.later", target=user)
        assert _statements_with(queries.captured_queries, "EXECUTE lowcode_deferred_", "COMMIT")
        assert AuditEvent.objects.get(target_id=str(user.pk)).txid

        # A new session has prepared nothing: the statement is prepared again.
        connection.close()
        with transaction.atomic():
            AuditEvent.objects.exists()
            services.record_later("test.later", target=user)
        assert AuditEvent.objects.filter(target_id=str(user.pk)).count() == 2
        assert _prepared_statements() == sorted(connection.prepared_writes.values())

        # A write that fails when it is sent with the COMMIT: the commit fails, nothing of it stays.
        with pytest.raises(DatabaseError), transaction.atomic():
            user.first_name = "Caroline"
            user.save(update_fields=["first_name"])
            connection.send_with_next("INSERT INTO audit_auditevent (seq) VALUES (%s)", [1])
        assert get_user_model().objects.get(pk=user.pk).first_name == "Carol"
        assert not connection.deferred_writes
    reset_trail("acme")


def test_placeholders_are_numbered_for_prepare():
    assert numbered_placeholders("SELECT %s, '100%%', %s") == "SELECT $1, '100%', $2"


def test_the_values_come_back_as_they_were_written_whatever_their_characters(tenant, make_user):
    """The deferred INSERT's values are quoted by libpq (strings and JSON) and by psycopg's adapters
    (the rest): quotes, backslashes, newlines and other scripts round-trip, None is SQL NULL."""
    alice = make_user(tenant, "alice")
    tricky = "O'Brien \\ \"quoted\" 費用\n); DROP TABLE audit_auditevent; --"
    with transaction.atomic():
        services.record_later("test.later", target_type="x", target_id="quoting", target_repr=tricky, actor=alice,
                              after={"title": tricky, "amount": "12.50", "nested": [1, None, True]},
                              data={"it's": "\\n is not a newline"})
    stored = AuditEvent.objects.get(target_id="quoting")
    assert (stored.target_repr, stored.actor_id, stored.actor_repr) == (tricky, alice.pk, "alice")
    assert stored.after == {"title": tricky, "amount": "12.50", "nested": [1, None, True]}
    assert stored.data == {"it's": "\\n is not a newline"}
    assert stored.before is None and AuditEvent.objects.filter(target_id="quoting", before__isnull=True).exists()
    assert abs((timezone.now() - stored.created_at).total_seconds()) < 60
    # A type without a quick path of its own goes through psycopg's adapters.
    assert connection._literal(decimal.Decimal("1.50")) == b"1.50"
