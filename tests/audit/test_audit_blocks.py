"""Audit without a tenant-wide lock (issue 16, finding 5): events hashed when sealed into blocks.

Writers never wait for each other (tests/audit/test_audit_integrity.py, concurrent inserts); the
sealing takes the events of the transactions that have ended, so one still running holds the newer
events back until it ends, and `verify` reports them as not sealed yet meanwhile.
"""

import hashlib
import threading
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django_tenants.utils import get_public_schema_name, schema_context, tenant_context

from audit import services, tasks
from audit.models import AuditBlock, AuditEvent
from tests.database_admin import admin_connection, as_superuser, reset_trail

pytestmark = pytest.mark.usefixtures("test_audit_actions")


@pytest.fixture
def trail(committed_acme):
    reset_trail("acme")
    with tenant_context(committed_acme):
        yield committed_acme
    reset_trail("acme")


def test_a_running_transaction_holds_back_the_sealing_of_newer_events_until_it_ends(trail):
    before = services.record("test.before")
    started, release = threading.Event(), threading.Event()

    def hold_open():
        try:
            with tenant_context(trail), transaction.atomic():
                services.record("test.open")
                started.set()
                release.wait(20)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_open)
    holder.start()
    try:
        assert started.wait(10)
        committed = services.record("test.committed")  # Committed, but newer than the open transaction.
        with pytest.raises(RuntimeError), transaction.atomic():
            services.record("test.rolled_back")  # Takes a number it leaves unused.
            raise RuntimeError
        block = services.seal_events()
        assert (block.number, block.count, block.first_seq, block.last_seq) == (1, 1, before.seq, before.seq)
        assert services.seal_events() is None  # Nothing more until the open transaction ends.
        result = services.verify()
        assert result.ok and (result.unsealed, result.unsealed_first_seq) == (1, committed.seq)
        assert "1 newer events (from seq" in result.message and "not sealed into a block yet" in result.message
    finally:
        release.set()
        holder.join(20)

    block = services.seal_events()
    assert block.number == 2 and block.count == 2 and block.prev_hash == AuditBlock.objects.get(number=1).hash
    assert block.last_seq == committed.seq  # The open transaction's event, numbered before it, too.
    result = services.verify()
    assert result.ok and result.unsealed == 0 and (result.blocks, result.count) == (2, 3)
    assert result.head_hash == block.hash


def content_hashes(*events) -> list[str]:
    """Each event's "seq:hash", hashed from its content now."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT e.seq::text || ':' || audit_event_hash(e) FROM audit_auditevent e "
                       "WHERE seq = ANY(%s) ORDER BY seq", [[event.seq for event in events]])
        return [row[0] for row in cursor.fetchall()]


def test_the_sealing_hashes_each_event_into_its_block_and_admin_shows_it(trail, make_user, acme_client):
    """The writer's transaction hashes nothing (issue 16: it cost a tenth of a bare write); the block keeps
    each event's hash, so verify still names a changed one."""
    boss = make_user(trail, "boss", is_staff=True, is_superuser=True)
    acme_client.force_login(boss)
    services.seal_events()  # The user's creation and login.
    events = [services.record("test.event", data={"n": n}) for n in range(3)]
    assert {event.hash for event in events} == {""}
    page = acme_client.get(f"/admin/audit/auditevent/{events[0].seq}/change/").content.decode()
    assert "not sealed yet" in page and services.block_of(events[0]) is None

    block = services.seal_events()
    stored = AuditBlock.objects.get(number=block.number)
    assert stored.event_hashes == content_hashes(*events)
    assert stored.events_hash == hashlib.sha256(",".join(stored.event_hashes).encode()).hexdigest()
    assert services.block_of(events[1]).number == block.number
    assert f"block {block.number}, sealed at" in acme_client.get(f"/admin/audit/auditevent/{events[1].seq}/change/").content.decode()
    assert services.verify().ok

    as_superuser("acme", ("UPDATE audit_auditevent SET data = '{\"n\": 7}' WHERE seq = %s", [events[2].seq]))
    result = services.verify()
    assert (result.bad_seq, result.bad_hashes, result.broken_block) == (events[2].seq, 1, block.number)


def test_blocks_sealed_before_keep_the_hashes_their_events_were_stored_with(trail):
    """Migration 0004 (the guard's upgrade) fills in `event_hashes` of blocks sealed when the insert
    trigger hashed each event (`hash`), from those stored hashes: a change made since is still named."""
    events = [services.record("test.event", data={"n": n}) for n in range(2)]
    block = services.seal_events()
    # As the trail was before: the events hashed on insert, the block without their hashes.
    as_superuser("acme", "UPDATE audit_auditevent e SET hash = audit_event_hash(e)",
                 "UPDATE audit_auditblock SET event_hashes = '{}'",
                 ("UPDATE audit_auditevent SET data = '{\"n\": 5}' WHERE seq = %s", [events[0].seq]))
    with connection.cursor() as cursor:
        cursor.execute("SELECT lowcode_guard.upgrade_audit('acme')")
    stored = AuditBlock.objects.get(number=block.number)
    assert stored.event_hashes == [f"{event.seq}:{AuditEvent.objects.get(seq=event.seq).hash}" for event in events]
    result = services.verify()
    assert (result.bad_seq, result.bad_hashes, result.broken_block) == (events[0].seq, 1, block.number)
    with admin_connection() as admin:  # The blocks' append-only trigger is on again.
        assert admin.execute("SELECT tgenabled FROM pg_trigger WHERE tgname = 'audit_block_protect' "
                             "AND tgrelid = 'acme.audit_auditblock'::regclass").fetchone() == ("O",)


def test_only_the_transactions_of_this_database_hold_back_the_sealing(trail):
    """Another database of the server (another product, a parallel test process) has transactions of
    its own: they write no event here, so they do not hold the sealing back; one here still does."""
    before = services.record("test.before")
    with admin_connection("postgres") as elsewhere, elsewhere.transaction():
        elsewhere.execute("SELECT pg_current_xact_id()")  # Running, with an id, until the block ends.
        after = services.record("test.after")
        block = services.seal_events()
        assert (block.number, block.count, block.first_seq, block.last_seq) == (1, 2, before.seq, after.seq)

        with admin_connection() as here, here.transaction():
            here.execute("SELECT pg_current_xact_id()")
            held = services.record("test.held")
            assert services.seal_events() is None
            assert services.verify().unsealed_first_seq == held.seq
        assert services.seal_events().first_seq == held.seq
    assert services.verify().ok


def test_a_sealer_in_repeatable_read_seals_only_what_its_snapshot_sees(trail):
    """Its later statements keep the transaction's first snapshot: a transaction of this database that
    ends after it (so is no longer listed as running) has events that snapshot does not see, which a
    block ending after that transaction would leave out for good."""
    before = services.record("test.before")
    started, release = threading.Event(), threading.Event()

    def write_then_commit():
        try:
            with tenant_context(trail), transaction.atomic():
                services.record("test.late")
                started.set()
                release.wait(20)
        finally:
            connection.close()

    writer = threading.Thread(target=write_then_commit)
    writer.start()
    try:
        assert started.wait(10)
        services.record("test.committed")  # Newer than the writer and ended: the snapshot's xmax is past both.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor.execute("SELECT count(*) FROM audit_auditevent")  # The snapshot: the writer is running.
            release.set()
            writer.join(20)
            block = services.seal_events()
            assert block is None or block.last_seq == before.seq
    finally:
        release.set()
        writer.join(20)
    services.seal_events()
    result = services.verify()
    assert result.ok and result.unsealed == 0 and result.count == 3


def test_the_seal_command_and_the_task_over_every_tenant(trail):
    assert settings.CELERY_BEAT_SCHEDULE["audit-seal"]["task"] == "audit.seal_events"
    event = services.record("test.event")
    out = StringIO()
    call_command("lowcode", "audit", "seal", "--tenant", "acme", stdout=out)
    assert f"Block 1 sealed: 1 events (seq {event.seq} to {event.seq})." in out.getvalue()
    out = StringIO()
    call_command("lowcode", "audit", "seal", "--tenant", "acme", stdout=out)
    assert "Nothing to seal" in out.getvalue()

    event = services.record("test.event")
    with schema_context(get_public_schema_name()):
        summary = tasks.seal_events()
    assert summary["sealed"]["acme"] == 2 and summary["failed"] == []
    assert AuditBlock.objects.get(number=2).first_seq == event.seq
    services.record("test.event")
    assert tasks.seal_events() == {"schema": "acme", "block": 3}


def test_the_guard_upgrades_a_sealed_trail_again_without_harm(tenant):
    """Migration 0003 runs through the guard, so a trail sealed before it (owned by the owner role) upgrades."""
    def owners():
        with connection.cursor() as cursor:
            cursor.execute("SELECT tableowner FROM pg_tables WHERE schemaname = 'acme' "
                           "AND tablename IN ('audit_auditevent', 'audit_auditblock') "
                           "UNION SELECT proowner::regrole::text FROM pg_proc WHERE pronamespace = 'acme'::regnamespace "
                           "AND proname LIKE 'audit\\_%%'")
            return {row[0] for row in cursor.fetchall()}

    before = owners()
    assert connection.settings_dict["USER"] not in before
    with connection.cursor() as cursor:
        cursor.execute("SELECT lowcode_guard.upgrade_audit('acme')")
    assert owners() == before
    event = services.record("test.event")
    assert event.txid > 0 and event.prev_hash == ""
    with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("INSERT INTO audit_auditblock SELECT * FROM audit_auditblock")
    assert services.verify().ok
