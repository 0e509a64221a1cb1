"""ForcedPolicyRedemption: staff push one learner into one course run under one policy."""
from uuid import uuid4

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from simple_history.models import HistoricalRecords

from enterprise_access.apps.core.lms_ids import LMS_USER_ID_MAX, LMS_USER_ID_MIN, LMS_USER_ID_VALIDATORS

from .policy import SubsidyAccessPolicy


class ForcedPolicyRedemption(models.Model):
    """
    A staff request to redeem ``course_run_key`` for ``lms_user_id`` under a policy, and what came of it.

    .. no_pii: lms_user_id is an opaque id; no names or emails are stored here.
    """

    uuid = models.UUIDField(primary_key=True, default=uuid4, editable=False, help_text="Identifies this record.")
    subsidy_access_policy = models.ForeignKey(
        SubsidyAccessPolicy, on_delete=models.PROTECT, related_name="forced_redemptions",
        help_text="The policy whose funds pay for the redemption.",
    )
    lms_user_id = models.IntegerField(
        db_index=True, validators=LMS_USER_ID_VALIDATORS,
        help_text=f"LMS user id of the learner to enroll ({LMS_USER_ID_MIN} to {LMS_USER_ID_MAX}).",
    )
    course_run_key = models.CharField(max_length=255, db_index=True,
                                      help_text="The specific course run, e.g. course-v1:Org+Course+Run.")
    content_price_cents = models.BigIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="Assigned policies: the price of the assignment made for the learner, in USD cents (more than "
                  "zero: the subsidy reads zero as 'not given' and charges the catalog price). Other policies pay "
                  "the catalog price: leave it empty; after a redemption it shows what was charged.",
    )
    wait_to_redeem = models.BooleanField(
        default=False,
        help_text="Save without redeeming now; force it later with the 'Force redemption' action.",
    )
    redeemed_at = models.DateTimeField(null=True, blank=True, db_index=True,
                                       help_text="When the redemption succeeded. A redeemed record never runs again.")
    errored_at = models.DateTimeField(null=True, blank=True, help_text="When the last attempt failed.")
    run_started_at = models.DateTimeField(
        null=True, blank=True,
        help_text="Set while a forcing runs (its inputs are then frozen); cleared when it stores its outcome. One "
                  "left by a process that died is cleared by reconcile_redemptions.",
    )
    transaction_uuid = models.UUIDField(null=True, blank=True, help_text="The subsidy transaction, on success.")
    error_reason = models.CharField(max_length=64, blank=True, default="",
                                    help_text="Reason code when the policy refused (can_redeem said no).")
    error_message = models.TextField(blank=True, default="", help_text="What went wrong on the last failure.")
    error_status = models.IntegerField(null=True, blank=True, help_text="Upstream HTTP status of the failure.")
    error_code = models.CharField(max_length=64, blank=True, default="", help_text="Upstream or local error code.")
    error_payload = models.JSONField(null=True, blank=True, help_text="Raw upstream error body.")
    traceback = models.TextField(blank=True, default="", help_text="Traceback of an unexpected error, for engineers.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Staff user who wrote the record.",
    )
    modified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Staff user who last changed or forced it.",
    )
    created = models.DateTimeField(auto_now_add=True, help_text="When the record was written.")
    modified = models.DateTimeField(auto_now=True, help_text="When the record last changed.")

    # use_base_model_db: history rows go through the connection the record was saved on (the forcing writes on
    # the independent one), never a second connection waiting on the first one's lock.
    history = HistoricalRecords(excluded_fields=["run_started_at"], use_base_model_db=True)

    class Meta:
        verbose_name = "forced policy redemption"
        permissions = [("force_redemption", "Can force a learner's redemption under a policy (use with caution)")]
        constraints = [
            # The validators guard forms and full_clean(); this guards every other write, on every backend.
            models.CheckConstraint(
                condition=models.Q(lms_user_id__gte=LMS_USER_ID_MIN, lms_user_id__lte=LMS_USER_ID_MAX),
                name="forced_redemption_lms_user_id_in_lms_range",
            ),
        ]

    def __str__(self):
        return f"Forced redemption {self.uuid}: {self.course_run_key} for lms_user_id={self.lms_user_id}"

    def clean(self):
        """The price is the assignment's for assigned policies (more than zero) and the catalog's otherwise."""
        if not self.subsidy_access_policy_id or self.redeemed_at is not None:
            return
        assigned = bool(self.subsidy_access_policy.assignment_configuration_id)
        if assigned and not self.content_price_cents:
            raise ValidationError({"content_price_cents": (
                "An assigned policy redeems at its assignment's price: enter it, in cents, more than zero (the "
                "subsidy service reads 0 as 'no price given' and would charge the catalog price).")})
        if not assigned and self.content_price_cents is not None:
            raise ValidationError({"content_price_cents": (
                "This policy pays the course's catalog price: leave the price empty. After the redemption the "
                "record shows what was charged.")})

    @property
    def state(self) -> str:
        if self.redeemed_at:
            return "redeemed"
        if self.run_started_at:
            return "running"
        if self.errored_at:
            return "errored"
        return "waiting"
