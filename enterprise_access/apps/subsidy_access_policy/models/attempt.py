"""
RedemptionAttempt: one audit row per run of the redemption workflow.

An audit log only: the workflow writes these rows and never reads them to decide anything. Rows go
through the independent connection (``enterprise_access.db_routers``) so a rollback of the caller's
transaction cannot erase them. Relations carry no database constraint: a row outlives the policy,
assignment or forced redemption it names, and the copied uuids keep it meaningful.
"""
from uuid import uuid4

from django.conf import settings
from django.db import models

from enterprise_access.apps.content_assignments.models import LearnerContentAssignment

from ..constants import AttemptOutcome, AttemptSource  # noqa: F401 (re-exported: models.AttemptOutcome)
from .policy import SubsidyAccessPolicy


def _loose_fk(to, **kwargs):
    """A nullable foreign key without a database constraint: the audit row must outlive its target."""
    return models.ForeignKey(to, null=True, blank=True, on_delete=models.SET_NULL, db_constraint=False,
                             related_name="+", **kwargs)


class RedemptionAttempt(models.Model):
    """
    What one redemption run took in, what the policy looked like, what can_redeem said, what the subsidy answered.

    .. pii: lms_user_id identifies a learner; request_metadata may hold learner details sent with the redeem request.
    .. pii_types: id, other
    .. pii_retirement: retained
    """

    uuid = models.UUIDField(primary_key=True, default=uuid4, editable=False, help_text="Identifies this attempt.")

    # --- inputs --------------------------------------------------------------------------------------
    policy = models.ForeignKey(
        SubsidyAccessPolicy, null=True, blank=True, on_delete=models.SET_NULL, db_constraint=False,
        related_name="redemption_attempts", help_text="The policy redeemed under (empty if it was deleted since).",
    )
    policy_uuid = models.UUIDField(help_text="Copy of the policy's uuid, kept if the policy is deleted.")
    enterprise_customer_uuid = models.UUIDField(help_text="Copy of the policy's enterprise customer.")
    lms_user_id = models.IntegerField(help_text="LMS user id of the learner being redeemed for.")
    content_key = models.CharField(max_length=255, db_index=True, help_text="Course or course-run key requested.")
    assignment = models.ForeignKey(
        LearnerContentAssignment, null=True, blank=True, on_delete=models.SET_NULL, db_constraint=False,
        related_name="redemption_attempts", help_text="The learner's assignment, for assigned policies.",
    )
    subsidy_request_uuid = models.UUIDField(
        null=True, blank=True, db_index=True, help_text="The subsidy request this redemption fulfils, if any."
    )
    forced_redemption = models.ForeignKey(
        "subsidy_access_policy.ForcedPolicyRedemption", null=True, blank=True, on_delete=models.SET_NULL,
        db_constraint=False, related_name="redemption_attempts",
        help_text="The forced redemption that ran this attempt, if staff forced it.",
    )
    request_metadata = models.JSONField(
        null=True, blank=True,
        help_text="The metadata sent to the subsidy service (after the workflow's additions); the keys as sent, "
                  "learner details masked.",
    )
    idempotency_key = models.CharField(
        max_length=255, blank=True, default="",
        help_text="The idempotency key of the subsidy create, when the run reached it (joins to the ledger).",
    )

    # --- who and how ---------------------------------------------------------------------------------
    source = models.CharField(max_length=32, choices=AttemptSource.CHOICES, db_index=True,
                              help_text="Which entry point ran the workflow.")
    acting_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_constraint=False,
        related_name="+", help_text="The authenticated user who asked: the learner, an operator, or staff.",
    )
    request_id = models.CharField(max_length=64, blank=True, default="", db_index=True,
                                  help_text="Request id that ties this row to the service's logs (X-Request-ID).")

    # --- the policy at that moment -----------------------------------------------------------------
    policy_history = models.ForeignKey(
        SubsidyAccessPolicy.history.model, null=True, blank=True, on_delete=models.SET_NULL, db_constraint=False,
        related_name="+", help_text="The policy's history row in force when the attempt started.",
    )

    # --- eligibility ---------------------------------------------------------------------------------
    can_redeem = models.BooleanField(null=True, blank=True,
                                     help_text="What can_redeem returned; empty if the run ended before it answered.")
    reason = models.CharField(max_length=64, blank=True, default="",
                              help_text="Reason code when can_redeem said no (see constants.REASON_*).")

    # --- the subsidy service's answer --------------------------------------------------------------
    transaction_uuid = models.UUIDField(null=True, blank=True, db_index=True,
                                        help_text="The subsidy transaction written (or found, on a repeat).")
    transaction_state = models.CharField(max_length=16, blank=True, default="",
                                         help_text="State of that transaction when the subsidy service answered.")
    fulfillment_identifier = models.CharField(max_length=255, blank=True, default="",
                                              help_text="LMS enterprise fulfillment uuid set on commit.")
    external_references = models.JSONField(null=True, blank=True,
                                           help_text="External order ids (exec-ed GEAG orders), a list of strings.")
    content_price = models.BigIntegerField(null=True, blank=True,
                                           help_text="Price of the content in cents, as priced for this redemption.")
    error_status = models.IntegerField(null=True, blank=True,
                                       help_text="HTTP status of the failing upstream answer (empty for timeouts).")
    error_code = models.CharField(max_length=64, blank=True, default="", db_index=True,
                                  help_text="Upstream error code (e.g. fulfillment_error) or a local one (timeout).")
    error_message = models.TextField(blank=True, default="", help_text="Human-readable error text.")
    error_payload = models.JSONField(null=True, blank=True,
                                     help_text="Raw upstream error body (internal: hidden from learners).")

    # --- outcome and timings ------------------------------------------------------------------------
    outcome = models.CharField(max_length=32, choices=AttemptOutcome.CHOICES, default=AttemptOutcome.IN_PROGRESS,
                               help_text="How the run ended; 'in progress' if it never finished.")
    already_redeemed = models.BooleanField(default=False,
                                           help_text="True when the run found the learner's existing transaction.")
    started_at = models.DateTimeField(db_index=True, help_text="When the run started.")
    finished_at = models.DateTimeField(null=True, blank=True, help_text="When the run finished.")
    can_redeem_ms = models.IntegerField(null=True, blank=True, help_text="Milliseconds spent in can_redeem.")
    subsidy_call_ms = models.IntegerField(null=True, blank=True,
                                          help_text="Milliseconds spent in the subsidy create-transaction call.")
    reconciled_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When reconciliation settled a run that ended uncertain or never finished (then outcome, "
                  "transaction and error say what the ledger showed).",
    )

    class Meta:
        ordering = ["-started_at"]
        # Each common question is a range of started_at within one customer, policy, outcome, reason or learner.
        # The customer and policy indexes also carry outcome and reason, so summaries read the index alone
        # (no lookup into the table per row). Single-column indexes that would only repeat a leading column
        # here are left out: every index is paid for on every insert.
        indexes = [
            models.Index(fields=["enterprise_customer_uuid", "started_at", "outcome", "reason"],
                         name="attempt_customer_started_cov"),
            models.Index(fields=["policy_uuid", "started_at", "outcome", "reason"], name="attempt_policy_started_cov"),
            models.Index(fields=["outcome", "started_at"], name="attempt_outcome_started"),
            models.Index(fields=["reason", "policy_uuid", "started_at"], name="attempt_reason_policy_started"),
            models.Index(fields=["lms_user_id", "started_at"], name="attempt_learner_started"),
        ]

    def __str__(self):
        return f"RedemptionAttempt {self.uuid}: {self.outcome} ({self.lms_user_id} / {self.content_key})"
