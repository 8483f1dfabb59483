#!/bin/sh
# Lowcode's database roles, database and audit guard on a PostgreSQL server of your own, run as
# its superuser; safe to run again (docker-compose.yml runs it on every start). README, "Audit
# trail: roles" explains the roles. Environment: PGHOST, PGPORT, PGUSER, PGPASSWORD (the
# superuser's), LOWCODE_DB_PASSWORD (the runtime role's, as in DATABASE_URL); GUARD_SQL (default
# audit/sql/guard.sql).
set -eu
guard=${GUARD_SQL:-$(dirname "$0")/../audit/sql/guard.sql}

psql -v ON_ERROR_STOP=1 -v password="$LOWCODE_DB_PASSWORD" -d postgres <<'SQL'
SELECT 'CREATE ROLE lowcode_owner NOLOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lowcode_owner') \gexec
SELECT 'CREATE ROLE lowcode LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lowcode') \gexec
ALTER ROLE lowcode LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB PASSWORD :'password';
GRANT lowcode TO lowcode_owner;
GRANT pg_read_all_stats TO lowcode_owner;
SELECT 'CREATE DATABASE lowcode OWNER lowcode_owner'
    WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'lowcode') \gexec
GRANT CONNECT, CREATE, TEMPORARY ON DATABASE lowcode TO lowcode;
\connect lowcode
GRANT USAGE, CREATE ON SCHEMA public TO lowcode;
SQL

for database in lowcode template1; do
  psql -v ON_ERROR_STOP=1 -v owner=lowcode_owner -v runtime=lowcode -d "$database" -f "$guard"
done
