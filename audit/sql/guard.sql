-- lowcode_guard: what the runtime role may do to the audit trails, only through the owner role (AD-2).
--
-- The runtime role (the app's DATABASE_URL) creates tenant schemas and migrates them, but each
-- schema's audit trail must end up out of its reach. These SECURITY DEFINER functions run as the
-- owner role and do exactly three things for it:
--   seal_audit(schema)          after a schema's migrations: the owner takes the schema, the events
--                               table and its trigger functions; the runtime role keeps USAGE and
--                               CREATE on the schema and SELECT, INSERT on the events.
--   purge_audit(schema, seq)    retention: deletes the events up to `seq`, only if all of them are
--                               older than the tenant's retention and an `audit.archive` event
--                               records that seq and its hash (the anchor `verify` checks).
--   drop_tenant_schema(schema)  tenant deletion (and a failed creation's clean-up): the whole schema,
--                               trail included, which is visible; never public or a system schema.
--
-- Run it as a superuser, after creating the roles (README, "Audit trail: roles"), in the product's
-- database and in template1 (so databases created later, such as test databases, have it):
--   psql -v ON_ERROR_STOP=1 -v owner=lowcode_owner -v runtime=lowcode -d lowcode -f audit/sql/guard.sql
-- Running it again replaces the functions. lowcode/embedded.py runs it for the embedded server.

CREATE SCHEMA IF NOT EXISTS lowcode_guard;
ALTER SCHEMA lowcode_guard OWNER TO :"owner";
REVOKE ALL ON SCHEMA lowcode_guard FROM PUBLIC;
GRANT USAGE ON SCHEMA lowcode_guard TO :"runtime";

CREATE OR REPLACE FUNCTION lowcode_guard.seal_audit(target_schema text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    runtime text := current_setting('lowcode.runtime_role');
    events regclass := to_regclass(format('%I.audit_auditevent', target_schema));
BEGIN
    IF events IS NULL THEN
        RETURN false;  -- No trail in this schema (public).
    END IF;
    -- The schema too: its owner could drop the table or rename the schema and put another in its place.
    EXECUTE format('ALTER SCHEMA %I OWNER TO %I', target_schema, current_user);
    EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO %I', target_schema, runtime);
    EXECUTE format('ALTER TABLE %s OWNER TO %I', events, current_user);
    EXECUTE format('REVOKE ALL ON TABLE %s FROM PUBLIC, %I', events, runtime);
    EXECUTE format('GRANT SELECT, INSERT ON TABLE %s TO %I', events, runtime);
    EXECUTE format('GRANT USAGE ON SEQUENCE %s TO %I', pg_get_serial_sequence(events::text, 'seq'), runtime);
    -- The hash and trigger functions: whoever owns them could replace them.
    EXECUTE format('ALTER FUNCTION %I.audit_event_hash(%s) OWNER TO %I', target_schema, events, current_user);
    EXECUTE format('ALTER FUNCTION %I.audit_event_chain() OWNER TO %I', target_schema, current_user);
    EXECUTE format('ALTER FUNCTION %I.audit_event_protect() OWNER TO %I', target_schema, current_user);
    RETURN true;
END
$$;

CREATE OR REPLACE FUNCTION lowcode_guard.purge_audit(target_schema text, last_seq bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    events regclass := to_regclass(format('%I.audit_auditevent', target_schema));
    audit_settings regclass := to_regclass(format('%I.audit_auditsettings', target_schema));
    days integer;
    cutoff timestamptz;
    last_hash text;
    found boolean;
    removed bigint;
BEGIN
    IF events IS NULL OR audit_settings IS NULL THEN
        RAISE EXCEPTION 'schema % has no audit trail', target_schema USING ERRCODE = 'undefined_table';
    END IF;
    -- The insert trigger's lock: nothing is appended until this transaction ends.
    PERFORM pg_advisory_xact_lock(hashtext(target_schema || '.audit'));
    EXECUTE format('SELECT retention_days FROM %s WHERE id = 1', audit_settings) INTO days;
    IF days IS NULL OR days < 1 THEN
        RAISE EXCEPTION 'schema % keeps its audit events forever', target_schema
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    cutoff := now() - make_interval(days => days);
    EXECUTE format('SELECT hash FROM %s WHERE seq = $1', events) INTO last_hash USING last_seq;
    IF last_hash IS NULL THEN
        RAISE EXCEPTION 'schema % has no audit event %', target_schema, last_seq USING ERRCODE = 'no_data_found';
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE seq <= $1 AND created_at >= $2)', events)
        INTO found USING last_seq, cutoff;
    IF found THEN
        RAISE EXCEPTION 'audit events up to % include some newer than the retention cutoff %', last_seq, cutoff
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE seq > $1 AND action = %L '
                   'AND data ->> %L = $1::text AND data ->> %L = $2)', events, 'audit.archive', 'last_seq', 'last_hash')
        INTO found USING last_seq, last_hash;
    IF NOT found THEN
        RAISE EXCEPTION 'no audit.archive event records seq % and its hash', last_seq
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM set_config('lowcode.audit_retention', 'on', true);
    EXECUTE format('DELETE FROM %s WHERE seq <= $1', events) USING last_seq;
    GET DIAGNOSTICS removed = ROW_COUNT;
    PERFORM set_config('lowcode.audit_retention', '', true);
    RETURN removed;
END
$$;

CREATE OR REPLACE FUNCTION lowcode_guard.drop_tenant_schema(target_schema text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF target_schema IN ('public', 'information_schema', 'lowcode_guard') OR target_schema LIKE 'pg\_%' THEN
        RAISE EXCEPTION 'schema % is not a tenant''s', target_schema USING ERRCODE = 'insufficient_privilege';
    END IF;
    EXECUTE format('DROP SCHEMA %I CASCADE', target_schema);
END
$$;

ALTER FUNCTION lowcode_guard.seal_audit(text) OWNER TO :"owner";
ALTER FUNCTION lowcode_guard.purge_audit(text, bigint) OWNER TO :"owner";
ALTER FUNCTION lowcode_guard.drop_tenant_schema(text) OWNER TO :"owner";
ALTER FUNCTION lowcode_guard.seal_audit(text) SET lowcode.runtime_role = :'runtime';
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA lowcode_guard FROM PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA lowcode_guard TO :"runtime";
