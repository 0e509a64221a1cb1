"""Serializers of the redemption-attempt endpoints."""
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from enterprise_access.apps.subsidy_access_policy.models import RedemptionAttempt

PUBLIC_FIELDS = [
    "uuid", "policy_uuid", "enterprise_customer_uuid", "lms_user_id", "content_key", "assignment",
    "subsidy_request_uuid", "forced_redemption", "request_metadata", "source", "request_id", "policy_history",
    "can_redeem", "reason", "outcome", "already_redeemed", "transaction_uuid", "transaction_state",
    "fulfillment_identifier", "external_references", "content_price", "error_status", "error_code",
    "error_message", "started_at", "finished_at", "can_redeem_ms", "subsidy_call_ms",
]
# Internal: the raw upstream error body and who acted, for support staff and operators only.
INTERNAL_FIELDS = ["error_payload", "acting_user"]
# Staff-only among the public fields: upstream text, and what was sent upstream.
LEARNER_HIDDEN_FIELDS = ("error_message", "request_metadata", "error_code")


class RedemptionAttemptSerializer(serializers.ModelSerializer):
    """An attempt as support staff, operators and enterprise admins see it."""

    class Meta:
        model = RedemptionAttempt
        fields = PUBLIC_FIELDS + INTERNAL_FIELDS
        read_only_fields = fields


class LearnerRedemptionAttemptSerializer(serializers.ModelSerializer):
    """An attempt as the learner it concerns sees it: without internal error payloads."""

    class Meta:
        model = RedemptionAttempt
        # error_code is the upstream's own code when it gave one (any text): the learner reads reason and outcome.
        fields = [f for f in PUBLIC_FIELDS if f not in LEARNER_HIDDEN_FIELDS]
        read_only_fields = fields


class AttemptForCallerSerializer(serializers.BaseSerializer):
    """
    An attempt as the caller may read it: the staff or the learner shape, chosen for each row by the view's
    ``sees_staff_fields(attempt)`` (in the serializer context), so a list and a detail of one row always agree.
    """

    def to_representation(self, instance):
        staff = self.context["sees_staff_fields"](instance)
        shape = RedemptionAttemptSerializer if staff else LearnerRedemptionAttemptSerializer
        return shape(instance, context=self.context).data


@extend_schema_serializer(component_name="RedemptionAttempt")
class RedemptionAttemptSchemaSerializer(serializers.ModelSerializer):
    """
    An attempt as the API answers it (documentation only): the internal fields ``error_message``,
    ``request_metadata``, ``error_payload`` and ``acting_user`` come to operators and enterprise admins, not to
    the learner the attempt concerns, so the schema does not require them.
    """

    error_message = serializers.CharField(required=False, help_text="Human-readable error text (not for learners).")
    error_code = serializers.CharField(required=False, help_text="The failing service's error code, or ours (not for "
                                                                 "learners: an upstream's code is its own text).")
    request_metadata = serializers.JSONField(required=False, allow_null=True,
                                             help_text="The metadata sent to the subsidy service (not for learners).")
    error_payload = serializers.JSONField(required=False, allow_null=True,
                                          help_text="Raw upstream error body (not for learners).")
    acting_user = serializers.IntegerField(required=False, allow_null=True,
                                           help_text="The authenticated user who asked (not for learners).")

    class Meta:
        model = RedemptionAttempt
        fields = PUBLIC_FIELDS + INTERNAL_FIELDS
        read_only_fields = [f for f in fields if f not in ("error_message", "request_metadata", *INTERNAL_FIELDS)]


class SummaryGroupSerializer(serializers.Serializer):
    group = serializers.CharField(help_text="The day (YYYY-MM-DD), the policy uuid or the reason code.")
    total = serializers.IntegerField()
    by_outcome = serializers.DictField(child=serializers.IntegerField())
    by_reason = serializers.DictField(child=serializers.IntegerField())


class SummarySerializer(serializers.Serializer):
    group_by = serializers.ChoiceField(choices=["day", "policy", "reason"])
    total = serializers.IntegerField()
    by_outcome = serializers.DictField(child=serializers.IntegerField())
    by_reason = serializers.DictField(child=serializers.IntegerField())
    groups = SummaryGroupSerializer(many=True)
