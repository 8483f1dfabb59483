"""Integrity of the audit trail in the database (AD-2), in each tenant's schema.

- `audit_event_hash(row)`: SHA-256 (hex) of the event's canonical text, a jsonb array of its
  fields (jsonb's text form is canonical) with the time in UTC to the microsecond. The insert
  trigger and `audit.services.verify()` both use it, so they cannot disagree.
- BEFORE INSERT: under a per-schema advisory lock (held until the transaction ends, so events
  are chained in commit order), number the event after the last one and chain its hash.
- BEFORE UPDATE / DELETE / TRUNCATE: refused. Retention deletes with
  `SET LOCAL lowcode.audit_retention = 'on'`; `manage.py flush` (audit's override) truncates with
  `lowcode.audit_flush` on.

Table and function names are unqualified: django-tenants runs this in every tenant schema with
that schema first in the search path. The insert trigger refuses to run under another schema.
"""

from django.db import migrations

FORWARD = r"""
CREATE FUNCTION audit_event_hash(e audit_auditevent) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT encode(sha256(convert_to(jsonb_build_array(
        e.seq, e.prev_hash, to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        e.actor_id, e.actor_repr, e.api_key_prefix, e.action, e.target_type, e.target_id, e.target_repr,
        e.before, e.after, e.data, e.result, e.request_id, host(e.ip), e.user_agent
    )::text, 'UTF8')), 'hex')
$$;

CREATE FUNCTION audit_event_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    last_seq bigint;
    last_hash text;
BEGIN
    IF TG_TABLE_SCHEMA <> current_schema() THEN
        RAISE EXCEPTION 'audit events of schema % must be written with it first in the search path (now %)',
            TG_TABLE_SCHEMA, current_schema();
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.audit'));
    SELECT seq, hash INTO last_seq, last_hash FROM audit_auditevent ORDER BY seq DESC LIMIT 1;
    NEW.seq := COALESCE(last_seq, 0) + 1;
    NEW.prev_hash := COALESCE(last_hash, '');
    NEW.created_at := COALESCE(NEW.created_at, now());
    NEW.data := COALESCE(NEW.data, '{}'::jsonb);
    NEW.hash := audit_event_hash(NEW);
    RETURN NEW;
END
$$;

CREATE FUNCTION audit_event_protect() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('lowcode.audit_retention', true) = 'on' THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'TRUNCATE' AND current_setting('lowcode.audit_flush', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit events are append-only' USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER audit_event_chain BEFORE INSERT ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_event_chain();
CREATE TRIGGER audit_event_protect BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_event_protect();
CREATE TRIGGER audit_event_protect_truncate BEFORE TRUNCATE ON audit_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_protect();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS audit_event_protect_truncate ON audit_auditevent;
DROP TRIGGER IF EXISTS audit_event_protect ON audit_auditevent;
DROP TRIGGER IF EXISTS audit_event_chain ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_event_protect();
DROP FUNCTION IF EXISTS audit_event_chain();
DROP FUNCTION IF EXISTS audit_event_hash(audit_auditevent);
"""


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
