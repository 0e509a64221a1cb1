"""Django admin of the policy app: policies, forced redemptions and (read-only) redemption attempts."""
from .policy import SubsidyAccessPolicyAdmin  # noqa: F401
