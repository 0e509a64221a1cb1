"""Policy types, access methods, attempt sources and outcomes, reason codes and metadata keys of redemption."""
from enterprise_access.apps.core.choices import TextChoices


class PolicyType(TextChoices):
    """The value stored in ``SubsidyAccessPolicy.policy_type``: the concrete policy's class name."""

    PER_LEARNER_ENROLLMENT_CREDIT = (
        "PerLearnerEnrollmentCreditAccessPolicy", "Per-learner enrollment cap (learner credit)"
    )
    PER_LEARNER_SPEND_CREDIT = "PerLearnerSpendCreditAccessPolicy", "Per-learner spend cap (learner credit)"
    ASSIGNED_LEARNER_CREDIT = "AssignedLearnerCreditAccessPolicy", "Assigned learner credit"


PER_LEARNER_ENROLLMENT_CREDIT = PolicyType.PER_LEARNER_ENROLLMENT_CREDIT
PER_LEARNER_SPEND_CREDIT = PolicyType.PER_LEARNER_SPEND_CREDIT
ASSIGNED_LEARNER_CREDIT = PolicyType.ASSIGNED_LEARNER_CREDIT
POLICY_TYPE_CHOICES = PolicyType.CHOICES


class AccessMethods(TextChoices):
    DIRECT = "direct", "Direct: learners browse and redeem"
    ASSIGNED = "assigned", "Assigned: admins assign content to learners"


class AttemptSource(TextChoices):
    """Who started a redemption run (``RedemptionAttempt.source``)."""

    LEARNER_REDEEM_API = "learner_redeem_api", "Learner portal redeem API"
    FORCED_REDEMPTION = "forced_redemption", "Forced redemption (Django admin)"
    OPERATOR_API = "operator_api", "Operator on behalf of a learner (redeem API)"


class AttemptOutcome(TextChoices):
    """How a redemption run ended (``RedemptionAttempt.outcome``)."""

    IN_PROGRESS = "in_progress", "In progress (or the run died before finishing)"
    REDEEMED = "redeemed", "Redeemed: the subsidy service committed a transaction"
    NOT_REDEEMABLE = "not_redeemable", "Not redeemable: can_redeem said no (see reason)"
    SUBSIDY_REFUSED = "subsidy_refused", "Subsidy refused: the subsidy service declined the transaction (see error)"
    POLICY_BUSY = "policy_busy", "Busy: the subsidy ledger stayed locked, or the same redemption was already running"
    UPSTREAM_UNAVAILABLE = (
        "upstream_unavailable", "Upstream unavailable: an upstream service, the cache or the database failed"
    )
    UNEXPECTED_ERROR = "unexpected_error", "Unexpected error inside the workflow (see error and logs)"
    UNCERTAIN = (
        "uncertain", "Uncertain: the subsidy service may have written a transaction; reconciliation settles it"
    )


# Why a redemption is not allowed. The order of checks is the contract sheet's, section 5.3.
REASON_POLICY_EXPIRED = "policy_expired"
REASON_LEARNER_NOT_IN_ENTERPRISE = "learner_not_in_enterprise"
REASON_LEARNER_NOT_IN_ENTERPRISE_GROUP = "learner_not_in_enterprise_group"
REASON_CONTENT_NOT_IN_CATALOG = "content_not_in_catalog"
REASON_BEYOND_ENROLLMENT_DEADLINE = "beyond_enrollment_deadline"
REASON_SUBSIDY_EXPIRED = "subsidy_expired"
REASON_LEARNER_ALREADY_REDEEMED = "learner_already_redeemed_content"
REASON_NOT_ENOUGH_VALUE_IN_SUBSIDY = "not_enough_value_in_subsidy"
REASON_POLICY_SPEND_LIMIT_REACHED = "policy_spend_limit_reached"
REASON_LEARNER_MAX_ENROLLMENTS_REACHED = "learner_max_enrollments_reached"
REASON_LEARNER_MAX_SPEND_REACHED = "learner_max_spend_reached"
# Assigned policies only.
REASON_LEARNER_NOT_ASSIGNED_CONTENT = "learner_not_assigned_content"
REASON_LEARNER_ASSIGNMENT_CANCELLED = "learner_assignment_cancelled"
REASON_LEARNER_ASSIGNMENT_EXPIRED = "learner_assignment_expired"
REASON_LEARNER_ASSIGNMENT_FAILED = "learner_assignment_failed"
REASON_LEARNER_ASSIGNMENT_REVERSED = "learner_assignment_reversed"
# A limit is passed only because of redemptions whose outcome is not known yet: retry shortly.
REASON_SPEND_PENDING = "spend_pending_confirmation"
# The policy's subsidy belongs to another customer (the tenancy guard at redeem; staff must fix the policy).
REASON_POLICY_MISCONFIGURED = "policy_misconfigured"
# Forced redemption only.
REASON_EXEC_ED_DETAILS_MISSING = "exec_ed_learner_details_missing"
REASON_ASSIGNMENT_PRICE_INVALID = "assignment_price_invalid"

# What the learner portal shows for each reason. "{contact}" is filled with the admin contact line.
REASON_USER_MESSAGES = {
    REASON_POLICY_EXPIRED: "Your organization's learner credit for this course has expired. {contact}",
    REASON_LEARNER_NOT_IN_ENTERPRISE: (
        "Your account is not linked to this organization. Sign in with the account your organization "
        "invited, or {contact_lower}"
    ),
    REASON_LEARNER_NOT_IN_ENTERPRISE_GROUP: "This learner credit is reserved for a group you are not in. {contact}",
    REASON_CONTENT_NOT_IN_CATALOG: "This course is not part of your organization's catalog. {contact}",
    REASON_BEYOND_ENROLLMENT_DEADLINE: (
        "The enrollment deadline for this course run has passed. Choose a later run, or {contact_lower}"
    ),
    REASON_SUBSIDY_EXPIRED: "Your organization's learner credit has expired. {contact}",
    REASON_LEARNER_ALREADY_REDEEMED: "You are already enrolled in this course with your organization's credit.",
    REASON_NOT_ENOUGH_VALUE_IN_SUBSIDY: "Your organization does not have enough learner credit left for this course. {contact}",
    REASON_POLICY_SPEND_LIMIT_REACHED: "Your organization's budget for this learner credit has been used up. {contact}",
    REASON_LEARNER_MAX_ENROLLMENTS_REACHED: "You have reached the number of enrollments your organization allows. {contact}",
    REASON_LEARNER_MAX_SPEND_REACHED: "You have used all the learner credit your organization allows per learner. {contact}",
    REASON_LEARNER_NOT_ASSIGNED_CONTENT: "This course has not been assigned to you. {contact}",
    REASON_LEARNER_ASSIGNMENT_CANCELLED: "Your assignment of this course was cancelled. {contact}",
    REASON_LEARNER_ASSIGNMENT_EXPIRED: "Your assignment of this course expired before you enrolled. {contact}",
    REASON_LEARNER_ASSIGNMENT_FAILED: "Something went wrong with your assignment of this course. {contact}",
    REASON_LEARNER_ASSIGNMENT_REVERSED: "Your enrollment through this assignment was refunded. {contact}",
    REASON_SPEND_PENDING: (
        "Other enrollments paid by this learner credit are being confirmed right now. Try again in a minute."
    ),
    REASON_POLICY_MISCONFIGURED: (
        "This learner credit cannot be used right now because of a setup problem on our side; nothing was charged. "
        "{contact}"
    ),
    REASON_EXEC_ED_DETAILS_MISSING: (
        "Executive education content needs the learner's details (first and last name, email, date of birth "
        "and when they accepted the terms) before it can be redeemed."
    ),
    REASON_ASSIGNMENT_PRICE_INVALID: (
        "The assignment's price must be more than zero and within 20% of the course's catalog price."
    ),
}
ALL_REASONS = tuple(REASON_USER_MESSAGES)

# Transaction states of the enterprise-subsidy ledger.
TRANSACTION_STATE_CREATED = "created"
TRANSACTION_STATE_PENDING = "pending"
TRANSACTION_STATE_COMMITTED = "committed"
TRANSACTION_STATE_FAILED = "failed"
SPENT_TRANSACTION_STATES = (TRANSACTION_STATE_COMMITTED, TRANSACTION_STATE_PENDING, TRANSACTION_STATE_CREATED)

# Keys of the redeem payload's metadata.
METADATA_ALLOW_LATE_ENROLLMENT = "allow_late_enrollment"
METADATA_FALLBACK_EXTERNAL_REFERENCE = "fallback_external_fulfillment_reference_id"
# Keys that steer the subsidy service rather than describe the learner: only this service sets them (the policy's
# late-redemption window, forced redemption). A caller that sends one is refused with a 400.
CONTROL_METADATA_KEYS = (METADATA_ALLOW_LATE_ENROLLMENT, METADATA_FALLBACK_EXTERNAL_REFERENCE)
# The learner's details exec-ed fulfillment requires (contract 5.5); they pass through, and are masked on the
# attempt row. geag_data_share_consent is required only by customers that ask for data-sharing consent.
EXEC_ED_METADATA_PREFIX = "geag_"
EXEC_ED_REQUIRED_METADATA = (
    "geag_first_name", "geag_last_name", "geag_email", "geag_date_of_birth", "geag_terms_accepted_at",
)
# Required on top of those when the customer asks its learners for data-sharing consent (contract 5.5).
EXEC_ED_DATA_SHARE_CONSENT = "geag_data_share_consent"
EXEC_ED_SOURCE = "2u"
# The subsidy accepts a requested price within this range of the catalog price (contract 2.5, step 5).
REQUESTED_PRICE_RANGE = (0.8, 1.2)
