"""Assignments: content an enterprise admin has set aside for a specific learner under an assigned policy."""
from uuid import uuid4

from django.core.exceptions import ValidationError
from django.db import models
from simple_history.models import HistoricalRecords

from .constants import AssignmentState


class AssignmentConfiguration(models.Model):
    """
    Settings shared by the assignments of one assigned-learner-credit policy.

    .. no_pii:
    """

    uuid = models.UUIDField(primary_key=True, default=uuid4, editable=False, help_text="Identifies this configuration.")
    enterprise_customer_uuid = models.UUIDField(
        db_index=True, help_text="The enterprise customer whose admins make assignments under this configuration."
    )
    active = models.BooleanField(default=True, help_text="Inactive configurations accept no new assignments.")
    created = models.DateTimeField(auto_now_add=True, help_text="When this configuration was created.")
    modified = models.DateTimeField(auto_now=True, help_text="When this configuration was last changed.")

    history = HistoricalRecords()

    def __str__(self):
        return f"AssignmentConfiguration {self.uuid} (customer {self.enterprise_customer_uuid})"


class LearnerContentAssignment(models.Model):
    """
    One piece of content assigned to one learner, with its price set aside.

    .. pii: learner_email is the assigned learner's email address.
    .. pii_types: email_address
    .. pii_retirement: local_api
    """

    uuid = models.UUIDField(primary_key=True, default=uuid4, editable=False, help_text="Identifies this assignment.")
    assignment_configuration = models.ForeignKey(
        AssignmentConfiguration,
        related_name="assignments",
        on_delete=models.CASCADE,
        help_text="The configuration (and so the policy) this assignment belongs to.",
    )
    learner_email = models.EmailField(help_text="Email of the learner the content is assigned to.")
    lms_user_id = models.IntegerField(
        null=True, blank=True, db_index=True,
        help_text="The learner's LMS user id, once known (assignments can be made by email before the learner registers).",
    )
    content_key = models.CharField(
        max_length=255, db_index=True, help_text="Course or course-run key the learner may redeem."
    )
    content_title = models.CharField(max_length=255, null=True, blank=True, help_text="Title of the content, for display.")
    content_quantity = models.BigIntegerField(
        help_text="Price set aside, in the subsidy's unit (USD cents), stored as a negative quantity like a ledger spend.",
    )
    state = models.CharField(
        max_length=32, choices=AssignmentState.CHOICES, default=AssignmentState.ALLOCATED, db_index=True,
        help_text="Where the assignment is in its life cycle.",
    )
    transaction_uuid = models.UUIDField(
        null=True, blank=True, db_index=True,
        help_text="The subsidy transaction that redeemed this assignment (set when it becomes accepted).",
    )
    allocated_at = models.DateTimeField(null=True, blank=True, help_text="When the assignment was (last) allocated.")
    accepted_at = models.DateTimeField(null=True, blank=True, help_text="When the learner redeemed it.")
    cancelled_at = models.DateTimeField(null=True, blank=True, help_text="When an administrator cancelled it.")
    expired_at = models.DateTimeField(null=True, blank=True, help_text="When it expired unredeemed.")
    errored_at = models.DateTimeField(null=True, blank=True, help_text="When it last went into the errored state.")
    reversed_at = models.DateTimeField(null=True, blank=True, help_text="When its transaction was reversed.")
    created = models.DateTimeField(auto_now_add=True, help_text="When this row was created.")
    modified = models.DateTimeField(auto_now=True, help_text="When this row was last changed.")

    # use_base_model_db: an assignment accepted by the spend guard is saved on the independent connection; its
    # history row must go through the same one.
    history = HistoricalRecords(use_base_model_db=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["assignment_configuration", "learner_email", "content_key"],
                name="unique_assignment_per_learner_content",
            ),
        ]

    def __str__(self):
        return f"Assignment {self.uuid}: {self.content_key} for lms_user_id={self.lms_user_id} ({self.state})"

    def clean(self):
        if self.content_quantity is not None and self.content_quantity > 0:
            raise ValidationError({"content_quantity": "Use a negative quantity (or 0): it is money set aside to spend."})
        if self.state == AssignmentState.ACCEPTED and not self.transaction_uuid:
            raise ValidationError({"transaction_uuid": "An accepted assignment must name the transaction that redeemed it."})
