"""States of a learner's content assignment."""


class AssignmentState:
    ALLOCATED = "allocated"
    ACCEPTED = "accepted"
    CANCELLED = "cancelled"
    ERRORED = "errored"
    EXPIRED = "expired"
    REVERSED = "reversed"

    CHOICES = (
        (ALLOCATED, "Allocated: funds set aside, waiting for the learner to redeem"),
        (ACCEPTED, "Accepted: redeemed, a subsidy transaction exists"),
        (CANCELLED, "Cancelled by an administrator"),
        (ERRORED, "Errored: the redemption or notification failed"),
        (EXPIRED, "Expired before the learner redeemed"),
        (REVERSED, "Reversed: the transaction was refunded"),
    )
    # States from which allocate() may give the learner the assignment again.
    REALLOCATABLE = (CANCELLED, ERRORED, EXPIRED, REVERSED)
