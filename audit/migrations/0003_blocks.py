"""Audit without a tenant-wide lock (issue 16): events hashed alone, sealed into hash-chained blocks.

The insert trigger no longer takes the schema's lock nor counts: `seq` comes from the table's
sequence, and each event notes its transaction (`txid`). The sealing task (`audit.seal_events`)
then puts the events of the transactions that have ended into the next block of
`audit_auditblock`, chained by hash (README, "Audit trail: blocks").

The DDL is the guard's `lowcode_guard.upgrade_audit` (audit/sql/guard.sql): a trail sealed before
this migration belongs to the owner role, which the runtime role that migrates is not; the guard
runs the same fixed statements for a new schema and for a sealed one.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0002_integrity"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL("SELECT lowcode_guard.upgrade_audit(current_schema())", migrations.RunSQL.noop),
            ],
            state_operations=[
                migrations.AddField(
                    model_name="auditevent",
                    name="txid",
                    field=models.BigIntegerField(db_default=0, editable=False, verbose_name="transaction"),
                ),
                migrations.AddIndex(
                    model_name="auditevent",
                    index=models.Index(fields=["txid"], name="audit_event_txid_idx"),
                ),
                migrations.CreateModel(
                    name="AuditBlock",
                    fields=[
                        ("number", models.BigIntegerField(primary_key=True, serialize=False, verbose_name="block")),
                        ("txid_from", models.BigIntegerField(verbose_name="from transaction")),
                        ("txid_to", models.BigIntegerField(verbose_name="to transaction")),
                        ("count", models.IntegerField(verbose_name="events")),
                        ("first_seq", models.BigIntegerField(verbose_name="first event")),
                        ("last_seq", models.BigIntegerField(verbose_name="last event")),
                        ("events_hash", models.CharField(max_length=64, verbose_name="events hash")),
                        ("prev_hash", models.CharField(max_length=64, verbose_name="previous hash")),
                        ("created_at", models.DateTimeField(verbose_name="sealed at")),
                        ("hash", models.CharField(max_length=64, verbose_name="hash")),
                    ],
                    options={
                        "verbose_name": "audit block",
                        "verbose_name_plural": "audit blocks",
                        "ordering": ["-number"],
                    },
                ),
            ],
        ),
    ]
