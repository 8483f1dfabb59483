"""django-tenants' PostgreSQL backend, sending `SET search_path` only when the session's differs,
and sending deferred writes with the transaction's next round trip.

With TENANT_LIMIT_SET_CALLS, django-tenants sets the search path once per tenant switch rather than
before every cursor, and forgets it on a rollback and a savepoint's rollback (PostgreSQL undoes a
SET issued inside them). It also forgets it on every switch, though: each request switches to
public and back to its tenant, so each request would send a SET. Here the path the session has
is kept across switches and forgotten where PostgreSQL may have undone it (rollback, savepoint
rollback, a failed SET, closing), so a request to the connection's last tenant sends none.
Not for a pooler that shares sessions between transactions (PgBouncer's transaction mode).

`send_with_next()` takes a write that nobody reads back at once (an audit event) and sends it in
the same message as the transaction's COMMIT or RELEASE SAVEPOINT: one round trip fewer for each
audited write. Any other statement first sends it on its own, so the transaction reads its own
writes as before. Such writes repeat on every request, so each is a statement the session
prepared once (PREPARE), run by EXECUTE: PostgreSQL does not parse and plan it each time. A
prepared statement follows the search path: after a tenant switch, PostgreSQL plans it again for
the new path's tables.
"""

import datetime
import itertools
import re
from collections.abc import Callable, Sequence

from django.db.backends.utils import debug_transaction
from django_tenants.postgresql_backend import base
from psycopg import errors, pq, sql
from psycopg.types.json import Jsonb

_PLACEHOLDER = re.compile(r"%([%s])")


def numbered_placeholders(sql: str) -> str:
    """`sql` with psycopg's positional placeholders (`%s`) numbered as PREPARE wants them (`$1`...)."""
    numbers = itertools.count(1)
    return _PLACEHOLDER.sub(lambda match: "%" if match[1] == "%" else f"${next(numbers)}", sql)


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs):
        #: The search path the database session has, when known.
        self.session_search_paths = None
        #: (sql, params, on_row) waiting for the transaction's next round trip (`send_with_next`).
        self.deferred_writes = []
        #: The name of the statement this session prepared for each deferred write's SQL.
        self.prepared_writes = {}
        #: The session's cursor for deferred writes and libpq's quoting for their values, kept.
        self._deferred_cursor = self._escaping = None
        super().__init__(*args, **kwargs)
        # First and for good: `execute_wrapper()` blocks pop the last wrapper when they end.
        self.execute_wrappers.append(self._send_before_statement)

    # --- search path --------------------------------------------------------------------------

    def _handle_search_path(self, cursor=None):
        if self._setting_search_path:  # Re-entered while getting the cursor for the SET.
            return
        if self.search_path_set_schemas is None and self.session_search_paths is not None \
                and self.session_search_paths == self._get_cursor_search_paths():
            self.search_path_set_schemas = self.session_search_paths
            return
        super()._handle_search_path(cursor)
        self.session_search_paths = self.search_path_set_schemas  # None if the SET failed.

    def init_connection_state(self):
        # A new session has prepared nothing.
        self.prepared_writes, self._deferred_cursor, self._escaping = {}, None, None
        super().init_connection_state()

    def search_path_is_current(self) -> bool:
        """Whether the session's search path is known to be the current schema's: set since the last
        switch (a switch forgets it until the next cursor) and not undone by a rollback since."""
        return self.search_path_set_schemas is not None

    def close(self):
        self.session_search_paths = None
        self.deferred_writes = []
        super().close()

    def rollback(self):
        self.session_search_paths = None
        self.deferred_writes = []
        super().rollback()

    def savepoint_rollback(self, sid):
        try:
            super().savepoint_rollback(sid)  # Its cursor sends the deferred writes first, then undoes them.
        finally:  # After it, as django-tenants does: the cursor of the rollback may SET again.
            self.session_search_paths = None

    # --- deferred writes ------------------------------------------------------------------------

    def send_with_next(self, sql: str, params: Sequence, on_row: Callable[[tuple], None] | None = None) -> None:
        """Run `sql` in this transaction, sent with its next statement (before it) or its end.

        Only inside `atomic()` and with the session already on the current schema's search path
        (the statement runs under the path the session has when it is sent); otherwise it runs
        now. A failure surfaces at the next statement or at the commit, which then fails and
        rolls back the whole transaction. `params` are positional (`%s`). `on_row` gets the
        statement's first returned row.
        """
        if not (self.in_atomic_block and self.search_path_is_current()):
            with self.cursor() as cursor:
                cursor.execute(sql, params)
                row = cursor.fetchone() if cursor.description else None
            if on_row is not None:
                on_row(row)
            return
        self.deferred_writes.append((sql, params, on_row))

    def _send_before_statement(self, execute, sql, params, many, context):
        """Execute wrapper: a cursor opened before writes were deferred sends them before its statement."""
        if self.deferred_writes:
            self.send_deferred_writes()
        return execute(sql, params, many, context)

    def send_deferred_writes(self, then: str = "") -> None:
        """Send the waiting writes now, in one message with the statement `then` if given."""
        writes, self.deferred_writes = self.deferred_writes, []
        if not writes and not then:
            return
        if self._deferred_cursor is None:
            self._deferred_cursor = self.connection.cursor()
            self._escaping = pq.Escaping(self.connection.pgconn)
        cursor = self._deferred_cursor
        with self.wrap_database_errors:
            message = b";\n".join([*(self._prepared(cursor, statement, params) for statement, params, _on_row in writes),
                                    *([then.encode()] if then else [])])
            with debug_transaction(self, message.decode() if self.queries_logged else ""):
                if all(on_row is None for _statement, _params, on_row in writes):
                    self._exec(message)  # No rows to read: without the cursor's handling of results.
                    return
                cursor.execute(message)
            for number, (_statement, _params, on_row) in enumerate(writes):
                if number:
                    cursor.nextset()
                if on_row is not None:
                    on_row(cursor.fetchone() if cursor.description else None)

    def _prepared(self, cursor, statement: str, params: Sequence) -> bytes:
        """The EXECUTE, with `params`, of the statement this session prepared for `statement`, preparing it
        the first time."""
        name = self.prepared_writes.get(statement)
        if name is None:
            name = f"lowcode_deferred_{len(self.prepared_writes) + 1}"
            prepare = f"PREPARE {name} AS {numbered_placeholders(statement)}"
            with debug_transaction(self, prepare):
                cursor.execute(prepare)
            self.prepared_writes[statement] = name
        if not params:
            return f"EXECUTE {name}".encode()
        return b"EXECUTE %s(%s)" % (name.encode(), b", ".join([self._literal(value) for value in params]))

    def _literal(self, value) -> bytes:
        """`value` as an SQL literal. The types of an audit event's values are quoted here, strings by
        libpq (in UTF-8, the client encoding Django sets); others by psycopg's adapters, whose
        dispatch cost most of an event's quoting."""
        kind = type(value)
        if value is None:
            return b"NULL"
        if kind is str:
            return self._escaping.escape_literal(value.encode())
        if kind is int:
            return b"%d" % value
        if kind is Jsonb and value.dumps is not None:
            return self._escaping.escape_literal(value.dumps(value.obj).encode()) + b"::jsonb"
        if kind is datetime.datetime and value.tzinfo is not None:
            return b"'%s'::timestamptz" % value.isoformat().encode()
        return sql.Literal(value).as_bytes(self._deferred_cursor)

    def _exec(self, message: bytes) -> None:
        """Run `message` (statements separated by semicolons) in the transaction through libpq, raising
        psycopg's error if one fails."""
        pgconn = self.connection.pgconn
        if pgconn.transaction_status == pq.TransactionStatus.IDLE:  # psycopg begins it at the first statement.
            message = b"BEGIN;\n" + message
        result = pgconn.exec_(message)
        if result.status == pq.ExecStatus.FATAL_ERROR:
            raise errors.error_from_result(result, encoding=self.connection.info.encoding)

    def _cursor(self, name=None):
        if self.deferred_writes:  # Before anything else, a `SET search_path` included.
            self.send_deferred_writes()
        return super()._cursor(name)

    def _commit(self):
        if self.deferred_writes and self.connection is not None:
            self.send_deferred_writes(then="COMMIT")
        else:
            super()._commit()

    def _savepoint_commit(self, sid):
        if self.deferred_writes:
            self.send_deferred_writes(then=self.ops.savepoint_commit_sql(sid))
        else:
            super()._savepoint_commit(sid)
