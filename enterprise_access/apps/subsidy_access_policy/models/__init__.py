"""Models of the subsidy access policy app, one module each, re-exported here."""
from .attempt import AttemptOutcome, AttemptSource, RedemptionAttempt  # noqa: F401
from .forced_redemption import ForcedPolicyRedemption  # noqa: F401
from .reservation import (  # noqa: F401
    OPEN_STATES,
    ReservationState,
    SpendReservation,
    SpendSnapshot,
    learner_content_claim,
    limits_reason,
    transactions_spent,
)
from .policy import (  # noqa: F401
    POLICY_CLASSES,
    AssignedLearnerCreditAccessPolicy,
    CanRedeemResult,
    PerLearnerEnrollmentCreditAccessPolicy,
    PerLearnerSpendCreditAccessPolicy,
    SubsidyAccessPolicy,
    idempotency_key,
    is_reversed,
)
from .bulk_forcing import BulkForcingJob, BulkForcingRow  # noqa: F401
