"""States of a learner's content assignment."""
from enterprise_access.apps.core.choices import TextChoices


class AssignmentState(TextChoices):
    ALLOCATED = "allocated", "Allocated: funds set aside, waiting for the learner to redeem"
    ACCEPTED = "accepted", "Accepted: redeemed, a subsidy transaction exists"
    CANCELLED = "cancelled", "Cancelled by an administrator"
    ERRORED = "errored", "Errored: the redemption or notification failed"
    EXPIRED = "expired", "Expired before the learner redeemed"
    REVERSED = "reversed", "Reversed: the transaction was refunded"


# States from which allocate() may give the learner the assignment again. Set after the class: inside the body
# of a TextChoices, a tuple would become a seventh state.
AssignmentState.REALLOCATABLE = (
    AssignmentState.CANCELLED, AssignmentState.ERRORED, AssignmentState.EXPIRED, AssignmentState.REVERSED,
)
