"""Celery tasks of dynamic_models. They run in the schema of the tenant that queued them."""

from celery import shared_task

from dynamic_models import transfer


@shared_task(name="dynamic_models.import_records")
def import_records(job_id: int) -> None:
    """Run an import job queued by the API (`transfer.start_import_job`)."""
    transfer.run_import_job(job_id)
