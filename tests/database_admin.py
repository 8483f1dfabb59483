"""The database superuser, for tests that play an attacker with it or undo what only it can.

The application (and every other test) connects as the runtime role, as `make run` does. This is
the embedded server's superuser, or DATABASE_ADMIN_URL's role when tests run on a server of your
own (DATABASE_URL); its connections are plain psycopg ones, outside Django's test transaction.
"""

from __future__ import annotations

import os

import psycopg
from django.db import connection
from django_tenants.utils import schema_context
from psycopg import sql
from psycopg.conninfo import make_conninfo

from audit import services
from lowcode import embedded


def admin_connection(database: str = "") -> psycopg.Connection:
    """An autocommit connection to the test database (or another `database` of its server) as its superuser."""
    database = database or connection.settings_dict["NAME"]
    if os.environ.get("DATABASE_URL"):
        conninfo = make_conninfo(os.environ["DATABASE_ADMIN_URL"], dbname=database)
    else:
        conninfo = embedded.EmbeddedPostgres().admin_conninfo(database)
    return psycopg.connect(conninfo, autocommit=True)


def as_superuser(schema: str, *statements: str | tuple[str, list]) -> list:
    """Run statements as the superuser, in `schema`, with triggers off (as an attacker would), in one
    committed transaction; return the last one's rows."""
    rows = []
    with admin_connection() as conn, conn.transaction():
        conn.execute(sql.SQL("SET LOCAL search_path = {}").format(sql.Identifier(schema)))
        conn.execute("SET LOCAL session_replication_role = replica")
        for statement in statements:
            text, params = statement if isinstance(statement, tuple) else (statement, [])
            cursor = conn.execute(text, params)
            rows = cursor.fetchall() if cursor.description else []
    return rows


def reset_trail(schema: str) -> None:
    """Empty the schema's committed trail and forget its checkpoints: a fresh start for a test."""
    as_superuser(schema, "TRUNCATE audit_auditevent, audit_auditblock")
    with schema_context(schema):
        services.forget_checkpoints()
