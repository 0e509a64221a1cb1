"""
Subsidy access policies: who may spend which subsidy on which catalog, and within what limits.

One table holds every policy; ``policy_type`` names the class that governs it. The three types are proxy
models, and loading any row gives an instance of its type's class, so ``policy.can_redeem()`` always runs
the right rules.
"""
import hashlib
import json
import logging
from uuid import UUID, uuid4

from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, models
from django.db.models.functions import Now
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from simple_history.models import HistoricalRecords

from enterprise_access.apps.api_client import get_catalog_client, get_lms_client, get_subsidy_client
from enterprise_access.apps.content_assignments.constants import AssignmentState
from enterprise_access.apps.content_assignments.models import AssignmentConfiguration, LearnerContentAssignment

from .. import constants as c
from ..tenancy import subsidy_belongs_to_policy_customer
from .reservation import SpendSnapshot, limits_reason

logger = logging.getLogger(__name__)

# One recorder shared by the concrete model and its proxies, so saving a proxy instance writes history too.
policy_history = HistoricalRecords(
    excluded_fields=["created", "modified"],
    history_change_reason_field=models.TextField(null=True),
)


class CanRedeemResult:
    """What ``can_redeem`` decided. Unpacks as ``(redeemable, reason, existing_transactions)``."""

    __slots__ = ("redeemable", "reason", "existing_transactions", "content_price", "content_metadata", "assignment",
                 "requested_price_cents")

    def __init__(self, redeemable, reason=None, existing_transactions=(), *, content_price=None,
                 content_metadata=None, assignment=None, requested_price_cents=None):
        self.redeemable = redeemable
        self.reason = reason
        self.existing_transactions = list(existing_transactions or [])
        # What the subsidy will charge for this redemption, in cents (see subsidy_charge_cents).
        self.content_price = content_price
        self.content_metadata = content_metadata
        self.assignment = assignment
        # The requested_price_cents the create will carry (assigned policies), or None.
        self.requested_price_cents = requested_price_cents

    def refused(self, reason):
        """The same facts, refused for ``reason``."""
        return CanRedeemResult(False, reason, self.existing_transactions, content_price=self.content_price,
                               content_metadata=self.content_metadata, assignment=self.assignment,
                               requested_price_cents=self.requested_price_cents)

    def __iter__(self):
        return iter((self.redeemable, self.reason, self.existing_transactions))

    def __repr__(self):
        return f"CanRedeemResult(redeemable={self.redeemable}, reason={self.reason!r})"


def is_reversed(transaction: dict) -> bool:
    reversal = transaction.get("reversal")
    return isinstance(reversal, dict) and reversal.get("state") == c.TRANSACTION_STATE_COMMITTED


def subsidy_charge_cents(catalog_price_cents, requested_price_cents) -> int:
    """
    What the subsidy service will charge: the requested price when one is sent and is not zero, else the catalog's
    price. The subsidy reads a requested price of 0 as "not given" (contract 5.4), so 0 is never what it charges
    unless the catalog price is 0 too.
    """
    return int(requested_price_cents) if requested_price_cents else int(catalog_price_cents or 0)


def idempotency_key(*, subsidy_uuid, policy_uuid, lms_user_id, content_key, existing_transactions) -> str:
    """
    The deterministic key of one redemption, in the upstream consumer's recipe (contract 2.8).

    A retry reuses the key, so the subsidy service never writes a second transaction for it; each earlier
    failed or reversed transaction changes the key, so a learner whose redemption failed or was refunded can
    redeem again.
    """
    historical = [
        str(tx["uuid"]) for tx in existing_transactions
        if tx.get("state") == c.TRANSACTION_STATE_FAILED or is_reversed(tx)
    ]
    payload = {
        "lms_user_id": int(lms_user_id),
        "content_key": str(content_key),
        "subsidy_access_policy_uuid": str(policy_uuid),
        "historical_redemptions_uuids": historical,
    }
    digest = hashlib.md5(str(payload).encode("utf-8")).hexdigest()  # nosec: a key, not a secret
    return f"ledger-for-subsidy-{subsidy_uuid}-{digest}"


def unknown_configuration_message(configuration_uuid) -> str:
    return (f"No assignment configuration {configuration_uuid} belongs to this policy's enterprise customer: choose "
            "one of its own configurations.")


def canonical_group_uuids(value) -> tuple[list[str], str | None]:
    """
    ``enterprise_group_uuids`` as stored: a list of distinct uuids, each in canonical text form, in the given order.
    Returns ``(uuids, None)``, or ``([], message)`` saying what to fix when ``value`` is not a list of uuids.
    """
    if value is None:
        return [], None
    if not isinstance(value, list):
        return [], "Must be a list of enterprise group uuids, e.g. [\"3f1c...-...\"], or [] for no group restriction."
    canonical = []
    for item in value:
        try:
            text = str(UUID(item)) if isinstance(item, str) else None
        except ValueError:
            text = None
        if text is None:
            return [], f"Each entry must be an enterprise group uuid; {json.dumps(item, default=str)[:80]} is not."
        if text not in canonical:
            canonical.append(text)
    return canonical, None


class PolicyManager(models.Manager):
    """On a proxy class, only that type's policies."""

    def get_queryset(self):
        qs = super().get_queryset()
        if self.model._meta.proxy:
            qs = qs.filter(policy_type=self.model.__name__)
        return qs


class SubsidyAccessPolicy(models.Model):
    """
    Rules for spending one enterprise subsidy on one catalog.

    .. no_pii:
    """

    uuid = models.UUIDField(primary_key=True, default=uuid4, editable=False, help_text="Identifies the policy.")
    policy_type = models.CharField(
        max_length=64, choices=c.POLICY_TYPE_CHOICES, db_index=True,
        help_text="Which rules govern this policy; set from the policy's class.",
    )
    enterprise_customer_uuid = models.UUIDField(db_index=True, help_text="The enterprise customer whose learners use it.")
    display_name = models.CharField(max_length=255, blank=True, default="", help_text="Name shown to admins and learners.")
    description = models.TextField(blank=True, default="", help_text="Free-form notes about the policy.")
    active = models.BooleanField(
        default=False, help_text="Only active policies redeem. Turn on once the subsidy and catalog are ready."
    )
    retired = models.BooleanField(
        default=False, help_text="A retired policy is kept for its records but never redeems again."
    )
    catalog_uuid = models.UUIDField(db_index=True, help_text="The enterprise catalog whose content this policy covers.")
    subsidy_uuid = models.UUIDField(db_index=True, help_text="The enterprise-subsidy ledger that pays for redemptions.")
    access_method = models.CharField(
        max_length=32, choices=c.AccessMethods.CHOICES, default=c.AccessMethods.DIRECT,
        help_text="Direct: learners redeem what they find. Assigned: only content an admin assigned to them.",
    )
    spend_limit = models.BigIntegerField(
        null=True, blank=True,
        help_text="Most this policy may spend in total, in the subsidy's unit (USD cents). Empty: no policy limit.",
    )
    per_learner_enrollment_limit = models.IntegerField(
        null=True, blank=True,
        help_text="Per-learner enrollment cap policies only: most enrollments one learner may redeem.",
    )
    per_learner_spend_limit = models.BigIntegerField(
        null=True, blank=True,
        help_text="Per-learner spend cap policies only: most one learner may spend, in USD cents.",
    )
    late_redemption_allowed_until = models.DateTimeField(
        null=True, blank=True,
        help_text="Until this time, learners may redeem runs past their enrollment deadline "
                  "(and the redeem metadata asks for a late enrollment).",
    )
    assignment_configuration = models.OneToOneField(
        AssignmentConfiguration, null=True, blank=True, on_delete=models.SET_NULL, related_name="policy",
        help_text="Assigned policies only: where their learners' assignments live.",
    )
    enterprise_group_uuids = models.JSONField(
        default=list, blank=True,
        help_text="If not empty, only learners in one of these enterprise groups may redeem.",
    )
    created = models.DateTimeField(auto_now_add=True, help_text="When the policy was created.")
    modified = models.DateTimeField(auto_now=True, help_text="When the policy was last changed.")

    objects = PolicyManager()
    history = policy_history

    class Meta:
        verbose_name = "subsidy access policy"
        verbose_name_plural = "subsidy access policies"

    def __str__(self):
        return f"{self.display_name or self.policy_type} ({self.uuid})"

    # ----- type plumbing -----------------------------------------------------------------------

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        policy_class = POLICY_CLASSES.get(instance.__dict__.get("policy_type"))
        if policy_class is not None and instance.__class__ is not policy_class:
            instance.__class__ = policy_class
        return instance

    def save(self, *args, **kwargs):
        if type(self) in POLICY_CLASSES.values():
            self.policy_type = type(self).__name__
        elif self.policy_type in POLICY_CLASSES:
            self.__class__ = POLICY_CLASSES[self.policy_type]
        return super().save(*args, **kwargs)

    # ----- validation ----------------------------------------------------------------------------

    def clean(self):
        errors = {}
        policy_class = POLICY_CLASSES.get(self.policy_type) or type(self)
        if policy_class is SubsidyAccessPolicy:
            errors["policy_type"] = "Choose a policy type."
        for field in ("spend_limit", "per_learner_enrollment_limit", "per_learner_spend_limit"):
            value = getattr(self, field)
            if value is not None and value < 0:
                errors[field] = "Must be zero or more."
        groups, group_error = canonical_group_uuids(self.enterprise_group_uuids)
        if group_error:
            errors["enterprise_group_uuids"] = group_error
        else:
            self.enterprise_group_uuids = groups
        configuration_error = self.assignment_configuration_error()
        if configuration_error:
            errors["assignment_configuration"] = configuration_error
        if policy_class is not SubsidyAccessPolicy:
            for field, message in policy_class.type_errors(self).items():
                errors.setdefault(field, message)
        if errors:
            raise ValidationError(errors)

    def assignment_configuration_error(self) -> str | None:
        """
        A message when the assignment configuration is not one of the policy's own customer's. The same words for
        another customer's configuration as for an unknown one, so the answer tells nobody that it exists.
        """
        if not self.assignment_configuration_id:
            return None
        owned = AssignmentConfiguration.objects.filter(pk=self.assignment_configuration_id,
                                                       enterprise_customer_uuid=self.enterprise_customer_uuid)
        if self.enterprise_customer_uuid and owned.exists():
            return None
        return unknown_configuration_message(self.assignment_configuration_id)

    @staticmethod
    def type_errors(policy) -> dict:
        return {}

    # ----- state ----------------------------------------------------------------------------------

    @property
    def is_redeemable_now(self) -> bool:
        return self.active and not self.retired

    def late_redemption_allowed_now(self, now=None) -> bool:
        return bool(self.late_redemption_allowed_until and self.late_redemption_allowed_until > (now or timezone.now()))

    @property
    def has_learner_limits(self) -> bool:
        return self.per_learner_enrollment_limit is not None or self.per_learner_spend_limit is not None

    def database_now(self, using):
        """The database's own clock, read through ``using`` (spend readings are ordered on it, decision 0010)."""
        return (type(self).objects.using(using).filter(uuid=self.uuid).annotate(db_now=Now())
                .values_list("db_now", flat=True).first())

    def current_history_row(self):
        """The history row describing the policy as it is now (the newest one)."""
        return self.history.order_by("-history_date", "-history_id").first()

    # ----- upstream reads (cached by the clients where stable) -------------------------------------

    def content_metadata(self, content_key) -> dict | None:
        return get_subsidy_client().get_content_metadata(content_key, self.enterprise_customer_uuid)

    def catalog_contains(self, content_key) -> bool:
        return get_catalog_client().contains_content_items(self.catalog_uuid, [content_key])

    def ledger_spent(self) -> int:
        """Cents the ledger says this policy spent: committed, pending and created redemptions, reversals netted."""
        listing = get_subsidy_client().list_transactions(
            self.subsidy_uuid, subsidy_access_policy_uuid=self.uuid, states=c.SPENT_TRANSACTION_STATES,
            include_aggregates=True, first_page_only=True,
        )
        return -int((listing.get("aggregates") or {}).get("total_quantity") or 0)

    def spend_so_far(self) -> int:
        """Cents spent or set aside under this policy, for display (assigned policies add their allocations)."""
        return self.ledger_spent()

    def learner_transactions(self, lms_user_id) -> list:
        return get_subsidy_client().list_transactions(
            self.subsidy_uuid, subsidy_access_policy_uuid=self.uuid, lms_user_id=lms_user_id,
            states=c.SPENT_TRANSACTION_STATES, include_aggregates=False,
        )["results"]

    # ----- the rules -----------------------------------------------------------------------------

    def requested_price_cents(self, assignment) -> int | None:
        """The requested_price_cents the create carries: only assigned policies send one (their assignment's)."""
        return None

    def assignment_check(self, lms_user_id, content_key):
        """Assigned policies: (reason or None, assignment or None). Other types have nothing to check."""
        return None, None

    def can_redeem(self, lms_user_id, content_key, skip_customer_user_check=False,
                   late_enrollment=None) -> CanRedeemResult:
        """
        Decide whether ``lms_user_id`` may redeem ``content_key`` under this policy, and if not, why (read only).

        Checks run in the contract's order (section 5.3) and stop at the first failure. Upstream errors
        propagate as ``UpstreamAPIError``: an outage is never turned into a reason code. The limits count what
        the ledger says is spent plus every open reservation, exactly as a redemption's reservation does, but
        nothing is reserved: the redemption workflow decides again when it reserves.
        """
        result = self.check_eligibility(lms_user_id, content_key, skip_customer_user_check, late_enrollment)
        if not result.redeemable:
            return result
        # Reads only, through the ordinary connection: the reservations it counts commit on their own.
        snapshot = SpendSnapshot(read_started=self.database_now(DEFAULT_DB_ALIAS), policy_spent=self.ledger_spent(),
                                 learner_transactions=(self.learner_transactions(lms_user_id)
                                                       if self.has_learner_limits else None))
        reason, _ = limits_reason(self, snapshot, lms_user_id, result.content_price, result.assignment,
                                  DEFAULT_DB_ALIAS)
        return result.refused(reason) if reason else result

    def check_eligibility(self, lms_user_id, content_key, skip_customer_user_check=False,
                          late_enrollment=None) -> CanRedeemResult:
        """
        The checks that do not depend on this policy's spending (contract 5.3, steps 1-7): the policy's state, the
        learner, the catalog, the content and its deadline, and the subsidy's own can_redeem (its balance is
        guarded by the subsidy service's ledger lock, not ours).

        ``late_enrollment`` says whether the enrollment deadline is waived; None means "while the policy's late
        redemption window is open". The redemption workflow decides it once per request and passes it.
        """
        if late_enrollment is None:
            late_enrollment = self.late_redemption_allowed_now()
        if not self.is_redeemable_now:
            return CanRedeemResult(False, c.REASON_POLICY_EXPIRED)
        reason, assignment = self.assignment_check(lms_user_id, content_key)
        if reason:
            return CanRedeemResult(False, reason, assignment=assignment)

        if not skip_customer_user_check:
            learner = get_lms_client().get_enterprise_user(self.enterprise_customer_uuid, lms_user_id)
            if learner is None:
                return CanRedeemResult(False, c.REASON_LEARNER_NOT_IN_ENTERPRISE, assignment=assignment)
            if self.enterprise_group_uuids:
                groups, group_error = canonical_group_uuids(self.enterprise_group_uuids)
                if group_error:
                    # A row written before the groups were validated: it can pay nobody until fixed.
                    return CanRedeemResult(False, c.REASON_POLICY_MISCONFIGURED, assignment=assignment)
                learner_groups = {str(g).lower() for g in learner.get("enterprise_group") or []}
                if not learner_groups & set(groups):
                    return CanRedeemResult(False, c.REASON_LEARNER_NOT_IN_ENTERPRISE_GROUP, assignment=assignment)

        if not self.catalog_contains(content_key):
            return CanRedeemResult(False, c.REASON_CONTENT_NOT_IN_CATALOG, assignment=assignment)
        metadata = self.content_metadata(content_key)
        if not metadata:
            return CanRedeemResult(False, c.REASON_CONTENT_NOT_IN_CATALOG, assignment=assignment)
        requested = self.requested_price_cents(assignment)
        price = subsidy_charge_cents(metadata.get("content_price"), requested)

        def refuse(why, existing=()):
            return CanRedeemResult(False, why, existing, content_price=price, content_metadata=metadata,
                                   assignment=assignment, requested_price_cents=requested)

        if not late_enrollment:
            enroll_by = parse_datetime(metadata["enroll_by_date"]) if metadata.get("enroll_by_date") else None
            if enroll_by and timezone.now() > enroll_by:
                return refuse(c.REASON_BEYOND_ENROLLMENT_DEADLINE)

        if not subsidy_belongs_to_policy_customer(self):
            # Never spend another customer's money, whatever the policy row says (decision 0013). Asked only once
            # the policy's own rules leave the subsidy to ask: a refusal above needs no subsidy read.
            return refuse(c.REASON_POLICY_MISCONFIGURED)
        subsidy_answer = get_subsidy_client().can_redeem(self.subsidy_uuid, lms_user_id, content_key)
        existing = subsidy_answer.get("all_transactions") or []
        if not subsidy_answer.get("active", False):
            return refuse(c.REASON_SUBSIDY_EXPIRED, existing)
        if not subsidy_answer.get("can_redeem", False):
            if any(tx.get("state") == c.TRANSACTION_STATE_COMMITTED and not is_reversed(tx) for tx in existing):
                return refuse(c.REASON_LEARNER_ALREADY_REDEEMED, existing)
            return refuse(c.REASON_NOT_ENOUGH_VALUE_IN_SUBSIDY, existing)
        return CanRedeemResult(True, None, existing, content_price=price, content_metadata=metadata,
                               assignment=assignment, requested_price_cents=requested)

    def create_transaction(self, *, lms_user_id, content_key, idempotency_key, metadata=None,
                           requested_price_cents=None) -> dict:
        """
        Ask the subsidy service for the transaction (contract 2.5); returns what it answered.

        Only the redemption workflow calls this, with a reservation counted against the limits. Raises
        ``UpstreamAPIError`` when the subsidy service refuses or cannot be reached.
        """
        return get_subsidy_client().create_transaction(
            self.subsidy_uuid,
            lms_user_id=lms_user_id,
            content_key=content_key,
            subsidy_access_policy_uuid=str(self.uuid),
            idempotency_key=idempotency_key,
            metadata=metadata or None,
            requested_price_cents=requested_price_cents,
        )

    def after_redeem(self, transaction: dict, *, assignment=None):
        """Local bookkeeping when the ledger already holds the learner's committed transaction (a repeat)."""


def _direct_policy_errors(policy, what, foreign_limit, foreign_limit_message) -> dict:
    """Validation shared by the direct (per-learner) types: their access method, and no other type's fields."""
    errors = {}
    if getattr(policy, foreign_limit) is not None:
        errors[foreign_limit] = f"{what} {foreign_limit_message}"
    if policy.access_method != c.AccessMethods.DIRECT:
        errors["access_method"] = f"{what} uses the direct access method."
    if policy.assignment_configuration_id:
        errors["assignment_configuration"] = "Only assigned policies have an assignment configuration."
    return errors


class PerLearnerEnrollmentCreditAccessPolicy(SubsidyAccessPolicy):
    """Learner credit where each learner may redeem at most N enrollments. .. no_pii:"""

    objects = PolicyManager()

    class Meta:
        proxy = True
        verbose_name = "per-learner enrollment cap policy"

    @staticmethod
    def type_errors(policy):
        return _direct_policy_errors(policy, "A per-learner enrollment cap policy", "per_learner_spend_limit",
                                     "has no per-learner spend limit; clear it.")


class PerLearnerSpendCreditAccessPolicy(SubsidyAccessPolicy):
    """Learner credit where each learner may spend at most N cents. .. no_pii:"""

    objects = PolicyManager()

    class Meta:
        proxy = True
        verbose_name = "per-learner spend cap policy"

    @staticmethod
    def type_errors(policy):
        return _direct_policy_errors(policy, "A per-learner spend cap policy", "per_learner_enrollment_limit",
                                     "has no enrollment limit; clear it.")


ASSIGNMENT_STATE_REASONS = {
    AssignmentState.CANCELLED: c.REASON_LEARNER_ASSIGNMENT_CANCELLED,
    AssignmentState.EXPIRED: c.REASON_LEARNER_ASSIGNMENT_EXPIRED,
    AssignmentState.ERRORED: c.REASON_LEARNER_ASSIGNMENT_FAILED,
    AssignmentState.REVERSED: c.REASON_LEARNER_ASSIGNMENT_REVERSED,
}


class AssignedLearnerCreditAccessPolicy(SubsidyAccessPolicy):
    """Learner credit that learners spend only on content an admin assigned to them. .. no_pii:"""

    objects = PolicyManager()

    class Meta:
        proxy = True
        verbose_name = "assigned learner credit policy"

    @staticmethod
    def type_errors(policy):
        errors = {}
        if policy.access_method != c.AccessMethods.ASSIGNED:
            errors["access_method"] = "An assigned learner credit policy uses the assigned access method."
        if not policy.assignment_configuration_id:
            errors["assignment_configuration"] = "An assigned learner credit policy needs an assignment configuration."
        if policy.spend_limit is None:
            errors["spend_limit"] = "An assigned learner credit policy needs a spend limit: assignments draw on it."
        for field in ("per_learner_enrollment_limit", "per_learner_spend_limit"):
            if getattr(policy, field) is not None:
                errors[field] = "Assigned learner credit has no per-learner limits; the assignments are the limit. Clear it."
        return errors

    def get_assignment(self, lms_user_id, content_key):
        if not self.assignment_configuration_id:
            return None
        return (
            LearnerContentAssignment.objects
            .filter(assignment_configuration_id=self.assignment_configuration_id, lms_user_id=lms_user_id,
                    content_key=content_key)
            .order_by("-modified")
            .first()
        )

    def assignment_check(self, lms_user_id, content_key):
        assignment = self.get_assignment(lms_user_id, content_key)
        if assignment is None:
            return c.REASON_LEARNER_NOT_ASSIGNED_CONTENT, None
        if assignment.state in ASSIGNMENT_STATE_REASONS:
            return ASSIGNMENT_STATE_REASONS[assignment.state], assignment
        # Allocated, or accepted (a repeat: the subsidy service answers with the existing transaction).
        return None, assignment

    def spend_so_far(self) -> int:
        # Allocated assignments are money set aside: for display, they count as spent.
        allocated = LearnerContentAssignment.objects.filter(
            assignment_configuration_id=self.assignment_configuration_id, state=AssignmentState.ALLOCATED,
        ).aggregate(total=models.Sum("content_quantity"))["total"] or 0
        return self.ledger_spent() - int(allocated)

    def requested_price_cents(self, assignment):
        return -int(assignment.content_quantity) if assignment is not None else None

    def after_redeem(self, transaction, *, assignment=None):
        from enterprise_access.apps.content_assignments.services import mark_accepted  # noqa: avoid import cycle

        if assignment is not None and assignment.state != AssignmentState.ACCEPTED:
            mark_accepted(assignment, transaction_uuid=transaction["uuid"])


POLICY_CLASSES = {
    cls.__name__: cls
    for cls in (PerLearnerEnrollmentCreditAccessPolicy, PerLearnerSpendCreditAccessPolicy,
                AssignedLearnerCreditAccessPolicy)
}

for _proxy in POLICY_CLASSES.values():
    # simple_history listens for the concrete class only; proxies send their own signals.
    post_save.connect(policy_history.post_save, sender=_proxy, weak=False, dispatch_uid=f"history-save-{_proxy.__name__}")
    post_delete.connect(policy_history.post_delete, sender=_proxy, weak=False,
                        dispatch_uid=f"history-delete-{_proxy.__name__}")
