"""Django's `flush`, leaving the audit trail alone.

The trail belongs to the owner role (AD-2, README "Audit trail: roles"): the runtime role cannot
TRUNCATE it, and the whole flush would fail. This is Django's flush over every other table; only
the database superuser can empty a trail.
"""

from django.core.management.color import no_style
from django.core.management.commands import flush
from django.core.management.sql import emit_post_migrate_signal
from django.db import connections

from audit.models import AuditBlock, AuditEvent


class Command(flush.Command):
    help = "Removes ALL DATA from the database except the audit trail (only its owner can remove that)."

    def handle(self, **options):
        database = options["database"]
        connection = connections[database]
        tables = [table for table in connection.introspection.django_table_names(only_existing=True,
                                                                                 include_views=False)
                  if table not in (AuditEvent._meta.db_table, AuditBlock._meta.db_table)]
        sql_list = connection.ops.sql_flush(no_style(), tables, reset_sequences=options.get("reset_sequences", True),
                                            allow_cascade=options.get("allow_cascade", False))
        if options["interactive"] and input(
                f"This will IRREVERSIBLY DESTROY all data but the audit trail in the {connection.settings_dict['NAME']!r} "
                "database. Type 'yes' to continue: ") != "yes":
            self.stdout.write("Flush cancelled.")
            return
        connection.ops.execute_sql_flush(sql_list)
        # As Django's: apps recreate what they need (content types, permissions) after an empty database.
        if sql_list and not options.get("inhibit_post_migrate", False):
            emit_post_migrate_signal(options["verbosity"], options["interactive"], database)
