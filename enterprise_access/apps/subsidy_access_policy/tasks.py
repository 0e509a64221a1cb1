"""Celery tasks of the policy app (decision record 0019). Each is a thin shell around a service function."""
from celery import shared_task

from .bulk_forcing import run_bulk_forcing


@shared_task(name="subsidy_access_policy.force_bulk_job", acks_late=True, reject_on_worker_lost=True)
def force_bulk_job(job_uuid: str) -> None:
    """Force the rows of bulk forcing job ``job_uuid`` that have no result yet."""
    run_bulk_forcing(job_uuid)
