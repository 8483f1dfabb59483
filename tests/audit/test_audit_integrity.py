"""An audit trail the application cannot rewrite (issue 9, finding 5; AD-2, AD-5).

Every test connects as the runtime role, as `make run` does: not a superuser, not the owner of
the trails. The attacks of finding 5 fail for it. What the database superuser can still do (tests
play it through tests.database_admin) is found by `lowcode audit verify` against the checkpoints
signed with a key the database never sees.

Since issue 16 the chain is one of blocks (sealed by `services.seal_events()`), not of events: tests
that used to find a changed or removed event by its broken link find it by its block, and
checkpoints record blocks (tests/audit/test_audit_blocks.py tests the sealing itself).
"""

import json
import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, schema_context, tenant_context

from audit import services, tasks
from audit.models import AuditBlock, AuditEvent, AuditSettings
from tests.database_admin import as_superuser, reset_trail

#: Tests of the trail itself record `test.*` actions besides the declared ones.
pytestmark = pytest.mark.usefixtures("test_audit_actions")


def sql(statement: str, params=()) -> list:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def old_event(days: int, action: str = "test.old") -> AuditEvent:
    return AuditEvent.objects.create(action=action, created_at=timezone.now() - timedelta(days=days))


def set_retention(days: int | None, archive: bool = True) -> None:
    config = AuditSettings.load()
    config.retention_days, config.archive_to_storage = days, archive
    config.save()


def verify_command() -> str:
    """`lowcode audit verify --tenant acme`'s output; CommandError (exit code 1) if tampered."""
    output = StringIO()
    call_command("lowcode", "audit", "verify", "--tenant", "acme", stdout=output)
    return output.getvalue()


@pytest.fixture
def empty_trail(tenant):
    """acme with an empty committed trail and no checkpoints, for a test in a rolled-back transaction."""
    reset_trail("acme")  # Before the test's transaction touches the table: nothing waits on it.
    yield tenant
    with schema_context("acme"):
        services.forget_checkpoints()


@pytest.fixture
def trail(committed_acme):
    """acme for a test whose events commit (as the app's would); the trail is emptied before and after."""
    reset_trail("acme")
    with tenant_context(committed_acme):
        yield committed_acme
    reset_trail("acme")


# The runtime role


def test_the_application_connects_as_the_runtime_role(tenant):
    (user, superuser, owner, member), = sql(
        "SELECT current_user, rolsuper, tableowner, pg_has_role(current_user, tableowner, 'MEMBER') "
        "FROM pg_roles, pg_tables WHERE rolname = current_user AND schemaname = 'acme' "
        "AND tablename = 'audit_auditevent'")
    assert not superuser and owner != user and not member
    assert sql("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'acme'") == [(owner,)]
    assert sorted(sql("SELECT privilege_type FROM information_schema.table_privileges WHERE grantee = current_user "
                      "AND table_schema = 'acme' AND table_name = 'audit_auditevent'")) == [("INSERT",), ("SELECT",)]
    # Blocks are written by the owner's guard only.
    assert sql("SELECT tableowner FROM pg_tables WHERE schemaname = 'acme' AND tablename = 'audit_auditblock'") == [
        (owner,)]
    assert sql("SELECT privilege_type FROM information_schema.table_privileges WHERE grantee = current_user "
               "AND table_schema = 'acme' AND table_name = 'audit_auditblock'") == [("SELECT",)]


BYPASSES = {
    "retention setting and DELETE": ["SET LOCAL lowcode.audit_retention = 'on'",
                                     "DELETE FROM audit_auditevent WHERE seq = {seq}"],
    "replica role and UPDATE": ["SET LOCAL session_replication_role = replica",
                                "UPDATE audit_auditevent SET action = 'forged' WHERE seq = {seq}"],
    "UPDATE": ["UPDATE audit_auditevent SET action = 'forged' WHERE seq = {seq}"],
    "DISABLE TRIGGER": ["ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_protect"],
    "DISABLE TRIGGER ALL": ["ALTER TABLE audit_auditevent DISABLE TRIGGER ALL"],
    "TRUNCATE with the flush setting": ["SET LOCAL lowcode.audit_flush = 'on'", "TRUNCATE audit_auditevent"],
    "DROP TABLE": ["DROP TABLE audit_auditevent"],
    "ALTER TABLE OWNER": ["ALTER TABLE audit_auditevent OWNER TO CURRENT_USER"],
    "replace the protecting function": [
        "CREATE OR REPLACE FUNCTION audit_event_protect() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RETURN OLD; END $$"],
    "rename the schema to put another in its place": ["ALTER SCHEMA acme RENAME TO acme_original"],
    "DROP SCHEMA": ["DROP SCHEMA acme CASCADE"],
    "become the owner": ["SET ROLE {owner}"],
    "drop the public schema through the guard": ["SELECT lowcode_guard.drop_tenant_schema('public')"],
    "INSERT a block": ["INSERT INTO audit_auditblock VALUES (99, 0, 1, 1, {seq}, {seq}, 'x', '', now(), 'x')"],
    "DELETE blocks": ["DELETE FROM audit_auditblock"],
    "replace the block hash": [
        "CREATE OR REPLACE FUNCTION audit_block_hash(b audit_auditblock) RETURNS text LANGUAGE sql AS $$ SELECT '' $$"],
}


@pytest.mark.parametrize("statements", BYPASSES.values(), ids=BYPASSES.keys())
def test_every_bypass_fails_for_the_runtime_role(tenant, statements):
    event = services.record("test.event")
    (owner,), = sql("SELECT tableowner FROM pg_tables WHERE schemaname = 'acme' AND tablename = 'audit_auditevent'")
    with pytest.raises(DatabaseError, match="permission denied|must be owner|not a tenant's"), transaction.atomic():
        for statement in statements:
            sql(statement.format(seq=event.seq, owner=owner))
    assert AuditEvent.objects.get(seq=event.seq).action == "test.event"
    assert sql("SELECT DISTINCT tgenabled FROM pg_trigger WHERE tgrelid = 'audit_auditevent'::regclass") == [("O",)]
    assert services.verify().ok


def test_the_guard_purges_only_old_events_anchored_in_the_trail(trail):
    def purge(block):
        with transaction.atomic():
            return sql("SELECT lowcode_guard.purge_audit('acme', %s)", [block])[0][0]

    for days in (50, 40):
        old_event(days)
    old_block = services.seal_events()
    services.record("test.recent")
    recent_block = services.seal_events()
    with pytest.raises(DatabaseError, match="keeps its audit events forever"):
        purge(old_block.number)
    set_retention(30)
    with pytest.raises(DatabaseError, match="newer than the retention cutoff"):
        purge(recent_block.number)
    with pytest.raises(DatabaseError, match="no audit.archive event records block"):
        purge(old_block.number)

    # The runtime role may append an archive event of its own making: the guard then purges, but
    # no signed retention checkpoint covers it, and verify says so.
    services.record(services.ARCHIVE_ACTION, data={"last_block": old_block.number, "last_block_hash": old_block.hash})
    assert purge(old_block.number) == 2
    result = services.verify()
    assert not result.ok and result.anchor_block is None and result.broken_block == old_block.number
    with pytest.raises(CommandError, match=f"first broken block is {old_block.number} of 2: 1 blocks whose events"):
        verify_command()


def test_retention_runs_outside_transactions_only(tenant):
    set_retention(1)
    with pytest.raises(RuntimeError, match="outside a transaction"):
        services.apply_retention()


# Concurrent writers


def _record_in_thread(tenant, actions, started=None, release=None, done=None):
    try:
        with tenant_context(tenant), transaction.atomic():
            for action in actions:
                services.record(action)
            if started is not None:
                started.set()
                release.wait(10)
        if done is not None:
            done.set()
    finally:
        connection.close()


def test_concurrent_inserts_from_two_connections_do_not_wait_and_are_all_sealed(trail):
    # Issue 16: a transaction holding an event no longer makes the other connection's insert wait.
    started, release, done = threading.Event(), threading.Event(), threading.Event()
    first = threading.Thread(target=_record_in_thread, args=(trail, ["test.first"], started, release))
    first.start()
    assert started.wait(10)
    second = threading.Thread(target=_record_in_thread, args=(trail, ["test.second"]), kwargs={"done": done})
    second.start()
    try:
        assert done.wait(10), "the second insert should not wait for the first transaction"
    finally:
        release.set()
        first.join(10)
        second.join(10)

    # Many writers at once.
    threads = [threading.Thread(target=_record_in_thread, args=(trail, [f"test.many{n}"] * 20))
               for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    events = list(AuditEvent.objects.order_by("seq").values_list("seq", "action"))
    assert [action for _seq, action in events if action in ("test.first", "test.second")] == [
        "test.first", "test.second"]  # Numbered in the order they were written.
    assert len([event for event in events if event[1].startswith("test.")]) == 2 + 80
    services.seal_events()
    result = services.verify()
    assert result.ok and result.count == len(events) and result.unsealed == 0
    assert sum(AuditBlock.objects.values_list("count", flat=True)) == len(events)


# Retention (AD-5), through the guard


def read_archive(name: str) -> list[dict]:
    import gzip

    with default_storage.open(name, "rb") as archive:
        return [json.loads(line) for line in gzip.decompress(archive.read()).decode().splitlines()]


@pytest.mark.parametrize("archive", [True, False], ids=["archived", "not archived"])
def test_retention_archives_anchors_and_deletes(trail, archive):
    assert services.apply_retention() is None  # Keep forever by default.
    set_retention(30, archive)
    olds = [old_event(days) for days in (400, 90, 31)]
    old_block = services.seal_events()
    recent = services.record("test.recent")
    services.seal_events()
    later_old = old_event(60)  # In a block after a newer event: kept until that one is old too (no hole).
    services.seal_events()

    result = services.apply_retention()

    assert (result.first_seq, result.last_seq, result.removed) == (olds[0].seq, olds[-1].seq, 3)
    assert result.last_block == old_block.number
    try:
        if archive:
            assert result.file.startswith(f"audit-archive/acme/{olds[0].seq}_{olds[-1].seq}")
            assert [line["seq"] for line in read_archive(result.file)] == [event.seq for event in olds]
        else:
            assert result.file == ""
        assert list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True)) == [
            recent.seq, later_old.seq, result.event.seq]
        assert result.event.data["last_block_hash"] == old_block.hash
        anchor = result.checkpoint
        assert (anchor.kind, anchor.block, anchor.block_hash, anchor.is_valid) == (
            services.Checkpoint.RETENTION, old_block.number, old_block.hash, True)
        # The anchor block stays, without its events; the archive event waits for the next sealing.
        verified = services.verify()
        assert verified.ok and verified.anchor_block == old_block.number and verified.count == 3
        assert verified.unsealed == 1 and verified.first_block == old_block.number
        services.seal_events()
        assert services.verify().ok

        # The superuser removes one more event: its block no longer matches it.
        as_superuser("acme", ("DELETE FROM audit_auditevent WHERE seq = %s", [recent.seq]))
        verified = services.verify()
        assert not verified.ok and verified.broken_block == old_block.number + 1
    finally:
        if result.file:
            default_storage.delete(result.file)


def test_retention_task_runs_in_the_tenant_on_a_worker(trail, celery_worker):
    set_retention(1)
    for days in (5, 3):
        old_event(days)
    services.seal_events()
    services.record("test.recent")
    services.seal_events()
    result = tasks.apply_retention.delay().get(timeout=60)
    try:
        assert result["schema"] == "acme" and result["removed"] == 2
        assert default_storage.exists(result["file"])
        assert list(AuditEvent.objects.values_list("action", flat=True).order_by("seq")) == [
            "test.recent", "audit.archive"]
        assert services.verify().ok
    finally:
        default_storage.delete(result["file"])


# Checkpoints and what the superuser can do


def test_verify_signs_checkpoints_and_reports_a_truncated_tail(trail):
    events = [services.record("test.event", data={"n": n}) for n in range(3)]
    services.seal_events()
    events += [services.record("test.event", data={"n": n}) for n in range(3, 5)]
    head = services.seal_events()
    output = verify_command()
    assert output.startswith("OK: ") and f"Checkpoint of block {head.number} signed" in output
    assert "No new checkpoint" in verify_command()  # Nothing new to anchor.
    (checkpoint,) = services.checkpoints()
    stored = json.loads(default_storage.open(checkpoint.name).read())
    assert stored["block_hash"] == head.hash and stored["schema"] == "acme" and len(stored["signature"]) == 64
    assert checkpoint.is_valid and services.verify().checkpoint == checkpoint

    # The superuser deletes the newest block and its events: the chain that is left is whole, the
    # checkpoint is not.
    as_superuser("acme", ("DELETE FROM audit_auditevent WHERE seq >= %s", [events[3].seq]),
                 ("DELETE FROM audit_auditblock WHERE number = %s", [head.number]))
    result = services.verify()
    assert result.broken_block is None and result.truncated and not result.ok
    with pytest.raises(CommandError, match=f"truncated tail: the newest checkpoint .* records block "
                                           f"{head.number}, which the trail no longer holds") as error:
        verify_command()
    assert error.value.returncode == 1
    with pytest.raises(services.TrailTampered):  # And no checkpoint vouches for it.
        services.write_checkpoint()

    # New events make a new block of the removed number: it now hashes differently.
    for n in range(3):
        services.record("test.replacement", data={"n": n})
    assert services.seal_events().number == head.number
    with pytest.raises(CommandError, match=f"re-chained forgery: blocks {head.number} no longer hash"):
        verify_command()


def rechain_from(number: int) -> str:
    """SQL (for the superuser) that recomputes every block from `number` on, as the sealing would."""
    return f"""
    DO $$
    DECLARE n bigint;
    BEGIN
        FOR n IN SELECT number FROM audit_auditblock WHERE number >= {int(number)} ORDER BY number LOOP
            UPDATE audit_auditblock SET prev_hash = COALESCE(
                (SELECT hash FROM audit_auditblock WHERE number < n ORDER BY number DESC LIMIT 1), '') WHERE number = n;
            UPDATE audit_auditblock b SET (count, first_seq, last_seq, event_hashes, events_hash) = (
                SELECT * FROM audit_events_digest(b.txid_from, b.txid_to)) WHERE number = n;
            UPDATE audit_auditblock b SET hash = audit_block_hash(b) WHERE number = n;
        END LOOP;
    END
    $$"""


def test_verify_reports_a_re_chained_forgery(trail, make_user, acme_client):
    events = [services.record("data.expense.update", target_type="data.expense", target_id="7",
                              after={"amount": n}) for n in range(4)]
    first = services.write_checkpoint()
    [services.record("test.event", data={"n": n}) for n in range(2)]
    second = services.write_checkpoint()
    assert (first.block, second.block) == (1, 2)

    as_superuser("acme", ("UPDATE audit_auditevent SET after = '{\"amount\": 1000}' WHERE seq = %s",
                          [events[1].seq]),
                 rechain_from(first.block))

    result = services.verify()
    assert result.bad_seq is None and result.broken_block is None  # Internally consistent.
    assert result.bad_blocks == result.bad_links == 0
    assert result.forged_blocks == (first.block, second.block) and not result.ok
    with pytest.raises(CommandError, match=f"re-chained forgery: blocks {first.block}, {second.block}") as error:
        verify_command()
    assert error.value.returncode == 1
    boss = make_user(trail, "boss", is_staff=True, is_superuser=True)
    acme_client.force_login(boss)
    assert "re-chained forgery" in acme_client.get("/admin/audit/auditevent/verify/").content.decode()


def test_verify_reports_events_changed_or_removed_with_triggers_off(trail):
    events = [services.record("test.event", data={"n": n}) for n in range(3)]
    first = services.seal_events()
    events += [services.record("test.event", data={"n": n}) for n in range(3, 6)]
    second = services.seal_events()
    as_superuser("acme", ("UPDATE audit_auditevent SET data = '{\"n\": 99}' WHERE seq = %s", [events[1].seq]))
    result = services.verify()
    assert (result.bad_seq, result.bad_hashes, result.broken_block) == (events[1].seq, 1, first.number)
    with pytest.raises(CommandError, match=f"the first: seq {events[1].seq}"):
        verify_command()
    # The changed event's hash rewritten in its block: the block no longer matches its events_hash.
    # Another one removed: neither does its block.
    as_superuser("acme", ("UPDATE audit_auditblock b SET event_hashes = (SELECT event_hashes FROM "
                          "audit_events_digest(b.txid_from, b.txid_to)) WHERE number = %s", [first.number]),
                 ("DELETE FROM audit_auditevent WHERE seq = %s", [events[4].seq]))
    result = services.verify()
    assert (result.bad_seq, result.broken_block, result.bad_blocks, result.bad_links) == (None, first.number, 2, 0)
    with pytest.raises(CommandError, match=f"first broken block is {first.number} of 2: 2 blocks"):
        verify_command()
    # The start removed without a retention run.
    as_superuser("acme", ("DELETE FROM audit_auditevent WHERE seq <= %s", [events[2].seq]),
                 ("DELETE FROM audit_auditblock WHERE number = %s", [first.number]))
    result = services.verify()
    assert not result.start_anchored and result.broken_block == second.number
    assert "follows no archived block" in result.message


def test_a_changed_copied_or_unreadable_checkpoint_is_reported(trail, settings):
    services.record("test.event")
    good = services.write_checkpoint()
    data = json.loads(default_storage.open(good.name).read())
    directory = services.checkpoint_dir()
    default_storage.save(f"{directory}/block-{good.block:012d}-changed.json",
                         ContentFile(json.dumps({**data, "block_hash": "0" * 64}).encode()))
    globex_copy = services.Checkpoint(database=good.database, schema="globex", kind=good.kind,
                                      block=good.block, block_hash=good.block_hash,
                                      created_at=good.created_at).signed()  # Signed, but for another tenant.
    default_storage.save(f"{directory}/block-{good.block:012d}-copied.json",
                         ContentFile(globex_copy.to_json().encode()))
    default_storage.save(f"{directory}/block-{good.block:012d}-unreadable.json", ContentFile(b"{not json"))
    # A checkpoint of the trails chained event by event (before blocks) is no checkpoint any more.
    default_storage.save(f"{directory}/{good.block:012d}-head.json", ContentFile(b"{}"))
    result = services.verify()
    assert not result.ok and result.broken_block is None and len(result.bad_checkpoints) == 3
    assert good.name not in result.bad_checkpoints and "checkpoints with a bad signature" in result.message

    for name in result.bad_checkpoints:
        default_storage.delete(name)
    assert services.verify().ok
    default_storage.delete(f"{directory}/{good.block:012d}-head.json")
    settings.AUDIT_CHECKPOINT_KEY = "another key"
    assert services.verify().bad_checkpoints == (good.name,)


def test_checkpoints_record_committed_events_only(empty_trail):
    services.record("test.uncommitted")
    assert services.write_checkpoint() is None  # Inside a transaction: nothing written.
    assert services.checkpoints() == []
    assert "No new checkpoint" in verify_command()


def test_checkpoint_task_fans_out_and_checkpoints_each_tenant(trail, monkeypatch):
    assert settings.CELERY_BEAT_SCHEDULE["audit-checkpoint"]["task"] == "audit.write_checkpoints"
    queued = []
    monkeypatch.setattr(tasks.write_checkpoints, "delay",
                        lambda: queued.append(connection.schema_name) or type("Result", (), {"id": "x"}))
    with schema_context(get_public_schema_name()):
        assert tasks.write_checkpoints()["queued"].keys() >= {"acme", "globex"}
    assert get_public_schema_name() not in queued

    event = services.record("test.event")
    summary = tasks.write_checkpoints()  # Seals the event first.
    block = AuditBlock.objects.get()
    assert (block.first_seq, block.last_seq) == (event.seq, event.seq)
    assert summary["ok"] and summary["checkpoint"] == f"{services.checkpoint_dir()}/block-{block.number:012d}-head.json"
    as_superuser("acme", ("UPDATE audit_auditevent SET action = 'forged' WHERE seq = %s", [event.seq]))
    assert tasks.write_checkpoints()["ok"] is False
    out = StringIO()
    with pytest.raises(CommandError, match="TAMPERED"):
        call_command("lowcode", "audit", "checkpoint", "--tenant", "acme", stdout=out)


def test_flush_leaves_the_trail_alone(trail):
    event = services.record("test.committed")
    block = services.seal_events()
    for table in ("audit_auditevent", "audit_auditblock"):
        with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
            sql(f"TRUNCATE {table}")
    call_command("flush", interactive=False, verbosity=0)
    assert list(AuditEvent.objects.values_list("seq", flat=True)) == [event.seq]
    assert list(AuditBlock.objects.values_list("hash", flat=True)) == [block.hash]
    assert services.verify().ok


def test_deleting_a_tenant_drops_its_trail_and_forgets_its_checkpoints(transactional_db, tmp_path):
    from django_tenants.utils import schema_exists

    from lowcode.tenancy import services as tenancy

    tenant = tenancy.create_tenant(schema_name="audit_gone", name="Gone", domain="audit-gone.localhost")
    try:
        with tenant_context(tenant):
            services.record("test.event")
            assert services.write_checkpoint() is not None
        tenancy.delete_tenant(tenant, export_dir=tmp_path)
    finally:
        if schema_exists("audit_gone"):
            tenancy.delete_tenant(tenant, export_dir=tmp_path)
    assert not schema_exists("audit_gone")
    with schema_context("audit_gone"):
        assert services.checkpoints() == []
