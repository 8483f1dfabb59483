-- lowcode_guard: what the runtime role may do to the audit trails, only through the owner role (AD-2).
--
-- The runtime role (the app's DATABASE_URL) creates tenant schemas and migrates them, but each
-- schema's audit trail must end up out of its reach. These SECURITY DEFINER functions run as the
-- owner role and do exactly these things for it:
--   upgrade_audit(schema)       audit migrations 0003 and 0004 (also on schemas sealed before them): the
--                               events' `txid`, the blocks table and its `event_hashes`, the hash,
--                               digest and trigger functions.
--                               Fixed, idempotent DDL; nothing the caller passes but the schema.
--   seal_audit(schema)          after a schema's migrations: the owner takes the schema, the events
--                               and blocks tables and their functions; the runtime role keeps USAGE
--                               and CREATE on the schema, SELECT and INSERT on the events, SELECT on
--                               the blocks.
--   seal_events(schema)         the sealing task: the committed events not in a block yet, as the
--                               next hash-chained block (README, "Audit trail: blocks").
--   purge_audit(schema, block)  retention: deletes the events of the blocks up to `block` and the
--                               blocks before it, only if all those events are older than the
--                               tenant's retention and an `audit.archive` event records that block
--                               and its hash (the anchor `verify` checks).
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

CREATE OR REPLACE FUNCTION lowcode_guard.upgrade_audit(target_schema text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    events regclass := to_regclass(format('%I.audit_auditevent', target_schema));
    legacy boolean;
BEGIN
    IF events IS NULL THEN
        RAISE EXCEPTION 'schema % has no audit trail', target_schema USING ERRCODE = 'undefined_table';
    END IF;
    -- Each event's transaction: the sealing takes the events of the transactions that have ended.
    -- Existing events get 0 (the first block's range) without rewriting a row.
    EXECUTE format('ALTER TABLE %s ADD COLUMN IF NOT EXISTS txid bigint NOT NULL DEFAULT 0', events);
    EXECUTE format('CREATE INDEX IF NOT EXISTS audit_event_txid_idx ON %s (txid)', events);
    -- Numbers now come from the sequence (the trigger used to count): it continues after the last one.
    EXECUTE format('SELECT setval(%L, GREATEST(max(seq), 1), max(seq) IS NOT NULL) FROM %s',
                   pg_get_serial_sequence(events::text, 'seq'), events);
    EXECUTE format($sql$
        CREATE TABLE IF NOT EXISTS %I.audit_auditblock (
            number bigint PRIMARY KEY,
            txid_from bigint NOT NULL,
            txid_to bigint NOT NULL,
            count integer NOT NULL,
            first_seq bigint NOT NULL,
            last_seq bigint NOT NULL,
            events_hash varchar(64) NOT NULL,
            prev_hash varchar(64) NOT NULL,
            created_at timestamptz NOT NULL,
            hash varchar(64) NOT NULL
        )$sql$, target_schema);
    -- A block's hash: SHA-256 (hex) of its fields as a jsonb array, the time in UTC to the microsecond.
    EXECUTE format($sql$
        CREATE OR REPLACE FUNCTION %1$I.audit_block_hash(b %1$I.audit_auditblock) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $body$
            SELECT encode(sha256(convert_to(jsonb_build_array(
                b.number, b.txid_from, b.txid_to, b.count, b.first_seq, b.last_seq, b.events_hash, b.prev_hash,
                to_char(b.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
            )::text, 'UTF8')), 'hex')
        $body$
        $sql$, target_schema);
    -- Where an event's hash is kept: in its block's `event_hashes` ("seq:hash" in seq order), computed
    -- when it is sealed. Blocks sealed before that get their events' stored hashes (once, here).
    EXECUTE format('ALTER TABLE %I.audit_auditblock ADD COLUMN IF NOT EXISTS event_hashes text[] NOT NULL DEFAULT %L',
                   target_schema, '{}');
    EXECUTE format('CREATE INDEX IF NOT EXISTS audit_block_txid_to_idx ON %I.audit_auditblock (txid_to)', target_schema);
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.audit_auditblock WHERE count > 0 AND event_hashes = %L)',
                   target_schema, '{}') INTO legacy;
    IF legacy THEN
        EXECUTE format('ALTER TABLE %I.audit_auditblock DISABLE TRIGGER audit_block_protect', target_schema);
        EXECUTE format($sql$
            UPDATE %1$I.audit_auditblock b SET event_hashes = (
                SELECT COALESCE(array_agg(e.seq::text || ':' || e.hash ORDER BY e.seq), '{}')
                FROM %1$I.audit_auditevent e WHERE e.txid >= b.txid_from AND e.txid < b.txid_to)
            WHERE count > 0 AND event_hashes = '{}'
            $sql$, target_schema);
        EXECUTE format('ALTER TABLE %I.audit_auditblock ENABLE TRIGGER audit_block_protect', target_schema);
    END IF;
    -- The events of the transactions [txid_from, txid_to), hashed from their content now: how many,
    -- first and last seq, their "seq:hash" in seq order and its SHA-256 (joined by commas). The
    -- sealing and `verify` both use it. (Its columns changed with event_hashes: dropped first.)
    EXECUTE format('DROP FUNCTION IF EXISTS %I.audit_events_digest(bigint, bigint)', target_schema);
    EXECUTE format($sql$
        CREATE FUNCTION %1$I.audit_events_digest(txid_from bigint, txid_to bigint,
            OUT count integer, OUT first_seq bigint, OUT last_seq bigint, OUT event_hashes text[],
            OUT events_hash text)
        LANGUAGE sql STABLE AS $body$
            SELECT count, first_seq, last_seq, event_hashes,
                   encode(sha256(convert_to(array_to_string(event_hashes, ','), 'UTF8')), 'hex')
            FROM (SELECT count(*)::integer AS count, min(e.seq) AS first_seq, max(e.seq) AS last_seq,
                         COALESCE(array_agg(e.seq::text || ':' || %1$I.audit_event_hash(e) ORDER BY e.seq), '{}')
                             AS event_hashes
                  FROM %1$I.audit_auditevent e WHERE e.txid >= txid_from AND e.txid < txid_to) events
        $body$
        $sql$, target_schema);
    -- The insert trigger waits for no one and hashes nothing (the sealing does, off the writer's
    -- path): it notes the event's transaction; prev_hash and hash stay empty on new events.
    EXECUTE format($sql$
        CREATE OR REPLACE FUNCTION %I.audit_event_chain() RETURNS trigger
        LANGUAGE plpgsql AS $body$
        BEGIN
            IF TG_TABLE_SCHEMA <> current_schema() THEN
                RAISE EXCEPTION 'audit events of schema %% must be written with it first in the search path (now %%)',
                    TG_TABLE_SCHEMA, current_schema();
            END IF;
            NEW.txid := pg_current_xact_id()::text::bigint;
            NEW.prev_hash := '';
            NEW.created_at := COALESCE(NEW.created_at, now());
            NEW.data := COALESCE(NEW.data, '{}'::jsonb);
            NEW.hash := '';
            RETURN NEW;
        END
        $body$
        $sql$, target_schema);
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = format('%I.audit_auditblock', target_schema)::regclass
                   AND tgname = 'audit_block_protect') THEN
        EXECUTE format('CREATE TRIGGER audit_block_protect BEFORE UPDATE OR DELETE ON %1$I.audit_auditblock '
                       'FOR EACH ROW EXECUTE FUNCTION %1$I.audit_event_protect()', target_schema);
        EXECUTE format('CREATE TRIGGER audit_block_protect_truncate BEFORE TRUNCATE ON %1$I.audit_auditblock '
                       'FOR EACH STATEMENT EXECUTE FUNCTION %1$I.audit_event_protect()', target_schema);
    END IF;
END
$$;

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
    IF to_regclass(format('%I.audit_auditblock', target_schema)) IS NOT NULL THEN
        EXECUTE format('ALTER TABLE %I.audit_auditblock OWNER TO %I', target_schema, current_user);
        EXECUTE format('REVOKE ALL ON TABLE %I.audit_auditblock FROM PUBLIC, %I', target_schema, runtime);
        EXECUTE format('GRANT SELECT ON TABLE %I.audit_auditblock TO %I', target_schema, runtime);
        EXECUTE format('ALTER FUNCTION %I.audit_block_hash(%I.audit_auditblock) OWNER TO %I', target_schema,
                       target_schema, current_user);
        EXECUTE format('ALTER FUNCTION %I.audit_events_digest(bigint, bigint) OWNER TO %I', target_schema,
                       current_user);
    END IF;
    RETURN true;
END
$$;

DROP FUNCTION IF EXISTS lowcode_guard.purge_audit(text, bigint);
CREATE FUNCTION lowcode_guard.purge_audit(target_schema text, last_block bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    events regclass := to_regclass(format('%I.audit_auditevent', target_schema));
    blocks regclass := to_regclass(format('%I.audit_auditblock', target_schema));
    audit_settings regclass := to_regclass(format('%I.audit_auditsettings', target_schema));
    days integer;
    cutoff timestamptz;
    block_end bigint;
    block_hash text;
    found boolean;
    removed bigint;
BEGIN
    IF events IS NULL OR blocks IS NULL OR audit_settings IS NULL THEN
        RAISE EXCEPTION 'schema % has no audit trail', target_schema USING ERRCODE = 'undefined_table';
    END IF;
    -- The sealing's lock: no block is added until this transaction ends.
    PERFORM pg_advisory_xact_lock(hashtext(target_schema || '.audit_seal'));
    EXECUTE format('SELECT retention_days FROM %s WHERE id = 1', audit_settings) INTO days;
    IF days IS NULL OR days < 1 THEN
        RAISE EXCEPTION 'schema % keeps its audit events forever', target_schema
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    cutoff := now() - make_interval(days => days);
    EXECUTE format('SELECT txid_to, hash FROM %s WHERE number = $1', blocks) INTO block_end, block_hash
        USING last_block;
    IF block_hash IS NULL THEN
        RAISE EXCEPTION 'schema % has no audit block %', target_schema, last_block USING ERRCODE = 'no_data_found';
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE txid < $1 AND created_at >= $2)', events)
        INTO found USING block_end, cutoff;
    IF found THEN
        RAISE EXCEPTION 'audit events up to block % include some newer than the retention cutoff %', last_block,
            cutoff USING ERRCODE = 'insufficient_privilege';
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE action = %L '
                   'AND data ->> %L = $1::text AND data ->> %L = $2)', events, 'audit.archive', 'last_block',
                   'last_block_hash')
        INTO found USING last_block, block_hash;
    IF NOT found THEN
        RAISE EXCEPTION 'no audit.archive event records block % and its hash', last_block
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM set_config('lowcode.audit_retention', 'on', true);
    EXECUTE format('DELETE FROM %s WHERE txid < $1', events) USING block_end;
    GET DIAGNOSTICS removed = ROW_COUNT;
    -- The last removed block stays: the anchor the next one links to.
    EXECUTE format('DELETE FROM %s WHERE number < $1', blocks) USING last_block;
    PERFORM set_config('lowcode.audit_retention', '', true);
    RETURN removed;
END
$$;

CREATE OR REPLACE FUNCTION lowcode_guard.seal_events(target_schema text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    blocks regclass := to_regclass(format('%I.audit_auditblock', target_schema));
    horizon bigint;
    running bigint[];
    last_number bigint;
    last_end bigint;
    last_hash text;
    digest record;
    sealed_at timestamptz := now();
    block_hash text;
BEGIN
    IF blocks IS NULL THEN
        RAISE EXCEPTION 'schema % has no audit blocks', target_schema USING ERRCODE = 'undefined_table';
    END IF;
    -- Sealers of a schema take turns; writers never wait for this lock.
    PERFORM pg_advisory_xact_lock(hashtext(target_schema || '.audit_seal'));
    -- The horizon: every transaction of this database with an id below it has ended, so no event of
    -- one of them can appear any more and the events below it are final. Only this database's
    -- transactions write its events, so one running in another database of the server (another
    -- product, a parallel test process) must not hold the sealing back, as the cluster-wide oldest
    -- running transaction (the snapshot's xmin) would. Why the least of the ids below is exact:
    -- S, the snapshot of the statement reading pg_stat_activity, is taken before that read. A
    -- transaction of this database with an id below S's xmax had that id when S was taken; by the
    -- read it has either ended, or it is still running and listed with its backend_xid (a
    -- prepared one in pg_prepared_xacts, read after it: preparing lists it there before it leaves
    -- its backend). A transaction that gets an id after S gets one >= xmax. So every id below
    -- min(xmax, the listed ids) is of a transaction that has ended (or of another database), and
    -- as each later statement of a read committed transaction takes a new snapshot, the events'
    -- statement sees whatever of them committed. Our own transaction, if it has an id, is listed.
    -- pg_stat_activity is read once per transaction and then cached: pg_stat_clear_snapshot()
    -- makes this read a fresh one. backend_xid is 32 bits: each listed id is widened to 64 next
    -- to xmax (a running id is within 2^31 of it). Other roles' sessions show every column only to
    -- pg_read_all_stats (granted to the owner: README, "Audit trail: roles"). Without it, or in
    -- another isolation level (whose later statements keep the transaction's first snapshot and
    -- would not see transactions ended since), the horizon is the snapshot's xmin: every id
    -- below it had ended when the snapshot was taken, in every database.
    IF current_setting('transaction_isolation') = 'read committed'
            AND pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') THEN
        PERFORM pg_stat_clear_snapshot();
        SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint, array_agg(backend_xid::text::bigint)
            INTO horizon, running FROM pg_stat_activity
            WHERE datname = current_database() AND backend_xid IS NOT NULL;
        running := running || ARRAY(SELECT transaction::text::bigint FROM pg_prepared_xacts
                                    WHERE database = current_database());
        SELECT LEAST(horizon, min(horizon + (id - horizon % 4294967296 + 6442450944) % 4294967296 - 2147483648))
            INTO horizon FROM unnest(running) AS id;
    ELSE
        horizon := pg_snapshot_xmin(pg_current_snapshot())::text::bigint;
    END IF;
    EXECUTE format('SELECT number, txid_to, hash FROM %s ORDER BY number DESC LIMIT 1', blocks)
        INTO last_number, last_end, last_hash;
    IF COALESCE(last_end, 0) >= horizon THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT * FROM %I.audit_events_digest($1, $2)', target_schema)
        INTO digest USING COALESCE(last_end, 0), horizon;
    IF digest.count = 0 THEN
        RETURN NULL;  -- The next block starts where the last one ended all the same.
    END IF;
    -- The block's hash leaves out its hash and event_hashes (which events_hash covers).
    EXECUTE format('SELECT %I.audit_block_hash(ROW($1, $2, $3, $4, $5, $6, $7, $8, $9, %L, %L)::%s)',
                   target_schema, '', '{}', blocks)
        INTO block_hash USING COALESCE(last_number, 0) + 1, COALESCE(last_end, 0), horizon, digest.count,
                               digest.first_seq, digest.last_seq, digest.events_hash, COALESCE(last_hash, ''),
                               sealed_at;
    EXECUTE format('INSERT INTO %s (number, txid_from, txid_to, count, first_seq, last_seq, events_hash, prev_hash, '
                   'created_at, hash, event_hashes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)', blocks)
        USING COALESCE(last_number, 0) + 1, COALESCE(last_end, 0), horizon, digest.count, digest.first_seq,
              digest.last_seq, digest.events_hash, COALESCE(last_hash, ''), sealed_at, block_hash,
              digest.event_hashes;
    RETURN COALESCE(last_number, 0) + 1;
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
ALTER FUNCTION lowcode_guard.upgrade_audit(text) OWNER TO :"owner";
ALTER FUNCTION lowcode_guard.seal_events(text) OWNER TO :"owner";
ALTER FUNCTION lowcode_guard.seal_audit(text) SET lowcode.runtime_role = :'runtime';
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA lowcode_guard FROM PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA lowcode_guard TO :"runtime";
