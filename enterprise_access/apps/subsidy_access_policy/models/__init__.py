"""Models of the subsidy access policy app, one module each, re-exported here."""
from .attempt import AttemptOutcome, AttemptSource, RedemptionAttempt  # noqa: F401
from .forced_redemption import ForcedPolicyRedemption  # noqa: F401
from .reservation import OPEN_STATES, ReservationState, SpendReservation, learner_content_claim  # noqa: F401
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
