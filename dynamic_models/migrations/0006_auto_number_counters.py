"""Counters of auto numbers with date patterns (`HR-EXP-.YYYY.-.####`), one per field and period.

`lowcode_next_number(series)` is the column default's counter (dynamic_models.field_types
.AutoNumberType): it counts under a row lock, so concurrent inserts of one period take turns and
never share a number; unlike a sequence it rolls back with its transaction, leaving no gap.
"""

from django.db import migrations

CREATE = [
    "CREATE TABLE dm_auto_number_counter (series varchar(120) PRIMARY KEY, value bigint NOT NULL)",
    """CREATE FUNCTION lowcode_next_number(series_key text) RETURNS bigint LANGUAGE sql VOLATILE AS $body$
        INSERT INTO dm_auto_number_counter AS counter (series, value) VALUES (series_key, 1)
        ON CONFLICT (series) DO UPDATE SET value = counter.value + 1
        RETURNING counter.value
    $body$""",
]
DROP = ["DROP FUNCTION lowcode_next_number(text)", "DROP TABLE dm_auto_number_counter"]


class Migration(migrations.Migration):

    dependencies = [
        ("dynamic_models", "0005_schema_migration_phases"),
    ]

    operations = [migrations.RunSQL(CREATE, DROP)]
