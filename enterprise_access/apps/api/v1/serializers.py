"""Input and output serializers of API v1. Inputs are strict: no silent coercion of a string into an int."""
import json
import math

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from enterprise_access.apps.api.reasons import API_REASONS, REASON_UPSTREAM_UNAVAILABLE
from enterprise_access.apps.core.lms_ids import LMS_USER_ID_MAX
from enterprise_access.apps.subsidy_access_policy import constants as c
from enterprise_access.apps.content_assignments.models import AssignmentConfiguration
from enterprise_access.apps.subsidy_access_policy.models import POLICY_CLASSES, SubsidyAccessPolicy
from enterprise_access.apps.subsidy_access_policy.models.policy import (
    canonical_group_uuids,
    unknown_configuration_message,
)

MAX_LMS_USER_ID = LMS_USER_ID_MAX
MAX_CONTENT_KEY_LENGTH = 255
MAX_METADATA_BYTES = 8 * 1024
MAX_CONTENT_KEYS = 50
MAX_GROUP_UUIDS = 100


class StrictIntegerField(serializers.IntegerField):
    """An integer that must arrive as a JSON number (a query-string value may be digits)."""

    def __init__(self, *, allow_digit_string=False, **kwargs):
        self.allow_digit_string = allow_digit_string
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or isinstance(data, float):
            self.fail("invalid")
        if isinstance(data, str) and not (self.allow_digit_string and data.strip().isdigit() and data.isascii()):
            self.fail("invalid")
        if not isinstance(data, (int, str)):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """A string that must arrive as a string."""

    default_error_messages = {"not_a_string": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class StrictUUIDField(serializers.UUIDField):
    """A uuid that must arrive as a string (DRF would read the number 5 as uuid 00000000-...-000000000005)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


def lms_user_id_field(**kwargs):
    return StrictIntegerField(min_value=1, max_value=MAX_LMS_USER_ID,
                              help_text="The learner's LMS user id.", **kwargs)


def content_key_field(**kwargs):
    return StrictCharField(max_length=MAX_CONTENT_KEY_LENGTH, help_text="A course run key (or course key).", **kwargs)


MAX_METADATA_VALUE_LENGTH = 1000


class RedeemRequestSerializer(serializers.Serializer):
    lms_user_id = lms_user_id_field()
    content_key = content_key_field()
    metadata = serializers.DictField(
        required=False, allow_null=True, allow_empty=True,
        help_text="The learner's details for executive-education fulfillment, passed to the subsidy transaction: "
                  "keys starting with 'geag_' (e.g. geag_first_name, geag_email), each a string, number, boolean "
                  "or null; at most 8 KB of JSON. Keys that steer the subsidy service (allow_late_enrollment, "
                  "fallback_external_fulfillment_reference_id) are set only by this service and refused.",
    )

    def validate_metadata(self, value):
        if value is None:
            return None
        if len(json.dumps(value)) > MAX_METADATA_BYTES:
            raise serializers.ValidationError(f"Must be at most {MAX_METADATA_BYTES} bytes of JSON.")
        errors = []
        for key, item in value.items():
            if key in c.CONTROL_METADATA_KEYS:
                errors.append(f"'{key}' is set by this service (the policy's late-redemption window, or staff "
                              "forcing a redemption), never by the caller: remove it.")
            elif not key.startswith(c.EXEC_ED_METADATA_PREFIX):
                errors.append(f"'{key}' is not accepted: metadata carries only the learner's executive-education "
                              f"details, keys starting with '{c.EXEC_ED_METADATA_PREFIX}'.")
            elif not isinstance(item, (str, int, float, bool, type(None))):
                errors.append(f"'{key}' must be a string, a number, a boolean or null.")
            elif isinstance(item, float) and not math.isfinite(item):
                errors.append(f"'{key}' must be a finite number (JSON has no NaN or infinity).")
            elif isinstance(item, str) and len(item) > MAX_METADATA_VALUE_LENGTH:
                errors.append(f"'{key}' must be at most {MAX_METADATA_VALUE_LENGTH} characters.")
        if errors:
            raise serializers.ValidationError(errors)
        return value


class CanRedeemQuerySerializer(serializers.Serializer):
    content_key = serializers.ListField(child=content_key_field(), min_length=1, max_length=MAX_CONTENT_KEYS)
    lms_user_id = lms_user_id_field(required=False, allow_digit_string=True)


class CreditsAvailableQuerySerializer(serializers.Serializer):
    enterprise_customer_uuid = serializers.UUIDField()
    lms_user_id = lms_user_id_field(allow_digit_string=True)


# ----- output shapes (documentation and the policy resource) ---------------------------------------------


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField(required=False)


# ``{"<field>": ["message", ...]}`` for each invalid field; a nested field's errors nest the same way
# (``{"content_key": {"0": ["..."]}}``); a body that is not JSON gives ``{"detail": "JSON parse error ..."}``.
# A raw schema: a serializer cannot say "any field name".
FIELD_ERRORS_SCHEMA = {
    "type": "object",
    "description": 'Per-field messages: {"<field>": ["message", ...]}, nested for nested fields; or {"detail": "..."}.',
    "additionalProperties": {"anyOf": [
        {"type": "string"},
        {"type": "array", "items": {}},
        {"type": "object", "additionalProperties": {}},
    ]},
}


class ReasonMetadataSerializer(serializers.Serializer):
    enterprise_administrators = serializers.ListField(child=serializers.DictField())
    contact_email = serializers.EmailField(allow_null=True)


class ReasonSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(
        choices=c.ALL_REASONS + API_REASONS,
        help_text=f"Why the listed policies would not pay; '{REASON_UPSTREAM_UNAVAILABLE}': they could not be "
                  "asked just now (an upstream service failed for them), so they are undecided, not refused.")
    user_message = serializers.CharField()
    metadata = ReasonMetadataSerializer()
    policy_uuids = serializers.ListField(child=serializers.UUIDField())


class NotRedeemableSerializer(serializers.Serializer):
    detail = ReasonSerializer(many=True)


class SubsidyRefusedSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="A message for the learner, written by this service for the code. The "
                                             "subsidy service's own text is on the attempt, for staff.")
    code = serializers.CharField(help_text="The subsidy service's error code when it is one of its documented codes "
                                           "(e.g. fulfillment_error, enrollment_error), transaction_not_committed, "
                                           "else subsidy_refused.")
    attempt_uuid = serializers.UUIDField(allow_null=True)


class RetryableErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
    retry_after_seconds = serializers.IntegerField()
    attempt_uuid = serializers.UUIDField(allow_null=True)


class ServerErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
    attempt_uuid = serializers.UUIDField(allow_null=True, required=False)


class TransactionSerializer(serializers.Serializer):
    """The subsidy service's transaction JSON, passed through (contract §2.6)."""

    uuid = serializers.UUIDField()
    state = serializers.CharField()
    quantity = serializers.IntegerField()
    lms_user_id = serializers.IntegerField()
    content_key = serializers.CharField()
    subsidy_access_policy_uuid = serializers.UUIDField()
    idempotency_key = serializers.CharField()


class CanRedeemEntrySerializer(serializers.Serializer):
    content_key = serializers.CharField()
    list_price = serializers.DictField(allow_null=True)
    redemptions = serializers.ListField(child=serializers.DictField())
    has_successful_redemption = serializers.BooleanField()
    redeemable_subsidy_access_policy = serializers.DictField(allow_null=True)
    can_redeem = serializers.BooleanField()
    undecided = serializers.BooleanField(
        help_text="True when no policy would pay but at least one could not be asked just now (its reason entry is "
                  f"'{REASON_UPSTREAM_UNAVAILABLE}'): the answer may change on a retry. False otherwise.")
    reasons = ReasonSerializer(many=True)


class CreditsAvailableEntrySerializer(serializers.Serializer):
    """
    A policy with credit left for the learner; or a policy that could not be asked just now (``undecided``), whose
    figures are then null: it may or may not have credit.
    """

    uuid = serializers.UUIDField()
    policy_type = serializers.CharField()
    display_name = serializers.CharField()
    subsidy_uuid = serializers.UUIDField()
    catalog_uuid = serializers.UUIDField()
    undecided = serializers.BooleanField(help_text="True when an upstream service failed for this policy.")
    reason = serializers.ChoiceField(choices=API_REASONS, allow_null=True,
                                     help_text=f"'{REASON_UPSTREAM_UNAVAILABLE}' when undecided, else null.")
    remaining_balance = serializers.IntegerField(allow_null=True, help_text="Cents; null when undecided.")
    remaining_balance_per_user = serializers.IntegerField(allow_null=True)
    remaining_enrollments_per_user = serializers.IntegerField(allow_null=True)
    subsidy_expiration_datetime = serializers.CharField(allow_null=True)
    learner_content_assignments = serializers.ListField(child=serializers.DictField())


class AssignmentConfigurationField(StrictUUIDField):
    """An assignment configuration, by uuid; the serializer checks it is the policy's customer's."""

    def to_representation(self, value):
        return super().to_representation(value.pk)


class PolicySerializer(serializers.ModelSerializer):
    """A subsidy access policy. ``policy_type`` is set on create and fixed after."""

    policy_type = serializers.ChoiceField(choices=c.POLICY_TYPE_CHOICES)
    assignment_configuration = AssignmentConfigurationField(
        required=False, allow_null=True,
        help_text="Assigned policies only: the uuid of one of the policy's own customer's assignment configurations.")
    enterprise_group_uuids = serializers.ListField(
        child=StrictUUIDField(), required=False, allow_empty=True, max_length=MAX_GROUP_UUIDS,
        help_text="If not empty, only learners in one of these enterprise groups may redeem. A list of uuids.")

    class Meta:
        model = SubsidyAccessPolicy
        fields = [
            "uuid", "policy_type", "enterprise_customer_uuid", "display_name", "description", "active", "retired",
            "catalog_uuid", "subsidy_uuid", "access_method", "spend_limit", "per_learner_enrollment_limit",
            "per_learner_spend_limit", "late_redemption_allowed_until", "assignment_configuration",
            "enterprise_group_uuids", "created", "modified",
        ]
        read_only_fields = ["uuid", "created", "modified"]

    def validate_policy_type(self, value):
        if self.instance is not None and value != self.instance.policy_type:
            raise serializers.ValidationError("A policy's type cannot change; create a new policy instead.")
        return value

    def validate_enterprise_group_uuids(self, value):
        return canonical_group_uuids([str(item) for item in value])[0]

    def validate(self, attrs):
        """The assignment configuration must be one of the policy's own customer's (the same 400 when unknown)."""
        instance = self.instance
        customer = attrs.get("enterprise_customer_uuid", getattr(instance, "enterprise_customer_uuid", None))
        if "assignment_configuration" in attrs:
            configuration_uuid = attrs["assignment_configuration"]
        else:
            configuration_uuid = getattr(instance, "assignment_configuration_id", None)
        if configuration_uuid is None:
            attrs_configuration = None
        else:
            attrs_configuration = AssignmentConfiguration.objects.filter(
                pk=configuration_uuid, enterprise_customer_uuid=customer).first()
            if attrs_configuration is None:
                raise serializers.ValidationError(
                    {"assignment_configuration": [unknown_configuration_message(configuration_uuid)]})
            taken = SubsidyAccessPolicy.objects.filter(assignment_configuration=attrs_configuration)
            if instance is not None:
                taken = taken.exclude(pk=instance.pk)
            if taken.exists():
                raise serializers.ValidationError({"assignment_configuration": [
                    f"Assignment configuration {configuration_uuid} is already another policy's: each assigned "
                    "policy needs its own."]})
        if "assignment_configuration" in attrs:
            attrs["assignment_configuration"] = attrs_configuration
        return attrs

    def _full_clean(self, instance):
        try:
            instance.full_clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(serializers.as_serializer_error(exc)) from exc

    def create(self, validated_data):
        policy_class = POLICY_CLASSES[validated_data.pop("policy_type")]
        instance = policy_class(policy_type=policy_class.__name__, **validated_data)
        self._full_clean(instance)
        instance.save()
        return instance

    def update(self, instance, validated_data):
        """
        Write only the fields the request sent, so a concurrent change of another field stands. The caller passes
        the row read afresh under its lock (see the view's ``perform_update``).
        """
        validated_data.pop("policy_type", None)
        for name, value in validated_data.items():
            setattr(instance, name, value)
        self._full_clean(instance)
        instance.save(update_fields=[*validated_data, "modified"])
        return instance
