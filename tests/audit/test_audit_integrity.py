"""An audit trail the application cannot rewrite (issue 9, finding 5; AD-2, AD-5).

Every test connects as the runtime role, as `make run` does: not a superuser, not the owner of
the trails. The attacks of finding 5 fail for it. What the database superuser can still do (tests
play it through tests.database_admin) is found by `lowcode audit verify` against the checkpoints
signed with a key the database never sees.
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
from audit.models import AuditEvent, AuditSettings
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


def test_the_guard_purges_only_old_events_anchored_in_the_trail(empty_trail):
    def purge(seq):
        with transaction.atomic():
            return sql("SELECT lowcode_guard.purge_audit('acme', %s)", [seq])[0][0]

    olds = [old_event(days) for days in (50, 40)]
    recent = services.record("test.recent")
    with pytest.raises(DatabaseError, match="keeps its audit events forever"):
        purge(olds[-1].seq)
    set_retention(30)
    with pytest.raises(DatabaseError, match="newer than the retention cutoff"):
        purge(recent.seq)
    with pytest.raises(DatabaseError, match="no audit.archive event records seq"):
        purge(olds[-1].seq)

    # The runtime role may append an archive event of its own making: the guard then purges, but
    # no signed retention checkpoint covers it, and verify says so.
    services.record(services.ARCHIVE_ACTION, data={"last_seq": olds[-1].seq, "last_hash": olds[-1].hash})
    assert purge(olds[-1].seq) == 2
    result = services.verify()
    assert not result.ok and not result.start_anchored and result.broken_seq == recent.seq
    with pytest.raises(CommandError, match=f"the first event \\(seq {recent.seq}\\) follows no archived event"):
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


def test_concurrent_inserts_from_two_connections_keep_the_chain(trail):
    # A transaction holding an event makes the other connection's insert wait for its commit.
    started, release, done = threading.Event(), threading.Event(), threading.Event()
    first = threading.Thread(target=_record_in_thread, args=(trail, ["test.first"], started, release))
    first.start()
    assert started.wait(10)
    second = threading.Thread(target=_record_in_thread, args=(trail, ["test.second"]), kwargs={"done": done})
    second.start()
    assert not done.wait(0.5), "the second insert should wait for the first transaction"
    release.set()
    first.join(10)
    second.join(10)
    assert done.is_set()

    # Many writers at once.
    threads = [threading.Thread(target=_record_in_thread, args=(trail, [f"test.many{n}"] * 20))
               for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    events = list(AuditEvent.objects.order_by("seq").values_list("seq", "action", "prev_hash", "hash"))
    result = services.verify()
    first_two = [action for _seq, action, _prev, _hash in events if action in ("test.first", "test.second")]
    assert first_two == ["test.first", "test.second"]
    assert len([event for event in events if event[1].startswith("test.")]) == 2 + 80
    assert [seq for seq, *_rest in events] == list(range(events[0][0], events[0][0] + len(events)))
    assert all(prev == before[3] for (*_a, prev, _h), before in zip(events[1:], events, strict=False))
    assert result.ok and result.count == len(events)


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
    recent = services.record("test.recent")
    later_old = old_event(60)  # After a newer event: kept until that one is old too (no hole).

    result = services.apply_retention()

    assert (result.first_seq, result.last_seq, result.removed) == (olds[0].seq, olds[-1].seq, 3)
    try:
        if archive:
            assert result.file.startswith(f"audit-archive/acme/{olds[0].seq}_{olds[-1].seq}")
            assert [line["seq"] for line in read_archive(result.file)] == [event.seq for event in olds]
        else:
            assert result.file == ""
        assert list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True)) == [
            recent.seq, later_old.seq, result.event.seq]
        assert result.event.data["last_hash"] == olds[-1].hash
        anchor = result.checkpoint
        assert (anchor.kind, anchor.last_seq, anchor.head_hash, anchor.is_valid) == (
            services.Checkpoint.RETENTION, olds[-1].seq, olds[-1].hash, True)
        verified = services.verify()
        assert verified.ok and verified.anchor_seq == result.event.seq and verified.count == 3

        # The superuser removes one more event: nothing signed anchors the new start.
        as_superuser("acme", ("DELETE FROM audit_auditevent WHERE seq = %s", [recent.seq]))
        verified = services.verify()
        assert not verified.ok and not verified.start_anchored and verified.broken_seq == later_old.seq
    finally:
        if result.file:
            default_storage.delete(result.file)


def test_retention_task_runs_in_the_tenant_on_a_worker(trail, celery_worker):
    set_retention(1)
    for days in (5, 3):
        old_event(days)
    services.record("test.recent")
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
    events = [services.record("test.event", data={"n": n}) for n in range(5)]
    output = verify_command()
    assert output.startswith("OK: ") and f"Checkpoint of seq {events[-1].seq} signed" in output
    assert "No new checkpoint" in verify_command()  # Nothing new to anchor.
    (checkpoint,) = services.checkpoints()
    stored = json.loads(default_storage.open(checkpoint.name).read())
    assert stored["head_hash"] == events[-1].hash and stored["schema"] == "acme" and len(stored["signature"]) == 64
    assert checkpoint.is_valid and services.verify().checkpoint == checkpoint

    # The superuser deletes the newest events: the chain that is left is whole, the checkpoint is not.
    as_superuser("acme", ("DELETE FROM audit_auditevent WHERE seq >= %s", [events[3].seq]))
    result = services.verify()
    assert result.broken_seq is None and result.truncated and not result.ok
    with pytest.raises(CommandError, match=f"truncated tail: the newest checkpoint .* records event "
                                           f"{events[-1].seq}, which the trail no longer holds") as error:
        verify_command()
    assert error.value.returncode == 1
    with pytest.raises(services.TrailTampered):  # And no checkpoint vouches for it.
        services.write_checkpoint()

    # New events take the removed numbers: the checkpointed one now hashes differently.
    for n in range(3):
        services.record("test.replacement", data={"n": n})
    with pytest.raises(CommandError, match=f"re-chained forgery: events {events[-1].seq} no longer hash"):
        verify_command()


def rechain_from(seq: int) -> str:
    """SQL (for the superuser) that recomputes every hash from `seq` on with audit_event_hash()."""
    return f"""
    DO $$
    DECLARE n bigint;
    BEGIN
        FOR n IN SELECT seq FROM audit_auditevent WHERE seq >= {int(seq)} ORDER BY seq LOOP
            UPDATE audit_auditevent SET prev_hash = COALESCE(
                (SELECT hash FROM audit_auditevent WHERE seq < n ORDER BY seq DESC LIMIT 1), '') WHERE seq = n;
            UPDATE audit_auditevent e SET hash = audit_event_hash(e) WHERE seq = n;
        END LOOP;
    END
    $$"""


def test_verify_reports_a_re_chained_forgery(trail, make_user, acme_client):
    events = [services.record("data.expense.update", target_type="data.expense", target_id="7",
                              after={"amount": n}) for n in range(4)]
    first = services.write_checkpoint()
    later = [services.record("test.event", data={"n": n}) for n in range(2)]
    second = services.write_checkpoint()
    assert (first.last_seq, second.last_seq) == (events[-1].seq, later[-1].seq)

    as_superuser("acme", ("UPDATE audit_auditevent SET after = '{\"amount\": 1000}' WHERE seq = %s",
                          [events[1].seq]), rechain_from(events[1].seq))

    result = services.verify()
    assert result.broken_seq is None and result.bad_hashes == result.bad_links == 0  # Internally consistent.
    assert result.forged_seqs == (first.last_seq, second.last_seq) and not result.ok
    with pytest.raises(CommandError, match=f"re-chained forgery: events {first.last_seq}, {second.last_seq}") as error:
        verify_command()
    assert error.value.returncode == 1
    boss = make_user(trail, "boss", is_staff=True, is_superuser=True)
    acme_client.force_login(boss)
    assert "re-chained forgery" in acme_client.get("/admin/audit/auditevent/verify/").content.decode()


def test_verify_reports_events_changed_or_removed_with_triggers_off(trail):
    events = [services.record("test.event", data={"n": n}) for n in range(6)]
    as_superuser("acme", ("UPDATE audit_auditevent SET data = '{\"n\": 99}' WHERE seq = %s", [events[1].seq]))
    result = services.verify()
    assert (result.broken_seq, result.bad_hashes, result.bad_links) == (events[1].seq, 1, 0)
    with pytest.raises(CommandError, match=f"first broken event is seq {events[1].seq}"):
        verify_command()
    # The changed event rehashed: the next one's link breaks. Another one removed: a gap.
    as_superuser("acme", ("UPDATE audit_auditevent e SET hash = audit_event_hash(e) WHERE seq = %s", [events[1].seq]),
                 ("DELETE FROM audit_auditevent WHERE seq = %s", [events[4].seq]))
    result = services.verify()
    assert (result.broken_seq, result.bad_hashes, result.bad_links) == (events[2].seq, 0, 2)
    # The start removed without a retention run.
    as_superuser("acme", ("DELETE FROM audit_auditevent WHERE seq <= %s", [events[2].seq]))
    result = services.verify()
    assert not result.start_anchored and result.broken_seq == events[3].seq


def test_a_changed_copied_or_unreadable_checkpoint_is_reported(trail, settings):
    services.record("test.event")
    good = services.write_checkpoint()
    data = json.loads(default_storage.open(good.name).read())
    directory = services.checkpoint_dir()
    default_storage.save(f"{directory}/{good.last_seq:012d}-changed.json",
                         ContentFile(json.dumps({**data, "head_hash": "0" * 64}).encode()))
    globex_copy = services.Checkpoint(database=good.database, schema="globex", kind=good.kind,
                                      last_seq=good.last_seq, head_hash=good.head_hash,
                                      created_at=good.created_at).signed()  # Signed, but for another tenant.
    default_storage.save(f"{directory}/{good.last_seq:012d}-copied.json", ContentFile(globex_copy.to_json().encode()))
    default_storage.save(f"{directory}/{good.last_seq:012d}-unreadable.json", ContentFile(b"{not json"))
    result = services.verify()
    assert not result.ok and result.broken_seq is None and len(result.bad_checkpoints) == 3
    assert good.name not in result.bad_checkpoints and "checkpoints with a bad signature" in result.message

    for name in result.bad_checkpoints:
        default_storage.delete(name)
    assert services.verify().ok
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
    summary = tasks.write_checkpoints()
    assert summary["ok"] and summary["checkpoint"] == f"{services.checkpoint_dir()}/{event.seq:012d}-head.json"
    as_superuser("acme", ("UPDATE audit_auditevent SET action = 'forged' WHERE seq = %s", [event.seq]))
    assert tasks.write_checkpoints()["ok"] is False
    out = StringIO()
    with pytest.raises(CommandError, match="TAMPERED"):
        call_command("lowcode", "audit", "checkpoint", "--tenant", "acme", stdout=out)


def test_flush_leaves_the_trail_alone(trail):
    event = services.record("test.committed")
    with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
        sql("TRUNCATE audit_auditevent")
    call_command("flush", interactive=False, verbosity=0)
    assert list(AuditEvent.objects.values_list("seq", flat=True)) == [event.seq]
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
