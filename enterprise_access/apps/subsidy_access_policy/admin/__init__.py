"""
Django admin of the policy app: policies, forced redemptions (one by one, or from a CSV and forced in the
background by bulk forcing jobs) and (read-only) redemption attempts.
"""
from .attempt import RedemptionAttemptAdmin  # noqa: F401
from .bulk_forcing import BulkForcingJobAdmin  # noqa: F401
from .forced_redemption import ForcedPolicyRedemptionAdmin  # noqa: F401
from .policy import SubsidyAccessPolicyAdmin  # noqa: F401
