"""The auto number counters move out of the dm_ prefix, which names entity tables only (an entity
`auto_number_counter` would have collided, and listings of entity tables counted it)."""

from django.db import migrations

FUNCTION = """CREATE OR REPLACE FUNCTION lowcode_next_number(series_key text) RETURNS bigint LANGUAGE sql VOLATILE AS $body$
    INSERT INTO {table} AS counter (series, value) VALUES (series_key, 1)
    ON CONFLICT (series) DO UPDATE SET value = counter.value + 1
    RETURNING counter.value
$body$"""


class Migration(migrations.Migration):

    dependencies = [
        ("dynamic_models", "0007_entity_single"),
    ]

    operations = [migrations.RunSQL(
        # In this schema only (a schema set up before 0006 ran has no old table: it gets the new one).
        ["""DO $do$ BEGIN
                IF to_regclass(format('%I.dm_auto_number_counter', current_schema())) IS NOT NULL THEN
                    EXECUTE format('ALTER TABLE %I.dm_auto_number_counter RENAME TO dynamic_models_auto_number_counter',
                                   current_schema());
                END IF;
            END $do$""",
         "CREATE TABLE IF NOT EXISTS dynamic_models_auto_number_counter "
         "(series varchar(120) PRIMARY KEY, value bigint NOT NULL)",
         FUNCTION.format(table="dynamic_models_auto_number_counter")],
        ["ALTER TABLE dynamic_models_auto_number_counter RENAME TO dm_auto_number_counter",
         FUNCTION.format(table="dm_auto_number_counter")])]
