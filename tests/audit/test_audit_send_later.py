"""Audit events sent with the transaction's next round trip (`record(send_later=True)`, issue 16).

Record writes send their event in the same message as the COMMIT or RELEASE SAVEPOINT that follows
(lowcode.db_backend's `send_with_next`). Nothing may change for anyone who reads: the transaction
sees its own events, a rollback takes them away, a failure at the commit fails the commit, and an
event lands in the schema it was recorded in.
"""

import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from audit import services
from audit.models import AuditEvent
from tests.database_admin import reset_trail

pytestmark = pytest.mark.usefixtures("test_audit_actions")


def _statements_with(queries, *parts: str) -> list[str]:
    return [query["sql"] for query in queries if all(part in query["sql"] for part in parts)]


def test_the_event_goes_with_the_release_of_the_savepoint_and_is_read_back_at_once(tenant):
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        event = services.record("test.later", target_type="x", target_id="1", send_later=True)
        assert event.seq is None and connection.deferred_writes
    assert not connection.deferred_writes
    # One message: the INSERT and the RELEASE SAVEPOINT, and no INSERT sent alone.
    assert len(_statements_with(queries.captured_queries, "INSERT INTO audit_auditevent", "RELEASE SAVEPOINT")) == 1
    assert len(_statements_with(queries.captured_queries, "INSERT INTO audit_auditevent")) == 1
    stored = AuditEvent.objects.get(seq=event.seq)
    assert (stored.action, stored.txid, stored.hash) == ("test.later", event.txid, event.hash) and len(event.hash) == 64


def test_a_statement_after_the_event_sees_it_even_on_a_cursor_opened_before(tenant):
    with transaction.atomic(), connection.cursor() as cursor:
        services.record("test.later", target_type="x", target_id="2", send_later=True)
        cursor.execute("SELECT count(*) FROM audit_auditevent WHERE target_id = '2'")
        assert cursor.fetchone() == (1,) and not connection.deferred_writes
        services.record("test.later", target_type="x", target_id="2", send_later=True)
        assert AuditEvent.objects.filter(target_id="2").count() == 2


def test_an_execute_wrapper_block_ending_meanwhile_leaves_the_event_to_be_sent(tenant):
    """`execute_wrapper()` pops the last wrapper when its block ends, whatever was added after it."""
    seen = []

    def note(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with transaction.atomic():
        with connection.execute_wrapper(note):
            services.record("test.later", target_type="x", target_id="7", send_later=True)
        assert AuditEvent.objects.filter(target_id="7").count() == 1
    assert not seen


def test_a_rolled_back_block_takes_its_events_away(tenant):
    with pytest.raises(RuntimeError), transaction.atomic():
        services.record("test.later", target_type="x", target_id="3", send_later=True)
        raise RuntimeError
    assert not connection.deferred_writes
    with transaction.atomic():
        services.record("test.later", target_type="x", target_id="4", send_later=True)
        with pytest.raises(RuntimeError), transaction.atomic():
            services.record("test.later", target_type="x", target_id="3", send_later=True)
            raise RuntimeError
    assert list(AuditEvent.objects.filter(target_id__in=["3", "4"]).values_list("target_id", flat=True)) == ["4"]


def test_an_event_recorded_before_a_tenant_switch_lands_in_its_own_schema(tenant, globex):
    with transaction.atomic():
        AuditEvent.objects.exists()  # The session is on acme's path.
        services.record("test.later", target_type="x", target_id="5", send_later=True)
        connection.set_tenant(globex)
        assert not AuditEvent.objects.filter(target_id="5").exists()  # Sent under acme's path first.
        connection.set_tenant(tenant)
        assert AuditEvent.objects.filter(target_id="5").count() == 1


def test_outside_a_transaction_the_event_is_written_at_once(committed_acme):
    reset_trail("acme")
    with tenant_context(committed_acme):
        event = services.record("test.later", target_type="x", target_id="6", send_later=True)
        assert event.seq is not None and not connection.deferred_writes
    reset_trail("acme")


def test_the_commit_carries_the_event_and_a_failed_event_fails_the_commit(committed_acme, make_user):
    reset_trail("acme")
    user = make_user(committed_acme, "carol")
    with tenant_context(committed_acme):
        with CaptureQueriesContext(connection) as queries, transaction.atomic():
            user.first_name = "Carol"
            user.save(update_fields=["first_name"])
            event = services.record("test.later", target=user, send_later=True)
        assert _statements_with(queries.captured_queries, "INSERT INTO audit_auditevent", "COMMIT")
        assert event.seq is not None and AuditEvent.objects.get(seq=event.seq).txid == event.txid

        # A write that fails when it is sent with the COMMIT: the commit fails, nothing of it stays.
        with pytest.raises(DatabaseError), transaction.atomic():
            user.first_name = "Caroline"
            user.save(update_fields=["first_name"])
            connection.send_with_next("INSERT INTO audit_auditevent (seq) VALUES (%s)", [event.seq])
        assert get_user_model().objects.get(pk=user.pk).first_name == "Carol"
        assert not connection.deferred_writes
    reset_trail("acme")
