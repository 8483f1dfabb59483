"""Audit trail services (AD-1..AD-5): record, verify, query and export, history, retention, alerts.

The admin, the `lowcode audit` commands and the Celery tasks are thin shells over these
functions. Events live in each tenant's schema; every function works on the connection's
current tenant.
"""

from __future__ import annotations

import csv
import gzip
import io
import ipaddress
import logging
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import TextIO

from django.core.files import File
from django.core.files.storage import default_storage
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import Max, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.functional import SimpleLazyObject, empty
from django.utils.translation import gettext as _
from django_tenants.utils import get_public_schema_name, tenant_context

from audit.models import Alert, AlertRule, AuditEvent, AuditSettings
from lowcode.logs import request_var

logger = logging.getLogger(__name__)

__all__ = [
    "EXPORT_COLUMNS", "EXPORT_FORMATS", "RetentionResult", "VerifyResult", "acknowledge_alerts", "apply_retention",
    "archive_path", "changed_fields", "evaluate_alerts", "export", "filter_events", "history", "is_tenant_schema",
    "iter_export", "record", "state_at", "unacknowledged_alerts", "verify",
]

USER_AGENT_MAX = 500
REPR_MAX = 500
ARCHIVE_ACTION = "audit.archive"
EXPORT_FORMATS = ("csv", "jsonl")
#: Columns of exports and archives, in order.
EXPORT_COLUMNS = ["seq", "created_at", "actor_id", "actor_repr", "api_key_prefix", "action", "target_type",
                  "target_id", "target_repr", "before", "after", "data", "result", "request_id", "ip", "user_agent",
                  "prev_hash", "hash"]
_JSON_COLUMNS = {"before", "after", "data"}


# --- recording ---------------------------------------------------------------------------------


def record(action: str, *, target=None, target_type: str = "", target_id: str = "", target_repr: str = "",
           before: dict | None = None, after: dict | None = None, result: str = "ok", actor=None,
           data: dict | None = None, request=None) -> AuditEvent:
    """Record one audit event in the current transaction and return it.

    The event is one INSERT in the caller's transaction: if the change it records rolls back,
    so does the event. The database numbers it (`seq`) and chains its `hash` to the previous
    event of the tenant (see migration 0002); until the transaction ends, other transactions
    that record events in this tenant wait for it.

    Action names are namespaced, lowercase, dot-separated:

    - records: ``data.<entity>.<create|update|delete|restore|purge|export|import|view>``
      (target_type ``data.<entity>``, target_id the record's id);
    - permissions: ``rbac.<object>.<change>``, e.g. ``rbac.role.change``, ``rbac.grant.create``;
    - sign-in: ``auth.<login|logout|login_failed>``;
    - designs: ``metadata.<kind>.<publish|rollback>``, ``dynamic_models.migration.apply``;
    - the trail itself: ``audit.archive`` (retention).

    :param target: a model instance; fills target_type (``app_label.model``), target_id and
        target_repr unless they are given.
    :param before: the changed fields' values before the change (only those fields).
    :param after: the same fields' values after it.
    :param result: ``ok``, ``denied`` or ``error``.
    :param actor: the user who acted; default: the current request's user (none outside a request).
    :param data: anything else worth keeping (JSON).
    :param request: the HttpRequest; default: the current one (`lowcode.logs.request_var`).
    """
    if result not in AuditEvent.Result.values:
        raise ValueError(f"result must be one of {AuditEvent.Result.values}, not {result!r}")
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
    event = AuditEvent(
        action=action, actor=actor, actor_repr=actor.get_username() if actor is not None else "",
        api_key_prefix=getattr(api_key, "prefix", "") or "",
        target_type=target_type, target_id=str(target_id), target_repr=str(target_repr)[:REPR_MAX],
        before=before, after=after, data=data or {}, result=result,
        request_id=str(getattr(request, "id", "") or "")[:64] if request is not None else "",
        ip=_client_ip(request), user_agent=_user_agent(request),
    )
    event.save(force_insert=True)
    tenant = getattr(connection, "tenant", None)
    transaction.on_commit(partial(_evaluate_alerts_in, tenant, event), robust=True)
    return event


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


@dataclass(frozen=True)
class VerifyResult:
    """What `verify()` found. `broken_seq` is the first event that does not check out."""

    count: int
    first_seq: int | None
    last_seq: int | None
    head_hash: str
    broken_seq: int | None
    bad_hashes: int
    bad_links: int
    start_anchored: bool
    anchor_seq: int | None = None

    @property
    def ok(self) -> bool:
        return self.broken_seq is None

    @property
    def message(self) -> str:
        if self.ok:
            return _("OK: %(count)d events (seq %(first)s to %(last)s) verified; head hash %(head)s.") % {
                "count": self.count, "first": self.first_seq or "-", "last": self.last_seq or "-",
                "head": self.head_hash or "-"}
        parts = []
        if self.bad_hashes:
            parts.append(_("%(n)d events whose content does not match their hash") % {"n": self.bad_hashes})
        if self.bad_links:
            parts.append(_("%(n)d breaks in the chain (missing or reordered events)") % {"n": self.bad_links})
        if not self.start_anchored:
            parts.append(_("the first event (seq %(seq)s) follows no archived event") % {"seq": self.first_seq})
        return _("TAMPERED: first broken event is seq %(seq)d of %(count)d: %(details)s.") % {
            "seq": self.broken_seq, "count": self.count, "details": "; ".join(parts)}


_VERIFY_SQL = """
WITH chain AS (
    SELECT e.seq, e.hash, e.prev_hash, audit_event_hash(e) AS computed,
           lag(e.hash) OVER w AS expected_prev, lag(e.seq) OVER w AS prev_seq
    FROM audit_auditevent e
    WINDOW w AS (ORDER BY e.seq)
)
SELECT count(*), min(seq), max(seq),
       min(seq) FILTER (WHERE computed IS DISTINCT FROM hash),
       count(*) FILTER (WHERE computed IS DISTINCT FROM hash),
       min(seq) FILTER (WHERE prev_seq IS NOT NULL
                        AND (prev_hash IS DISTINCT FROM expected_prev OR seq <> prev_seq + 1)),
       count(*) FILTER (WHERE prev_seq IS NOT NULL
                        AND (prev_hash IS DISTINCT FROM expected_prev OR seq <> prev_seq + 1))
FROM chain
"""


def verify() -> VerifyResult:
    """Recompute every event's hash in the database and check the chain (AD-2).

    One query recomputes the hashes with the insert trigger's own function and compares each
    event's `prev_hash` with its predecessor's hash. The first event must start the chain
    (seq 1, empty `prev_hash`) or, after a retention purge, continue from the last removed
    event as recorded by the `audit.archive` event that removed it.
    """
    with connection.cursor() as cursor:
        cursor.execute(_VERIFY_SQL)
        count, first, last, bad_hash_seq, bad_hashes, bad_link_seq, bad_links = cursor.fetchone()
        start_anchored, anchor_seq, head_hash = True, None, ""
        if count:
            cursor.execute("SELECT (SELECT prev_hash FROM audit_auditevent ORDER BY seq LIMIT 1), "
                           "(SELECT hash FROM audit_auditevent ORDER BY seq DESC LIMIT 1)")
            start_prev_hash, head_hash = cursor.fetchone()
            if first == 1:
                start_anchored = start_prev_hash == ""
            else:
                anchor_seq = AuditEvent.objects.filter(
                    action=ARCHIVE_ACTION, data__last_seq=first - 1, data__last_hash=start_prev_hash,
                ).values_list("seq", flat=True).order_by("-seq").first()
                start_anchored = anchor_seq is not None
    broken = [seq for seq in (bad_hash_seq, bad_link_seq, None if start_anchored else first) if seq is not None]
    return VerifyResult(count=count, first_seq=first, last_seq=last, head_hash=head_hash or "",
                        broken_seq=min(broken) if broken else None, bad_hashes=bad_hashes, bad_links=bad_links,
                        start_anchored=start_anchored, anchor_seq=anchor_seq)


def _lock_trail(cursor) -> None:
    """Take the lock the insert trigger takes: nobody appends until this transaction ends."""
    cursor.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.audit'))")


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
    **{name: f'{_TABLE}."{name}"' for name in EXPORT_COLUMNS},
    "created_at": f"""to_char({_TABLE}."created_at" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')""",
    "ip": f'host({_TABLE}."ip")',
    **{name: f'{_TABLE}."{name}"::text' for name in _JSON_COLUMNS},
}
#: One JSON object per event, keys in EXPORT_COLUMNS order; jsonb columns embedded as they are.
_JSON_LINE_SQL = "json_build_object({})::text".format(", ".join(
    f"'{name}', " + (f'{_TABLE}."{name}"' if name in _JSON_COLUMNS else _COLUMN_SQL[name])
    for name in EXPORT_COLUMNS))


def _export_rows(queryset: QuerySet, fmt: str, chunk_size: int) -> Iterator:
    """Rows through a server-side cursor, `chunk_size` at a time: CSV cells, or JSON Lines text."""
    # Constant SQL of this module, no input in it.
    if fmt == "jsonl":
        rows = queryset.annotate(_line=RawSQL(_JSON_LINE_SQL, [])).values_list("_line", flat=True)  # noqa: S611
    else:
        columns = {f"_{name}": RawSQL(_COLUMN_SQL[name], []) for name in EXPORT_COLUMNS}  # noqa: S611
        rows = queryset.annotate(**columns).values_list(*columns)
    return rows.iterator(chunk_size=chunk_size)


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
    cutoff: datetime
    file: str = ""
    event: AuditEvent | None = field(default=None, compare=False)


def archive_path(schema_name: str, first_seq: int, last_seq: int) -> str:
    """Where the archive of events `first_seq`..`last_seq` goes in the default storage.

    The project's storages put each tenant's files under its own prefix already; the schema in
    the name keeps archives apart under any storage.
    """
    return f"audit-archive/{schema_name}/{first_seq}_{last_seq}.jsonl.gz"


def apply_retention(*, now: datetime | None = None) -> RetentionResult | None:
    """Archive and remove the events older than the tenant's retention (AD-5); None if nothing to do.

    In one transaction holding the trail's lock: write the old events as gzipped JSON Lines to
    the default storage (if the settings ask for it), record an `audit.archive` event holding
    the last removed event's seq and hash (the anchor `verify()` checks the remaining chain
    against), then delete them with `lowcode.audit_retention` on for that statement only.
    """
    config = AuditSettings.load()
    if not config.retention_days:
        return None
    cutoff = (now or timezone.now()) - timedelta(days=config.retention_days)
    with transaction.atomic(), connection.cursor() as cursor:
        _lock_trail(cursor)
        # Events are numbered in commit order, their times in the order the changes began:
        # remove the whole prefix up to the newest old event, so the chain keeps no hole.
        last = AuditEvent.objects.filter(created_at__lt=cutoff).aggregate(last=Max("seq"))["last"]
        if last is None:
            return None
        first = AuditEvent.objects.order_by("seq").values_list("seq", flat=True)[:1].get()
        last_hash = AuditEvent.objects.filter(seq=last).values_list("hash", flat=True).get()
        old = AuditEvent.objects.filter(seq__lte=last)
        path = ""
        if config.archive_to_storage:
            path, removed = _write_archive(old, archive_path(connection.schema_name, first, last))
        else:
            removed = old.count()
        event = record(ARCHIVE_ACTION, target_type="audit.auditevent", target_id=f"{first}-{last}",
                       target_repr=_("Events %(first)s to %(last)s") % {"first": first, "last": last},
                       data={"first_seq": first, "last_seq": last, "last_hash": last_hash, "count": removed,
                             "cutoff": cutoff.isoformat(), "retention_days": config.retention_days, "file": path})
        cursor.execute("SET LOCAL lowcode.audit_retention = 'on'")
        cursor.execute("DELETE FROM audit_auditevent WHERE seq <= %s", [last])
        cursor.execute("SET LOCAL lowcode.audit_retention = 'off'")
    logger.info("audit retention: %d events removed (seq %d to %d), archive %s", removed, first, last, path or "-")
    return RetentionResult(removed=removed, first_seq=first, last_seq=last, cutoff=cutoff, file=path, event=event)


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


def _active_rules() -> list[AlertRule]:
    schema = connection.schema_name
    cached = _rules_cache.get(schema)
    if cached is None or time.monotonic() - cached[0] > RULES_TTL:
        cached = (time.monotonic(), list(AlertRule.objects.filter(active=True)))
        _rules_cache[schema] = cached
    return cached[1]


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
    (per actor if the rule says so): with no matching rule, this costs no query (the active
    rules are cached for a few seconds). A rule alerts at most once per window (and actor).
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
