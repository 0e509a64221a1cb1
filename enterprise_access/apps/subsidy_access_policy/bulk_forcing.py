"""
Bulk forcing: many waiting forced redemptions forced by a Celery worker, one at a time (decision record 0019).

``start_bulk_forcing`` writes the job and its rows and, once they are committed, sends the job's id to the broker;
the request that asked for it returns at once. ``run_bulk_forcing`` is the task's body: it forces each row still
without a result through ``forcing.force_redemption`` (which claims the record, so a record redeems at most once)
and writes the row's result. Each row carries the fingerprint of the record's inputs as the staff member confirmed
them; the worker forces the record only with those inputs, so a record edited after the confirmation (another tab,
another staff member) is reported as changed and nothing is spent on it. Run again (a redelivered message, a
stalled job restarted by staff), it continues with the rows that have none: rows already forced are not forced again.
"""
import csv
import io
import logging
import traceback

from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from .forcing import CODE_FORCING_IN_PROGRESS, CODE_FORCING_INPUTS_CHANGED, force_redemption, inputs_digest, inputs_of
from .models import BulkForcingJob, BulkForcingRow, ForcedPolicyRedemption

logger = logging.getLogger(__name__)

RESULT_COLUMNS = ("position", "forced_redemption_uuid", "policy_uuid", "lms_user_id", "course_run_key", "result",
                  "transaction_uuid", "error_message", "finished_at")


INPUTS_CHANGED_MESSAGE = ("Its inputs changed after the confirmation was shown (in another tab, or by another staff "
                          "member); nothing was redeemed. Review the record and force it again.")


def start_bulk_forcing(*, records, acting_user, confirmed_digests=None) -> BulkForcingJob:
    """
    A job forcing ``records`` (in the order given) as ``acting_user``, sent to a worker after commit.

    ``confirmed_digests`` maps a record's pk to the ``inputs_digest`` the staff member confirmed; without it, each
    record is confirmed with the inputs it has in ``records`` (what the caller read).
    """
    if confirmed_digests is None:
        confirmed_digests = {record.pk: inputs_digest(record) for record in records}
    with transaction.atomic():
        job = BulkForcingJob.objects.create(created_by=acting_user, total=len(records))
        BulkForcingRow.objects.bulk_create(
            [BulkForcingRow(job=job, position=position, forced_redemption_id=record.pk,
                            confirmed_inputs=confirmed_digests.get(record.pk) or "")
             for position, record in enumerate(records, start=1)],
            batch_size=500,
        )
        transaction.on_commit(lambda: enqueue(job))
    return job


def enqueue(job: BulkForcingJob) -> None:
    """Send the job to a worker (the task is imported here: the task module imports this one)."""
    from .tasks import force_bulk_job

    force_bulk_job.delay(str(job.uuid))


def run_bulk_forcing(job_uuid) -> BulkForcingJob | None:
    """Force every row of the job that has no result yet; returns the job, or None if there is no such job."""
    job = BulkForcingJob.objects.select_related("created_by").filter(uuid=job_uuid).first()
    if job is None:
        logger.warning("Bulk forcing job %s does not exist; nothing to do.", job_uuid)
        return None
    now = timezone.now()
    BulkForcingJob.objects.filter(uuid=job.uuid, started_at__isnull=True).update(started_at=now)
    BulkForcingJob.objects.filter(uuid=job.uuid).update(runs=F("runs") + 1, heartbeat_at=now, last_error="")
    acting_user = job.created_by
    try:
        pending = (BulkForcingRow.objects.filter(job=job, result=BulkForcingRow.PENDING)
                   .order_by("position").values_list("pk", flat=True))
        for row_pk in list(pending):
            _force_row(row_pk, acting_user)
            BulkForcingJob.objects.filter(uuid=job.uuid).update(heartbeat_at=timezone.now())
    except Exception:  # a bug or the database gone: the job stays unfinished and can be run again
        BulkForcingJob.objects.filter(uuid=job.uuid).update(last_error=traceback.format_exc()[-5000:])
        raise
    if not BulkForcingRow.objects.filter(job=job, result=BulkForcingRow.PENDING).exists():
        BulkForcingJob.objects.filter(uuid=job.uuid, finished_at__isnull=True).update(finished_at=timezone.now())
    job.refresh_from_db()
    return job


def _force_row(row_pk, acting_user) -> None:
    row = BulkForcingRow.objects.select_related("forced_redemption").get(pk=row_pk)
    if row.result != BulkForcingRow.PENDING:
        return  # another run of the job got here first
    record = row.forced_redemption
    if record.redeemed_at is not None:
        result, tx, message = BulkForcingRow.ALREADY_REDEEMED, record.transaction_uuid, ""
    elif not row.confirmed_inputs or row.confirmed_inputs != inputs_digest(record):
        result, tx, message = BulkForcingRow.INPUTS_CHANGED, None, INPUTS_CHANGED_MESSAGE
    else:
        # The claim insists on the inputs just read (which match the confirmed fingerprint): an edit made
        # between this read and the claim makes the claim fail, and nothing is spent.
        outcome = force_redemption(forced_redemption=record, acting_user=acting_user,
                                   confirmed_inputs=inputs_of(record))
        if outcome.succeeded:
            result = BulkForcingRow.ALREADY_REDEEMED if outcome.already_redeemed else BulkForcingRow.REDEEMED
            tx, message = record.transaction_uuid, ""
        elif outcome.code == CODE_FORCING_INPUTS_CHANGED:
            result, tx, message = BulkForcingRow.INPUTS_CHANGED, None, INPUTS_CHANGED_MESSAGE
        elif outcome.code == CODE_FORCING_IN_PROGRESS and record.redeemed_at is None and record.errored_at is None:
            result, tx, message = BulkForcingRow.BUSY, None, (
                "Another forcing held this record; nothing was done. If no forcing is running, "
                "reconcile_redemptions releases it within minutes: then force the record again.")
        else:
            result, tx, message = BulkForcingRow.ERRORED, None, record.error_message or outcome.error_message or ""
    # Only a row still pending takes the result: two runs of one job never overwrite each other.
    BulkForcingRow.objects.filter(pk=row_pk, result=BulkForcingRow.PENDING).update(
        result=result, transaction_uuid=tx, error_message=message[:5000], finished_at=timezone.now())


def job_counts(job: BulkForcingJob) -> dict:
    """How many rows have each result ("" for pending), and how many are done."""
    counts = dict(BulkForcingRow.objects.filter(job=job).values_list("result").annotate(n=Count("pk")))
    done = sum(n for result, n in counts.items() if result != BulkForcingRow.PENDING)
    return {"by_result": counts, "done": done, "pending": counts.get(BulkForcingRow.PENDING, 0)}


def _safe_cell(value) -> str:
    """A cell a spreadsheet will not run as a formula (a leading ', as OWASP advises for CSV exports)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(("=", "+", "-", "@", "\t", "\r")) else text


def results_csv(job: BulkForcingJob) -> str:
    """The job's per-row results as CSV text (one line per row, in job order)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(RESULT_COLUMNS)
    rows = (BulkForcingRow.objects.filter(job=job).order_by("position")
            .select_related("forced_redemption__subsidy_access_policy"))
    for row in rows.iterator(chunk_size=500):
        record: ForcedPolicyRedemption = row.forced_redemption
        writer.writerow([_safe_cell(value) for value in (
            row.position, record.uuid, record.subsidy_access_policy.uuid, record.lms_user_id, record.course_run_key,
            row.result or "pending", row.transaction_uuid or "", row.error_message,
            row.finished_at.isoformat() if row.finished_at else "")])
    return out.getvalue()
