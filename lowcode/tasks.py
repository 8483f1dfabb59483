from celery import shared_task
from django.db import connection


@shared_task(name="lowcode.ping")
def ping() -> dict:
    """Report the schema this task runs in, as the database sees it (doctor, tests)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        database_schema = cursor.fetchone()[0]
    return {"schema": connection.schema_name, "database_schema": database_schema}
