"""Indexes of the inbox's queries on viewflow's task table (services.inbox): a user's open tasks,
and a queue's unclaimed ones, newest first, without scanning other people's tasks."""

from django.db import migrations

OPEN_BY_OWNER = "workflows_task_open_by_owner"
UNCLAIMED_BY_QUEUE = "workflows_task_unclaimed_by_queue"


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0001_initial"),
        ("viewflow", "0015_task_scheduled"),
    ]

    operations = [
        migrations.RunSQL(
            f"CREATE INDEX {OPEN_BY_OWNER} ON viewflow_task (owner_id, created DESC, id DESC) "
            "WHERE status IN ('ASSIGNED', 'STARTED')",
            f"DROP INDEX {OPEN_BY_OWNER}"),
        migrations.RunSQL(
            f"CREATE INDEX {UNCLAIMED_BY_QUEUE} ON viewflow_task (owner_permission, created DESC, id DESC) "
            "WHERE owner_id IS NULL AND status = 'NEW'",
            f"DROP INDEX {UNCLAIMED_BY_QUEUE}"),
    ]
