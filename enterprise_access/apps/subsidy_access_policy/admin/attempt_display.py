"""
How the admin shows an attempt at a glance: short outcome and source labels, one colour per outcome, and "why".

Display only: the stored values (``AttemptOutcome``, reason codes, error codes) never change, so the API, the
exports and SQL read what they always read. An outcome or source added later shows as its value, with a grey.
"""
from ..constants import AttemptOutcome, AttemptSource

OUTCOME_SHORT_LABELS = {
    AttemptOutcome.IN_PROGRESS: "in progress",
    AttemptOutcome.REDEEMED: "redeemed",
    AttemptOutcome.NOT_REDEEMABLE: "not redeemable",
    AttemptOutcome.SUBSIDY_REFUSED: "subsidy refused",
    AttemptOutcome.POLICY_BUSY: "policy busy",
    AttemptOutcome.UPSTREAM_UNAVAILABLE: "upstream down",
    AttemptOutcome.UNEXPECTED_ERROR: "error",
    AttemptOutcome.UNCERTAIN: "uncertain",
}
# Chosen to read apart in a stacked bar and for colour-blind readers (Okabe-Ito palette), darkened for contrast
# with white text on the list's badges.
OUTCOME_COLORS = {
    AttemptOutcome.REDEEMED: "#007a55",
    AttemptOutcome.NOT_REDEEMABLE: "#b36b00",
    AttemptOutcome.SUBSIDY_REFUSED: "#c2185b",
    AttemptOutcome.UPSTREAM_UNAVAILABLE: "#8a3fb5",
    AttemptOutcome.POLICY_BUSY: "#0a6eb4",
    AttemptOutcome.UNEXPECTED_ERROR: "#b00020",
    AttemptOutcome.IN_PROGRESS: "#5f6b73",
    AttemptOutcome.UNCERTAIN: "#8c5a00",
}
OTHER_COLOR = "#3d4a52"

SOURCE_SHORT_LABELS = {
    AttemptSource.LEARNER_REDEEM_API: "learner",
    AttemptSource.FORCED_REDEMPTION: "forced",
    AttemptSource.OPERATOR_API: "operator",
}

# The services the upstream clients name in their errors; the workflow writes "<service>: <message>".
UPSTREAM_SERVICES = ("subsidy", "catalog", "lms", "oauth")


def outcome_label(outcome: str) -> str:
    return OUTCOME_SHORT_LABELS.get(outcome) or outcome.replace("_", " ")


def outcome_color(outcome: str) -> str:
    return OUTCOME_COLORS.get(outcome, OTHER_COLOR)


def source_label(source: str) -> str:
    return SOURCE_SHORT_LABELS.get(source) or source.replace("_", " ")


def error_service(error_message: str) -> str:
    """The upstream service an error came from, as the workflow prefixes it on the message ("lms: ..."), or ""."""
    head, sep, _ = (error_message or "").partition(":")
    return head if sep and head in UPSTREAM_SERVICES else ""


def why(attempt) -> str:
    """
    Why the run ended as it did, in a few words: the reason code, or the failing service, HTTP status and error
    code ("subsidy 422 enrollment_error", "lms timeout"), or a local error code ("policy_lock_busy").
    Empty for a plain redemption and for a run still in progress.
    """
    if attempt.reason:
        return attempt.reason
    if attempt.error_code or attempt.error_status:
        parts = (error_service(attempt.error_message), attempt.error_status, attempt.error_code)
        return " ".join(str(part) for part in parts if part)
    return ""
