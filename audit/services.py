"""Audit trail services (AD-1..AD-5): record, seal into blocks, verify and checkpoint, query and
export, history, retention, alerts.

The admin, the `lowcode audit` commands and the Celery tasks are thin shells over these
functions. Events live in each tenant's schema; every function works on the connection's
current tenant. The runtime role writes events but cannot change them: each schema's trail is
sealed to the owner role after its migrations, and retention deletes through the owner's
`lowcode_guard.purge_audit` (audit/sql/guard.sql, README "Audit trail: roles").
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import hmac
import io
import ipaddress
import json
import logging
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from itertools import takewhile
from typing import TextIO

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.functional import SimpleLazyObject, empty
from django.utils.translation import gettext as _
from django_tenants.utils import get_public_schema_name, tenant_context

from audit import audit_actions
from audit.actions import AuditAction, audit_action_registry, name_of
from audit.models import Alert, AlertRule, AuditBlock, AuditEvent, AuditSettings
from lowcode.logs import request_var

logger = logging.getLogger(__name__)

__all__ = [
    "EXPORT_COLUMNS", "EXPORT_FORMATS", "Checkpoint", "RetentionResult", "TrailTampered", "VerifyResult",
    "acknowledge_alerts", "apply_retention", "archive_path", "block_of", "changed_fields", "checkpoint_dir", "checkpoints",
    "evaluate_alerts", "export", "filter_events", "forget_checkpoints", "history", "is_tenant_schema", "iter_export",
    "record", "record_later", "seal_events", "seal_trail", "state_at", "unacknowledged_alerts", "verify", "write_checkpoint",
]

USER_AGENT_MAX = 500
REPR_MAX = 500
ARCHIVE_ACTION = audit_actions.ARCHIVE.type
EXPORT_FORMATS = ("csv", "jsonl")
#: The stored columns of exports and archives, in order.
_STORED_COLUMNS = ["seq", "created_at", "actor_id", "actor_repr", "api_key_prefix", "action", "target_type",
                   "target_id", "target_repr", "before", "after", "data", "result", "request_id", "ip", "user_agent",
                   "prev_hash", "hash", "txid"]
#: Columns of exports and archives, in order: the stored ones, then the action's readable description.
EXPORT_COLUMNS = [*_STORED_COLUMNS, "action_description"]
_JSON_COLUMNS = {"before", "after", "data"}
#: The columns record() writes, in order, and those the insert trigger sets, which it reads back.
_INSERT_COLUMNS = ("created_at", "actor_id", "actor_repr", "api_key_prefix", "action", "target_type", "target_id",
                   "target_repr", "before", "after", "data", "result", "request_id", "ip", "user_agent")
_RETURNED_COLUMNS = ("seq", "txid", "prev_hash", "hash")
_NOT_YET_RETURNED = (None,) * len(_RETURNED_COLUMNS)
_RESULTS = frozenset(AuditEvent.Result.values)
_INSERT_JSON = {_INSERT_COLUMNS.index(name) for name in _JSON_COLUMNS}
_ACTION = _INSERT_COLUMNS.index("action")
# Built once: the ORM's save compiles its INSERT again for every event, most of what an event cost.
_INSERT_ONLY_SQL = "INSERT INTO audit_auditevent ({}) VALUES ({})".format(
    ", ".join(_INSERT_COLUMNS), ", ".join(["%s"] * len(_INSERT_COLUMNS)))
_INSERT_SQL = f"{_INSERT_ONLY_SQL} RETURNING {', '.join(_RETURNED_COLUMNS)}"
#: Where each of the model's columns is in (returned + written): an instance of them all is the stored row.
_ROW_ORDER = [(*_RETURNED_COLUMNS, *_INSERT_COLUMNS).index(field.column) for field in AuditEvent._meta.concrete_fields]


# --- recording ---------------------------------------------------------------------------------


def record(action: AuditAction | str, *, target=None, target_type: str = "", target_id: str = "",
           target_repr: str = "", before: dict | None = None, after: dict | None = None, result: str = "ok", actor=None,
           data: dict | None = None, request=None) -> AuditEvent:
    """Record one audit event in the current transaction and return it.

    The event is one INSERT in the caller's transaction: if the change it records rolls back,
    so does the event. The database numbers it (`seq`) and notes its transaction (`txid`),
    holding no lock: transactions recording events in the same tenant never wait for each other.
    The sealing task hashes it and chains it into a block once its transaction has ended
    (`seal_events`). The INSERT is built once, not through the model's save (which compiled it
    anew each time). The alerts are evaluated after the commit unless
    the cached active rules show that none matches the action.

    `action` is a declared action (audit/actions.py), e.g. ``rbac_actions.ROLE_CREATE``, or the
    name of one member of a declared family, e.g. ``RECORD_UPDATE.of("expense")`` for
    ``data.expense.update`` (target_type ``data.<entity>``, target_id the record's id).

    :raises audit.actions.UndeclaredAuditAction: no app declared `action`.
    :param target: a model instance; fills target_type (``app_label.model``), target_id and
        target_repr unless they are given.
    :param before: the changed fields' values before the change (only those fields).
    :param after: the same fields' values after it.
    :param result: ``ok``, ``denied`` or ``error``.
    :param actor: the user who acted; default: the current request's user (none outside a request).
    :param data: anything else worth keeping (JSON).
    :param request: the HttpRequest; default: the current one (`lowcode.logs.request_var`).
    """
    db, actor, values = _event_values(action, target=target, target_type=target_type, target_id=target_id,
                                      target_repr=target_repr, before=before, after=after, result=result,
                                      actor=actor, data=data, request=request)
    event = _event(db, actor, values)
    with db.cursor() as cursor:
        cursor.execute(_INSERT_SQL, _params(db, values))
        _set_returned(event, cursor.fetchone())
    if _may_alert(event.action):
        _evaluate_alerts_after_commit(db, event)
    return event


def record_later(action: AuditAction | str, **fields) -> None:
    """Record one audit event as `record()` does (the same arguments), sent with the transaction's
    next statement or its commit: one round trip fewer.

    The INSERT waits in the connection (`lowcode.db_backend`'s `send_with_next`), as a statement
    the session prepared once. Any statement that follows sends it first, so the transaction
    reads its own events; a rollback takes it away; if it fails, the commit fails. Outside
    `atomic()` it is sent at once. Nothing is returned: the event's numbers are read back only
    when an alert rule may match the action (an alert names its event). For the writes of
    records, on every request, whose callers do not read the event back.
    """
    db, actor, values = _event_values(action, **fields)
    if not _may_alert(values[_ACTION]):
        db.send_with_next(_INSERT_ONLY_SQL, _params(db, values))
        return
    event = _event(db, actor, values)
    db.send_with_next(_INSERT_SQL, _params(db, values), partial(_set_returned, event))
    _evaluate_alerts_after_commit(db, event)


def _event_values(action: AuditAction | str, *, target=None, target_type: str = "", target_id: str = "",
                  target_repr: str = "", before: dict | None = None, after: dict | None = None, result: str = "ok",
                  actor=None, data: dict | None = None, request=None) -> tuple:
    """(connection, actor, the values of `_INSERT_COLUMNS`) of an event, checked."""
    if result not in _RESULTS:
        raise ValueError(f"result must be one of {AuditEvent.Result.values}, not {result!r}")
    action = name_of(action)
    audit_action_registry.declaration(action)
    if not is_tenant_schema():
        raise RuntimeError(f"audit events live in a tenant's schema; the connection is on "
                           f"{connection.schema_name!r} ({action})")
    if request is None:
        request = request_var.get()
    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target_id or str(target.pk)
        target_repr = target_repr or str(target)
    if actor is None and request is not None:
        actor = _request_user(request)
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    api_key = getattr(request, "api_key", None) if request is not None else None
    db = connections[DEFAULT_DB_ALIAS]  # Once: each use of the `connection` proxy looks it up again.
    return db, actor, (
        timezone.now(), actor.pk if actor is not None else None, actor.get_username() if actor is not None else "",
        getattr(api_key, "prefix", "") or "", action, target_type, str(target_id), str(target_repr)[:REPR_MAX],
        before, after, data or {}, result, str(getattr(request, "id", "") or "")[:64] if request is not None else "",
        _client_ip(request), _user_agent(request))


def _params(db, values: tuple) -> list:
    adapt_json = db.ops.adapt_json_value
    # None as SQL NULL, as the ORM stores an empty JSONField (not JSON's null).
    return [adapt_json(value, DjangoJSONEncoder) if index in _INSERT_JSON and value is not None else value
            for index, value in enumerate(values)]


def _event(db, actor, values: tuple) -> AuditEvent:
    """The event of `values` as a model instance, its database-set columns still None."""
    row = (*_NOT_YET_RETURNED, *values)
    event = AuditEvent.from_db(db.alias, None, [row[index] for index in _ROW_ORDER])
    if actor is not None:
        event.actor = actor
    return event


def _may_alert(action: str) -> bool:
    """Whether an active rule may match `action`. Never a query: unknown rules are loaded after the commit."""
    rules = _cached_rules()
    return rules is None or any(_matches(rule.action_pattern, action) for rule in rules)


def _evaluate_alerts_after_commit(db, event: AuditEvent) -> None:
    transaction.on_commit(partial(_evaluate_alerts_in, getattr(db, "tenant", None), event), robust=True)


def _set_returned(event: AuditEvent, returned: tuple) -> None:
    event.seq, event.txid, event.prev_hash, event.hash = returned


def _request_user(request):
    """The request's user: the one DRF or the session middleware set (loading it if needed)."""
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject) and user._wrapped is empty:
        user = getattr(request, "_cached_user", None) or user  # Evaluated by the lazy object below.
    if user is None:
        return None
    try:
        return user if user.is_authenticated else None
    except Exception:  # A half-built request (tests, scripts) without a session.
        logger.debug("no user on the request", exc_info=True)
        return None


def _client_ip(request) -> str | None:
    address = request.META.get("REMOTE_ADDR", "") if request is not None else ""
    if not address:
        return None
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def _user_agent(request) -> str:
    return request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_MAX] if request is not None else ""


def is_tenant_schema() -> bool:
    """Whether the connection is on a tenant's schema (the public schema has no audit trail)."""
    return connection.schema_name != get_public_schema_name()


def changed_fields(old: dict, new: dict) -> tuple[dict, dict]:
    """Return `(before, after)`: the values of the keys whose value differs between `old` and `new`."""
    keys = [key for key in {**old, **new} if old.get(key) != new.get(key)]
    return {key: old.get(key) for key in keys}, {key: new.get(key) for key in keys}


# --- integrity ---------------------------------------------------------------------------------


class TrailTampered(Exception):
    """The trail does not verify; the message says how."""


def seal_trail() -> bool:
    """Hand the current schema's trail to the owner role; return False if the schema has none.

    Run after every migration of a schema (a post_migrate receiver), so tenants created at runtime
    are sealed too. Safe to repeat.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regnamespace('lowcode_guard') IS NOT NULL")
        if not cursor.fetchone()[0]:
            raise ImproperlyConfigured(_(
                "The database has no lowcode_guard schema, so the audit trail cannot be protected from the "
                "application's own role. Run audit/sql/guard.sql as a superuser (README, Audit trail: roles)."))
        cursor.execute("SELECT lowcode_guard.seal_audit(%s)", [connection.schema_name])
        return cursor.fetchone()[0]


def block_of(event: AuditEvent) -> AuditBlock | None:
    """The block that sealed `event`, without its events' hashes; None while it is not sealed yet."""
    block = AuditBlock.objects.defer("event_hashes").filter(txid_to__gt=event.txid).order_by("txid_to").first()
    return block if block is not None and block.txid_from <= event.txid else None


def seal_events() -> AuditBlock | None:
    """Seal the current tenant's committed events that no block holds yet into the next block; return it.

    None when there is nothing to seal. A block takes the events of the transactions that have
    ended (below the oldest transaction still running in this database; the server's other
    databases do not count): a transaction still running, even a long one in another session,
    holds the newer events back for a later run. Writers
    never wait for it; two sealers of a tenant take turns. Celery beat runs it every few seconds
    (`audit.seal_events`); the owner role's `lowcode_guard.seal_events` does the work.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT lowcode_guard.seal_events(%s)", [connection.schema_name])
        number = cursor.fetchone()[0]
    # Without its events' hashes: thousands of them after a pause of the sealing.
    return None if number is None else AuditBlock.objects.defer("event_hashes").get(number=number)


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement, kept in the file storage, that block `block` of a trail had `block_hash`.

    Signed with HMAC-SHA256 and `settings.AUDIT_CHECKPOINT_KEY`, a key the database never sees:
    whoever rewrites the trail, even as the database superuser, cannot make matching checkpoints.
    `kind` is ``head`` (the newest block, taken periodically or on demand) or ``retention`` (the
    last block whose events a retention run removed: the only thing that lets a trail start after
    block 1).
    """

    HEAD = "head"
    RETENTION = "retention"

    database: str
    schema: str
    kind: str
    block: int
    block_hash: str
    created_at: str
    signature: str = ""
    name: str = field(default="", compare=False)

    def _payload(self) -> bytes:
        return json.dumps({"database": self.database, "schema": self.schema, "kind": self.kind,
                           "block": self.block, "block_hash": self.block_hash, "created_at": self.created_at},
                          sort_keys=True, separators=(",", ":")).encode()

    def _expected_signature(self) -> str:
        return hmac.new(settings.AUDIT_CHECKPOINT_KEY.encode(), self._payload(), hashlib.sha256).hexdigest()

    def signed(self) -> Checkpoint:
        return Checkpoint(**{**self.__dict__, "signature": self._expected_signature()})

    @property
    def is_valid(self) -> bool:
        """Signed with our key, for this trail (a copy from another tenant or database is not)."""
        return (self.database, self.schema) == _trail_identity() and hmac.compare_digest(
            self.signature, self._expected_signature())

    def to_json(self) -> str:
        return json.dumps({**json.loads(self._payload()), "signature": self.signature}, sort_keys=True)


#: Checkpoint files start with it. Those of the trails chained event by event (before blocks) do not:
#: they vouch for nothing `verify` checks any more, and are left alone.
CHECKPOINT_PREFIX = "block-"


def _trail_identity() -> tuple[str, str]:
    return connection.settings_dict["NAME"], connection.schema_name


def checkpoint_dir() -> str:
    """The storage folder of the current trail's checkpoints (per database: test runs keep their own)."""
    database, schema = _trail_identity()
    return f"audit-checkpoints/{schema}/{database}"


def checkpoints() -> list[Checkpoint]:
    """The current trail's stored checkpoints, oldest first; unreadable ones come with no signature."""
    directory = checkpoint_dir()
    try:
        names = default_storage.listdir(directory)[1]
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        if not name.startswith(CHECKPOINT_PREFIX):
            continue
        path = f"{directory}/{name}"
        with default_storage.open(path, "rb") as file:
            try:
                data = json.loads(file.read())
                found.append(Checkpoint(database=str(data["database"]), schema=str(data["schema"]),
                                        kind=str(data["kind"]), block=int(data["block"]),
                                        block_hash=str(data["block_hash"]), created_at=str(data["created_at"]),
                                        signature=str(data["signature"]), name=path))
            except (ValueError, KeyError, TypeError):
                found.append(Checkpoint(database="", schema="", kind="", block=0, block_hash="", created_at="",
                                        name=path))
    return sorted(found, key=lambda checkpoint: (checkpoint.block, checkpoint.created_at))


def forget_checkpoints() -> int:
    """Delete the current trail's checkpoints (its schema was dropped); return how many."""
    found = checkpoints()
    for checkpoint in found:
        default_storage.delete(checkpoint.name)
    return len(found)


@dataclass(frozen=True)
class VerifyResult:
    """What `verify()` found.

    Events: `count` of them (seq `first_seq` to `last_seq`); `bad_hashes` whose content does not
    match the hash their block keeps for them, the first being `bad_seq`; `unsealed` ones no block
    holds yet (the newest, from seq `unsealed_first_seq`; not hashed yet); `strays`, events
    below the blocks' range (added to sealed transactions, or left behind by a purge).
    Blocks: `blocks` of them (`first_block` to `last_block`, the newest's hash `head_hash`);
    `bad_blocks` whose fields or events no longer match their hashes (events changed, removed or
    added), `bad_links` that do not follow the block before; `broken_block` is the first block
    that does not check out. The first block starts the chain (block 1) or, after a retention
    run, is the `anchor_block` both its `audit.archive` event and a signed retention checkpoint
    record. Against the checkpoints: `truncated` when the newest one's block is gone,
    `forged_blocks` the checkpointed blocks whose hash differs from the checkpoint's,
    `bad_checkpoints` the stored names whose signature does not check out.
    """

    count: int
    first_seq: int | None
    last_seq: int | None
    blocks: int
    first_block: int | None
    last_block: int | None
    head_hash: str
    unsealed: int
    unsealed_first_seq: int | None
    bad_seq: int | None
    bad_hashes: int
    broken_block: int | None
    bad_blocks: int
    bad_links: int
    strays: int
    start_anchored: bool
    anchor_block: int | None = None
    checkpoint: Checkpoint | None = None
    truncated: bool = False
    forged_blocks: tuple[int, ...] = ()
    bad_checkpoints: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return (self.bad_seq is None and self.broken_block is None and not self.strays and not self.truncated
                and not self.forged_blocks and not self.bad_checkpoints)

    @property
    def message(self) -> str:
        if self.ok:
            text = _("OK: %(count)d events (seq %(first)s to %(last)s) verified, %(blocks)d blocks (%(first_block)s "
                     "to %(last_block)s); head hash %(head)s.") % {
                "count": self.count, "first": self.first_seq or "-", "last": self.last_seq or "-",
                "blocks": self.blocks, "first_block": self.first_block or "-", "last_block": self.last_block or "-",
                "head": self.head_hash or "-"}
            if self.unsealed:
                text += " " + _("%(count)d newer events (from seq %(seq)d) are not sealed into a block yet: the "
                                "next sealing (every few seconds) hashes and chains them.") % {
                    "count": self.unsealed, "seq": self.unsealed_first_seq}
            if self.checkpoint:
                text += " " + _("Matches the newest checkpoint (block %(block)d, %(time)s).") % {
                    "block": self.checkpoint.block, "time": self.checkpoint.created_at}
            return text
        problems = []
        if self.bad_seq is not None:
            problems.append(_("%(n)d events whose content does not match the hash their block keeps (the first: "
                              "seq %(seq)d)") % {
                "n": self.bad_hashes, "seq": self.bad_seq})
        if self.broken_block is not None:
            parts = []
            if self.bad_blocks:
                parts.append(_("%(n)d blocks whose events or fields no longer match their hash (events changed, "
                               "removed or added)") % {"n": self.bad_blocks})
            if self.bad_links:
                parts.append(_("%(n)d breaks in the chain of blocks (missing or reordered blocks)") % {
                    "n": self.bad_links})
            if not self.start_anchored:
                parts.append(_("the first block (%(block)s) follows no archived block") % {"block": self.first_block})
            problems.append(_("first broken block is %(block)d of %(count)d: %(details)s") % {
                "block": self.broken_block, "count": self.blocks, "details": "; ".join(parts)})
        if self.strays:
            problems.append(_("%(n)d events outside every block, in transactions already sealed") % {
                "n": self.strays})
        if self.truncated:
            problems.append(_("truncated tail: the newest checkpoint (%(time)s) records block %(block)d, which the "
                              "trail no longer holds (it ends at %(last)s)") % {
                "block": self.checkpoint.block, "time": self.checkpoint.created_at, "last": self.last_block or "-"})
        if self.forged_blocks:
            problems.append(_("re-chained forgery: blocks %(blocks)s no longer hash to what their checkpoints "
                              "recorded (rewritten, or removed and replaced)") % {
                "blocks": ", ".join(map(str, self.forged_blocks))})
        if self.bad_checkpoints:
            problems.append(_("checkpoints with a bad signature (changed, copied, or signed with another key): "
                              "%(names)s") % {"names": ", ".join(self.bad_checkpoints)})
        return _("TAMPERED: %(problems)s.") % {"problems": "; ".join(problems)}


#: One statement, so one snapshot. Each block against its events (hashed again from their content with
#: the sealing's own `audit_events_digest`), its own fields (`audit_block_hash`) and the block before;
#: each of its events against the hash the block keeps for it (`changed`).
_VERIFY_SQL = """
WITH chain AS (
    SELECT b.number, b.hash, b.prev_hash, b.txid_from, b.txid_to, audit_block_hash(b) AS computed, d.count AS present,
           (d.count, d.first_seq, d.last_seq, d.events_hash)
               IS NOT DISTINCT FROM (b.count, b.first_seq, b.last_seq, b.events_hash) AS events_match,
           changed.first_seq AS bad_seq, changed.count AS bad_hashes,
           lag(b.hash) OVER w AS expected_prev, lag(b.number) OVER w AS prev_number, lag(b.txid_to) OVER w AS prev_end
    FROM audit_auditblock b CROSS JOIN LATERAL audit_events_digest(b.txid_from, b.txid_to) d
    CROSS JOIN LATERAL (
        SELECT min(hashed.seq) AS first_seq, count(*) AS count
        FROM (SELECT split_part(entry, ':', 1)::bigint AS seq, entry FROM unnest(d.event_hashes) entry) hashed
        JOIN (SELECT split_part(entry, ':', 1)::bigint AS seq, entry FROM unnest(b.event_hashes) entry) sealed
            ON sealed.seq = hashed.seq
        WHERE sealed.entry <> hashed.entry
    ) changed
    WINDOW w AS (ORDER BY b.number)
),
bounds AS (
    SELECT (SELECT min(txid_from) FROM chain) AS start, (SELECT max(txid_to) FROM chain) AS finish
),
events AS (
    SELECT count(*) AS count, min(seq) AS first_seq, max(seq) AS last_seq,
           count(*) FILTER (WHERE bounds.finish IS NULL OR e.txid >= bounds.finish) AS unsealed,
           min(seq) FILTER (WHERE bounds.finish IS NULL OR e.txid >= bounds.finish) AS unsealed_first,
           count(*) FILTER (WHERE e.txid < bounds.start) AS below
    FROM audit_auditevent e CROSS JOIN bounds
)
SELECT (SELECT count(*) FROM chain), (SELECT min(number) FROM chain), (SELECT max(number) FROM chain),
       (SELECT hash FROM chain ORDER BY number DESC LIMIT 1),
       first.hash, first.prev_hash, first.computed = first.hash, first.events_match, first.present,
       (SELECT min(number) FROM chain WHERE prev_number IS NOT NULL AND (computed <> hash OR NOT events_match)),
       (SELECT count(*) FROM chain WHERE prev_number IS NOT NULL AND (computed <> hash OR NOT events_match)),
       (SELECT min(number) FROM chain WHERE prev_number IS NOT NULL
            AND (prev_hash <> expected_prev OR number <> prev_number + 1 OR txid_from <> prev_end)),
       (SELECT count(*) FROM chain WHERE prev_number IS NOT NULL
            AND (prev_hash <> expected_prev OR number <> prev_number + 1 OR txid_from <> prev_end)),
       (SELECT jsonb_object_agg(number, computed) FROM chain WHERE number = ANY(%s::bigint[])),
       events.count, events.first_seq, events.last_seq, (SELECT min(bad_seq) FROM chain),
       (SELECT COALESCE(sum(bad_hashes), 0) FROM chain), events.unsealed, events.unsealed_first, events.below
FROM events LEFT JOIN (SELECT * FROM chain WHERE prev_number IS NULL) first ON true
"""


def verify() -> VerifyResult:
    """Recompute every event's and every block's hash in the database and check them against the signed
    checkpoints (AD-2).

    One query (one snapshot). Each sealed event must match the hash its block keeps for it; each
    block must match its fields, the events of its transactions (none added, removed or changed
    since it was sealed) and the block before it. The first block must start the chain (block 1,
    empty `prev_hash`) or, after a retention purge, be the last block whose events were removed,
    as recorded both by the `audit.archive` event that removed them and by the signed retention
    checkpoint written before.
    Then the stored checkpoints: the newest one's block must still be there, and every checkpointed
    block still present must hash to what its checkpoint recorded. Events not sealed yet are
    reported: nothing vouches for them until the next sealing hashes them. Blocks newer than the
    newest checkpoint are anchored by nothing outside the database.
    """
    stored = checkpoints()
    valid = [checkpoint for checkpoint in stored if checkpoint.is_valid]
    with connection.cursor() as cursor:
        cursor.execute(_VERIFY_SQL, [[checkpoint.block for checkpoint in valid]])
        (blocks, first_block, last_block, head_hash, first_hash, first_prev_hash, first_hash_ok, first_events_match,
         first_present, bad_block, bad_blocks, bad_link, bad_links, computed, count, first_seq, last_seq, bad_seq,
         bad_hashes, unsealed, unsealed_first, below) = cursor.fetchone()
    start_anchored, anchor_block, strays = True, None, below
    if blocks:
        anchor_event = AuditEvent.objects.filter(
            action=ARCHIVE_ACTION, data__last_block=first_block, data__last_block_hash=first_hash,
        ).values_list("seq", flat=True).order_by("-seq").first()
        if anchor_event is not None and any(
                (checkpoint.kind, checkpoint.block, checkpoint.block_hash) == (Checkpoint.RETENTION, first_block,
                                                                               first_hash) for checkpoint in valid):
            # Its events were archived and removed: any left in its range is a stray.
            anchor_block, strays, first_ok = first_block, below + first_present, first_hash_ok
        else:
            start_anchored = first_block == 1 and first_prev_hash == ""
            first_ok = first_hash_ok and first_events_match
        if not first_ok:
            bad_block, bad_blocks = first_block, bad_blocks + 1
    computed = json.loads(computed) if computed else {}  # Django's connection leaves jsonb as text.
    newest = valid[-1] if valid else None
    # Below the first block: removed by retention, which the start's anchor vouches for.
    truncated = newest is not None and (not blocks or newest.block > last_block)
    forged = sorted({checkpoint.block for checkpoint in valid if blocks and first_block <= checkpoint.block <= last_block
                     and computed.get(str(checkpoint.block)) != checkpoint.block_hash})
    broken = [number for number in (bad_block, bad_link, None if start_anchored else first_block) if number is not None]
    return VerifyResult(count=count, first_seq=first_seq, last_seq=last_seq, blocks=blocks, first_block=first_block,
                        last_block=last_block, head_hash=head_hash or "", unsealed=unsealed,
                        unsealed_first_seq=unsealed_first, bad_seq=bad_seq, bad_hashes=int(bad_hashes),
                        broken_block=min(broken) if broken else None, bad_blocks=bad_blocks, bad_links=bad_links,
                        strays=strays, start_anchored=start_anchored, anchor_block=anchor_block, checkpoint=newest,
                        truncated=truncated, forged_blocks=tuple(forged),
                        bad_checkpoints=tuple(checkpoint.name for checkpoint in stored if not checkpoint.is_valid))


def write_checkpoint(verified: VerifyResult | None = None) -> Checkpoint | None:
    """Seal what is committed, then sign and store a checkpoint of the newest block, once the trail verifies.

    Return it, or None when there is nothing new to anchor (no block, or the newest checkpoint is
    of the newest block) or when called inside a transaction: the blocks it sees may yet roll
    back, and a checkpoint must only ever record committed ones. Raise TrailTampered if the trail
    does not verify: a checkpoint never vouches for a tampered trail.

    :param verified: the result of a `verify()` just made outside a transaction, to save a second
        one (nothing is sealed then: the checkpoint is of the newest block that verify saw).
    """
    if connection.in_atomic_block:
        return None
    if verified is None:
        seal_events()
        verified = verify()
    if not verified.ok:
        raise TrailTampered(verified.message)
    if not verified.last_block or (verified.checkpoint and verified.checkpoint.block == verified.last_block):
        return None
    return _store_checkpoint(Checkpoint.HEAD, verified.last_block, verified.head_hash)


def _store_checkpoint(kind: str, block: int, block_hash: str) -> Checkpoint:
    database, schema = _trail_identity()
    checkpoint = Checkpoint(database=database, schema=schema, kind=kind, block=block, block_hash=block_hash,
                            created_at=timezone.now().isoformat()).signed()
    name = default_storage.save(f"{checkpoint_dir()}/{CHECKPOINT_PREFIX}{block:012d}-{kind}.json",
                                ContentFile(checkpoint.to_json().encode()))
    logger.info("audit checkpoint (%s): %s block %d, %s", kind, schema, block, name)
    return Checkpoint(**{**checkpoint.__dict__, "name": name})


# --- query and export (AD-4) -----------------------------------------------------------------


def _pattern_regex(pattern: str) -> str:
    """A shell-style pattern (`*`, `?`) as an anchored regular expression valid in Python and PostgreSQL."""
    return "^" + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + "$"


def _matches(pattern: str, action: str) -> bool:
    return re.match(_pattern_regex(pattern), action) is not None


def _action_filter(pattern: str) -> Q:
    if "*" in pattern or "?" in pattern:
        return Q(action__regex=_pattern_regex(pattern))
    return Q(action=pattern)


def filter_events(queryset: QuerySet | None = None, *, since: datetime | None = None, until: datetime | None = None,
                  action: str = "", actor: str = "", target_type: str = "", target_id: str = "",
                  result: str = "") -> QuerySet:
    """Events matching every given criterion, oldest first.

    :param since: events at or after this time; :param until: events before this time.
    :param action: an action name or a shell-style pattern (``data.*.delete``).
    :param actor: the actor's username (kept after the user is deleted).
    """
    queryset = AuditEvent.objects.all() if queryset is None else queryset
    if since:
        queryset = queryset.filter(created_at__gte=since)
    if until:
        queryset = queryset.filter(created_at__lt=until)
    if action:
        queryset = queryset.filter(_action_filter(action))
    if actor:
        queryset = queryset.filter(actor_repr=actor)
    if target_type:
        queryset = queryset.filter(target_type=target_type)
    if target_id:
        queryset = queryset.filter(target_id=str(target_id))
    if result:
        queryset = queryset.filter(result=result)
    return queryset.order_by("seq")


_TABLE = '"audit_auditevent"'
#: Each export column as SQL text (or a number), so rows leave PostgreSQL ready to write.
_COLUMN_SQL = {
    **{name: f'{_TABLE}."{name}"' for name in _STORED_COLUMNS},
    "created_at": f"""to_char({_TABLE}."created_at" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')""",
    "ip": f'host({_TABLE}."ip")',
    **{name: f'{_TABLE}."{name}"::text' for name in _JSON_COLUMNS},
    # Hashed from the content, as the sealing does: the hash the event's block keeps (new events store none).
    "hash": f"audit_event_hash({_TABLE})",
}
#: One JSON object per event, stored columns in order; jsonb columns embedded as they are.
_JSON_LINE_SQL = "json_build_object({})::text".format(", ".join(
    f"'{name}', " + (f'{_TABLE}."{name}"' if name in _JSON_COLUMNS else _COLUMN_SQL[name])
    for name in _STORED_COLUMNS))
_ACTION = _STORED_COLUMNS.index("action")


def _export_rows(queryset: QuerySet, fmt: str, chunk_size: int) -> Iterator:
    """Rows through a server-side cursor, `chunk_size` at a time: CSV cells, or JSON Lines text.

    The description of the action is not stored: it is added here, in the active language.
    """
    # Constant SQL of this module, no input in it.
    describe = audit_action_registry.describe
    if fmt == "jsonl":
        lines = queryset.annotate(_line=RawSQL(_JSON_LINE_SQL, [])).values_list("_line", "action")  # noqa: S611
        # The object's closing brace makes way for one more key.
        return (f'{line[:-1]}, "action_description" : {json.dumps(describe(action))}}}'
                for line, action in lines.iterator(chunk_size=chunk_size))
    columns = {f"_{name}": RawSQL(_COLUMN_SQL[name], []) for name in _STORED_COLUMNS}  # noqa: S611
    rows = queryset.annotate(**columns).values_list(*columns)
    return ((*row, describe(row[_ACTION])) for row in rows.iterator(chunk_size=chunk_size))


def iter_export(queryset: QuerySet, fmt: str = "csv", *, bom: bool = False, chunk_size: int = 2000,
                progress: Callable[[int], None] | None = None) -> Iterator[str]:
    """Yield the events of `queryset`, oldest first, as CSV or JSON Lines text in blocks.

    Memory stays flat whatever the number of rows: rows come from a server-side cursor,
    `chunk_size` at a time, and each block of `chunk_size` rows is yielded before the next
    is read. JSON columns are written as the database's jsonb text (canonical).

    :param fmt: ``csv`` (with a header row) or ``jsonl`` (one JSON object per line).
    :param bom: start CSV with a byte order mark, so that spreadsheet programs read UTF-8.
    :param progress: called with the number of rows of each block yielded.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {EXPORT_FORMATS}, not {fmt!r}")
    buffer = io.StringIO()
    writer = csv.writer(buffer) if fmt == "csv" else None
    if writer is not None:
        if bom:
            buffer.write("\ufeff")
        writer.writerow(EXPORT_COLUMNS)
    rows = 0
    # In a transaction, the server-side cursor streams; outside one (autocommit) it would be a
    # WITH HOLD cursor, which PostgreSQL materialises in full before the first row.
    with transaction.atomic():
        for row in _export_rows(queryset.order_by("seq"), fmt, chunk_size):
            if writer is not None:
                writer.writerow(row)  # Text, numbers and None (an empty cell).
            else:
                buffer.write(row)
                buffer.write("\n")
            rows += 1
            if rows == chunk_size:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
                if progress:
                    progress(rows)
                rows = 0
    if buffer.tell():
        yield buffer.getvalue()
    if progress and rows:
        progress(rows)


def export(out: TextIO, queryset: QuerySet, fmt: str = "csv", *, bom: bool = False,
           progress: Callable[[int], None] | None = None) -> int:
    """Write the events of `queryset` to `out` (see `iter_export`); return how many were written."""
    written = 0

    def count(rows: int) -> None:
        nonlocal written
        written += rows
        if progress:
            progress(rows)

    for block in iter_export(queryset, fmt, bom=bom, progress=count):
        out.write(block)
    return written


# --- record history (AD-3) ---------------------------------------------------------------------


def history(target_type: str, target_id) -> QuerySet:
    """The events of one record (or any target), oldest first."""
    return AuditEvent.objects.for_target(target_type, target_id).order_by("seq")


def state_at(target_type: str, target_id, event: AuditEvent | int, current: dict) -> dict:
    """Reconstruct a record's field values right after `event`.

    Start from `current` (the record's values now) and undo the events recorded after `event`,
    newest first, by putting back their `before` values.
    """
    seq = event if isinstance(event, int) else event.seq
    state = dict(current)
    for before in history(target_type, target_id).filter(seq__gt=seq).order_by("-seq").values_list(
            "before", flat=True).iterator(chunk_size=500):
        state.update(before or {})
    return state


# --- retention (AD-5) ------------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionResult:
    removed: int
    first_seq: int
    last_seq: int
    last_block: int
    cutoff: datetime
    file: str = ""
    event: AuditEvent | None = field(default=None, compare=False)
    checkpoint: Checkpoint | None = field(default=None, compare=False)


def archive_path(schema_name: str, first_seq: int, last_seq: int) -> str:
    """Where the archive of events `first_seq`..`last_seq` goes in the default storage.

    The project's storages put each tenant's files under its own prefix already; the schema in
    the name keeps archives apart under any storage.
    """
    return f"audit-archive/{schema_name}/{first_seq}_{last_seq}.jsonl.gz"


def apply_retention() -> RetentionResult | None:
    """Archive and remove the events older than the tenant's retention (AD-5); None if nothing to do.

    Whole blocks go: the oldest blocks all of whose events are older than the cutoff. In one
    transaction holding the sealing's lock (writers do not wait): write their events as gzipped
    JSON Lines to the default storage (if the settings ask for it), sign a retention checkpoint of
    the last such block and record an `audit.archive` event holding its number and hash (the
    anchors `verify()` checks the remaining chain against), then delete the events and the blocks
    before that one (kept as the anchor the next block links to) through the owner's
    `lowcode_guard.purge_audit`, which refuses events newer than the cutoff or not so anchored.

    Runs outside any transaction (like the nightly task): the checkpoint must only ever record
    committed blocks, never ones a caller's transaction may yet roll back.
    """
    config = AuditSettings.load()
    if not config.retention_days:
        return None
    if connection.in_atomic_block:
        raise RuntimeError("apply_retention() must run outside a transaction: its checkpoint records committed events")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s || '.audit_seal'))", [connection.schema_name])
        # The database's clock, as purge_audit's.
        cursor.execute("SELECT now() - make_interval(days => %s)", [config.retention_days])
        cutoff = cursor.fetchone()[0]
        cursor.execute(_BLOCK_AGES_SQL)
        removable = list(takewhile(lambda block: block[3] < cutoff, cursor.fetchall()))
        if not removable:
            return None
        last_block, last_hash, block_end = removable[-1][:3]
        first, last = min(block[4] for block in removable), max(block[5] for block in removable)
        old = AuditEvent.objects.filter(txid__lt=block_end)
        path = ""
        if config.archive_to_storage:
            path, removed = _write_archive(old, archive_path(connection.schema_name, first, last))
        else:
            removed = old.count()
        anchor = _store_checkpoint(Checkpoint.RETENTION, last_block, last_hash)
        event = record(audit_actions.ARCHIVE, target_type="audit.auditevent", target_id=f"{first}-{last}",
                       target_repr=_("Events %(first)s to %(last)s") % {"first": first, "last": last},
                       data={"first_seq": first, "last_seq": last, "last_block": last_block,
                             "last_block_hash": last_hash, "count": removed, "cutoff": cutoff.isoformat(),
                             "retention_days": config.retention_days, "file": path, "checkpoint": anchor.name})
        cursor.execute("SELECT lowcode_guard.purge_audit(%s, %s)", [connection.schema_name, last_block])
    logger.info("audit retention: %d events removed (seq %d to %d, blocks to %d), archive %s", removed, first, last,
                last_block, path or "-")
    return RetentionResult(removed=removed, first_seq=first, last_seq=last, last_block=last_block, cutoff=cutoff,
                           file=path, event=event, checkpoint=anchor)


#: The blocks whose events are still there, oldest first: number, hash, end, newest event's time, first and last seq.
_BLOCK_AGES_SQL = """
SELECT b.number, b.hash, b.txid_to, max(e.created_at), min(e.seq), max(e.seq)
FROM audit_auditblock b JOIN audit_auditevent e ON e.txid >= b.txid_from AND e.txid < b.txid_to
GROUP BY b.number ORDER BY b.number
"""


def _write_archive(queryset: QuerySet, path: str) -> tuple[str, int]:
    """Write `queryset` as gzipped JSON Lines to the default storage; return (stored name, rows)."""
    rows = 0

    def count(n: int) -> None:
        nonlocal rows
        rows += n

    with tempfile.TemporaryFile() as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb") as archive:
            for block in iter_export(queryset, "jsonl", progress=count):
                archive.write(block.encode("utf-8"))
        raw.seek(0)
        name = default_storage.save(path, File(raw, name=path))
    return name, rows


# --- alerts (AD-5) ----------------------------------------------------------------------------


#: Active alert rules per schema: (monotonic time loaded, rules). Saving or deleting a rule
#: clears its schema's entry in this process; other processes see the change within the TTL.
_rules_cache: dict[str, tuple[float, list[AlertRule]]] = {}
RULES_TTL = 5.0


def _cached_rules() -> list[AlertRule] | None:
    """The current schema's active rules if this process loaded them within `RULES_TTL`, else None."""
    cached = _rules_cache.get(connection.schema_name)
    return cached[1] if cached is not None and time.monotonic() - cached[0] <= RULES_TTL else None


def _active_rules() -> list[AlertRule]:
    rules = _cached_rules()
    if rules is None:
        rules = list(AlertRule.objects.filter(active=True))
        _rules_cache[connection.schema_name] = (time.monotonic(), rules)
    return rules


def forget_rules(**kwargs) -> None:
    """Drop the current schema's cached rules (a receiver of AlertRule's post_save/post_delete)."""
    _rules_cache.pop(connection.schema_name, None)


def _evaluate_alerts_in(tenant, event: AuditEvent) -> None:
    """Run after the event's transaction committed, in the event's tenant."""
    if tenant is None or tenant.schema_name == get_public_schema_name():
        return
    if connection.schema_name == tenant.schema_name:
        evaluate_alerts(event)
        return
    with tenant_context(tenant):
        evaluate_alerts(event)


def evaluate_alerts(event: AuditEvent) -> list[Alert]:
    """Raise the alerts whose rule `event` brings to its threshold; return them.

    Only active rules whose pattern matches the event's action are counted, over their window
    (per actor if the rule says so): with no matching rule, this costs no query, and `record()`
    does not even call it once the rules are cached (a change takes effect at once in the process
    that made it, within `RULES_TTL` seconds in the others). A rule alerts at most once per window
    (and actor).
    """
    rules = [rule for rule in _active_rules() if _matches(rule.action_pattern, event.action)]
    raised = []
    for rule in rules:
        since = timezone.now() - timedelta(minutes=rule.window_minutes)
        events = AuditEvent.objects.filter(_action_filter(rule.action_pattern), created_at__gte=since)
        subject = ""
        if rule.per_actor:
            if event.actor_id is not None:
                subject = str(event.actor_id)
                events = events.filter(actor_id=event.actor_id)
            else:
                subject = event.actor_repr
                events = events.filter(actor__isnull=True, actor_repr=event.actor_repr)
        count = events.count()
        if count < rule.threshold:
            continue
        with transaction.atomic():
            # One evaluation at a time per rule: two commits at once raise one alert. A rule
            # deleted or turned off since it was cached raises nothing.
            if not AlertRule.objects.select_for_update().filter(pk=rule.pk, active=True).exists():
                continue
            if Alert.objects.filter(rule=rule, subject=subject, created_at__gte=since).exists():
                continue
            alert = Alert.objects.create(rule=rule, event_id=event.seq, subject=subject, count=count,
                                         message=_alert_message(rule, event, count))
            recipients = _recipients(rule.email_recipients)
            if recipients:
                transaction.on_commit(partial(_send_alert_mail, alert, recipients, connection.schema_name),
                                      robust=True)
        raised.append(alert)
    return raised


def _alert_message(rule: AlertRule, event: AuditEvent, count: int) -> str:
    actor = event.actor_repr or _("an anonymous or system actor")
    if rule.per_actor:
        text = _("%(rule)s: %(count)d events matching %(pattern)s by %(actor)s within %(minutes)d minutes "
                 "(latest: %(action)s #%(seq)d).")
    else:
        text = _("%(rule)s: %(count)d events matching %(pattern)s within %(minutes)d minutes "
                 "(latest: %(action)s #%(seq)d by %(actor)s).")
    return text % {"rule": rule.name, "count": count, "pattern": rule.action_pattern, "actor": actor,
                   "minutes": rule.window_minutes, "action": event.action, "seq": event.seq}


def _recipients(text: str) -> list[str]:
    return [address for address in re.split(r"[,;\s]+", text or "") if address]


def _send_alert_mail(alert: Alert, recipients: list[str], schema_name: str) -> None:
    subject = _("[%(tenant)s] Audit alert: %(rule)s") % {"tenant": schema_name, "rule": alert.rule.name}
    body = "\n\n".join([alert.message, _("Acknowledge it in the admin under Audit trail > Alerts.")])
    send_mail(subject, body, None, recipients)


def unacknowledged_alerts() -> QuerySet:
    return Alert.objects.filter(acknowledged_at__isnull=True).select_related("rule")


def acknowledge_alerts(alerts: Iterable[Alert] | QuerySet, user) -> int:
    """Mark alerts acknowledged by `user`; return how many were open."""
    queryset = alerts if isinstance(alerts, QuerySet) else Alert.objects.filter(pk__in=[a.pk for a in alerts])
    return queryset.filter(acknowledged_at__isnull=True).update(acknowledged_by=user, acknowledged_at=timezone.now())
