"""Django's `flush`, allowed to empty the audit trail.

The audit table refuses TRUNCATE (AD-2) unless `lowcode.audit_flush` is on. `flush` removes
all data of the current schema by design (tests, development resets): it turns the setting on
for its session, runs Django's flush, and turns it off again.
"""

from django.core.management.commands import flush
from django.db import DEFAULT_DB_ALIAS, connections


class Command(flush.Command):
    def handle(self, **options):
        connection = connections[options.get("database") or DEFAULT_DB_ALIAS]
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lowcode.audit_flush', 'on', false)")
        try:
            return super().handle(**options)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('lowcode.audit_flush', '', false)")
