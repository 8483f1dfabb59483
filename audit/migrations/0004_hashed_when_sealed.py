"""Events hashed when sealed, not on insert (issue 16): the writer's transaction no longer hashes.

The insert trigger notes the event's transaction and leaves `hash` empty; the sealing hashes each
event from its content and keeps the hashes in the block (`event_hashes`, "seq:hash" in seq
order, which `events_hash` covers), so `verify` still names a changed event. Blocks sealed before
get their events' stored hashes. The DDL is the guard's `lowcode_guard.upgrade_audit`, as in 0003.
"""

import django.contrib.postgres.fields
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0003_blocks"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL("SELECT lowcode_guard.upgrade_audit(current_schema())", migrations.RunSQL.noop),
            ],
            state_operations=[
                migrations.AddField(
                    model_name="auditblock",
                    name="event_hashes",
                    field=django.contrib.postgres.fields.ArrayField(
                        base_field=models.TextField(), default=list, editable=False, size=None,
                        verbose_name="event hashes"),
                ),
                migrations.AddIndex(
                    model_name="auditblock",
                    index=models.Index(fields=["txid_to"], name="audit_block_txid_to_idx"),
                ),
            ],
        ),
    ]
