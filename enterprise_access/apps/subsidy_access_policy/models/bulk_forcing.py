"""
Bulk forcing: one background job forcing many waiting ``ForcedPolicyRedemption`` records (decision record 0019).

The database is the job's truth, not the broker: a job's rows say which records are still to force, so a job whose
worker died, or whose message was lost, is run again from where it stopped; a record that redeemed is never forced
twice (``forcing.force_redemption`` claims it first).
"""
from datetime import timedelta
from uuid import uuid4

from django.conf import settings
from django.db import models
from django.utils import timezone

from .forced_redemption import ForcedPolicyRedemption


class BulkForcingJob(models.Model):
    """
    A staff member's "Force redemption" of many records, run by a Celery worker.

    .. no_pii: holds ids and counts only.
    """

    uuid = models.UUIDField(primary_key=True, default=uuid4, editable=False, help_text="Identifies this job.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Staff member who asked for the forcing; the records are forced as this user.",
    )
    created = models.DateTimeField(auto_now_add=True, help_text="When the job was asked for.")
    total = models.PositiveIntegerField(default=0, help_text="How many records the job forces.")
    started_at = models.DateTimeField(null=True, blank=True,
                                      help_text="When a worker first picked the job up.")
    heartbeat_at = models.DateTimeField(
        null=True, blank=True,
        help_text="Last sign of life of the worker running the job (after each record). A running job without one "
                  "for a while has lost its worker: run it again.",
    )
    finished_at = models.DateTimeField(null=True, blank=True, help_text="When every row had its result.")
    runs = models.PositiveIntegerField(default=0, help_text="How many times a worker has started the job.")
    last_error = models.TextField(blank=True, default="",
                                  help_text="What stopped the last run, if it stopped on an error (for engineers).")

    class Meta:
        verbose_name = "bulk forcing job"
        ordering = ("-created",)

    def __str__(self):
        return f"Bulk forcing {self.uuid} ({self.total} records)"

    @property
    def stalled(self) -> bool:
        """
        Unfinished, and silent for longer than a record can take: its worker is gone, or no worker ever took it
        (no worker running, or its message lost).
        """
        if self.finished_at is not None:
            return False
        last = self.heartbeat_at or self.started_at or self.created
        return timezone.now() - last > timedelta(seconds=settings.BULK_FORCING_STALLED_SECONDS)

    @property
    def state(self) -> str:
        if self.finished_at is not None:
            return "finished"
        if self.stalled:
            return "stalled"
        return "queued" if self.started_at is None else "running"


class BulkForcingRow(models.Model):
    """One record of a job and what forcing it came to."""

    PENDING = ""
    REDEEMED = "redeemed"
    ALREADY_REDEEMED = "already_redeemed"
    ERRORED = "errored"
    BUSY = "busy"
    INPUTS_CHANGED = "inputs_changed"
    RESULTS = ((PENDING, "pending"), (REDEEMED, "redeemed"), (ALREADY_REDEEMED, "already redeemed"),
               (ERRORED, "errored"), (BUSY, "not forced: another forcing held the record"),
               (INPUTS_CHANGED, "not forced: its inputs changed after they were confirmed"))

    job = models.ForeignKey(BulkForcingJob, on_delete=models.CASCADE, related_name="rows")
    position = models.PositiveIntegerField(help_text="Order within the job (1 = first).")
    forced_redemption = models.ForeignKey(ForcedPolicyRedemption, on_delete=models.PROTECT, related_name="+",
                                          help_text="The record this row forces.")
    confirmed_inputs = models.CharField(
        max_length=64, blank=True, default="",
        help_text="The fingerprint of the record's inputs as the staff member confirmed them: the worker forces the "
                  "record only if it still has those inputs (empty: nothing was confirmed, so it is not forced).")
    result = models.CharField(max_length=32, choices=RESULTS, blank=True, default=PENDING, db_index=True,
                              help_text="Empty while the row waits for the worker.")
    transaction_uuid = models.UUIDField(null=True, blank=True, help_text="The subsidy transaction, if redeemed.")
    error_message = models.TextField(blank=True, default="", help_text="Why the record did not redeem.")
    finished_at = models.DateTimeField(null=True, blank=True, help_text="When the row got its result.")

    class Meta:
        verbose_name = "bulk forcing row"
        ordering = ("job", "position")
        constraints = [models.UniqueConstraint(fields=("job", "position"), name="bulk_forcing_row_position"),
                       models.UniqueConstraint(fields=("job", "forced_redemption"), name="bulk_forcing_row_record")]

    def __str__(self):
        return f"Row {self.position} of {self.job_id}"
