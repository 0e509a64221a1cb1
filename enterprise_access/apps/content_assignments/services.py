"""Writes to assignments. Callers (admin, forced redemption, policies) go through these functions."""
from django.db import IntegrityError, transaction
from django.utils import timezone

from .constants import AssignmentState
from .models import AssignmentConfiguration, LearnerContentAssignment


class AssignmentError(Exception):
    """An assignment cannot be made or changed as asked; the message says why."""


def allocate(
    *,
    assignment_configuration: AssignmentConfiguration,
    learner_email: str,
    content_key: str,
    content_price_cents: int,
    lms_user_id: int | None = None,
    content_title: str | None = None,
) -> LearnerContentAssignment:
    """
    Allocate ``content_key`` to a learner at ``content_price_cents``, creating or re-allocating the assignment.

    An existing allocated assignment is updated to the new price; a cancelled, errored, expired or reversed one
    is allocated again; an accepted one is left alone and refused, because it has already been redeemed.
    """
    if content_price_cents is None or content_price_cents < 0:
        raise AssignmentError("content_price_cents must be zero or more.")
    if not assignment_configuration.active:
        raise AssignmentError(f"Assignment configuration {assignment_configuration.uuid} is inactive.")
    learner_email = learner_email.strip().lower()
    now = timezone.now()
    changes = {
        "content_quantity": -int(content_price_cents),
        "state": AssignmentState.ALLOCATED,
        "allocated_at": now,
    }
    if lms_user_id is not None:
        changes["lms_user_id"] = lms_user_id
    if content_title:
        changes["content_title"] = content_title

    for _ in range(2):  # a concurrent allocate of the same learner+content may win the insert; then update it
        try:
            with transaction.atomic():
                assignment = (
                    LearnerContentAssignment.objects.select_for_update()
                    .filter(
                        assignment_configuration=assignment_configuration,
                        learner_email=learner_email,
                        content_key=content_key,
                    )
                    .first()
                )
                if assignment is None:
                    return LearnerContentAssignment.objects.create(
                        assignment_configuration=assignment_configuration,
                        learner_email=learner_email,
                        content_key=content_key,
                        **changes,
                    )
                if assignment.state == AssignmentState.ACCEPTED:
                    raise AssignmentError(
                        f"{content_key} is already redeemed for {learner_email} "
                        f"(transaction {assignment.transaction_uuid}); it cannot be allocated again."
                    )
                if assignment.state in AssignmentState.REALLOCATABLE:
                    changes["transaction_uuid"] = None
                for field, value in changes.items():
                    setattr(assignment, field, value)
                assignment.save()
                return assignment
        except IntegrityError:
            continue
    raise AssignmentError("Could not allocate the assignment: another change to it was in progress. Try again.")


def mark_accepted(assignment: LearnerContentAssignment, *, transaction_uuid, using=None) -> LearnerContentAssignment:
    """Record that the learner redeemed the assignment through ``transaction_uuid`` (on the ``using`` connection)."""
    assignment.state = AssignmentState.ACCEPTED
    assignment.transaction_uuid = transaction_uuid
    assignment.accepted_at = timezone.now()
    assignment.save(update_fields=["state", "transaction_uuid", "accepted_at", "modified"], using=using)
    return assignment


def cancel(assignment: LearnerContentAssignment) -> LearnerContentAssignment:
    """Cancel an allocated assignment: the money it set aside is free again. Other states are left as they are."""
    with transaction.atomic():
        current = LearnerContentAssignment.objects.select_for_update().get(uuid=assignment.uuid)
        if current.state == AssignmentState.ALLOCATED:
            current.state = AssignmentState.CANCELLED
            current.cancelled_at = timezone.now()
            current.save(update_fields=["state", "cancelled_at", "modified"])
    return current
