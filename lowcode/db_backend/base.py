"""django-tenants' PostgreSQL backend, sending `SET search_path` only when the session's differs.

With TENANT_LIMIT_SET_CALLS, django-tenants sets the search path once per tenant switch rather than
before every cursor, and forgets it on a rollback and a savepoint's rollback (PostgreSQL undoes a
SET issued inside them). It also forgets it on every switch, though: each request switches to
public and back to its tenant, so each request would send a SET. Here the path the session has
is kept across switches and forgotten where PostgreSQL may have undone it (rollback, savepoint
rollback, a failed SET, closing), so a request to the connection's last tenant sends none.
Not for a pooler that shares sessions between transactions (PgBouncer's transaction mode).
"""

from django_tenants.postgresql_backend import base


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs):
        #: The search path the database session has, when known.
        self.session_search_paths = None
        super().__init__(*args, **kwargs)

    def _handle_search_path(self, cursor=None):
        if self._setting_search_path:  # Re-entered while getting the cursor for the SET.
            return
        if self.search_path_set_schemas is None and self.session_search_paths is not None \
                and self.session_search_paths == self._get_cursor_search_paths():
            self.search_path_set_schemas = self.session_search_paths
            return
        super()._handle_search_path(cursor)
        self.session_search_paths = self.search_path_set_schemas  # None if the SET failed.

    def close(self):
        self.session_search_paths = None
        super().close()

    def rollback(self):
        self.session_search_paths = None
        super().rollback()

    def savepoint_rollback(self, sid):
        try:
            super().savepoint_rollback(sid)
        finally:  # After it, as django-tenants does: the cursor of the rollback may SET again.
            self.session_search_paths = None
