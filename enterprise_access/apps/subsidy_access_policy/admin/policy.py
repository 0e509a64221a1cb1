from django import forms
from django.contrib import admin

from enterprise_access.apps.core.history_admin import ReadOnlyHistoryAdmin

from ..models import SubsidyAccessPolicy
from ..tenancy import TENANCY_FIELDS, TenancyCheckUnavailable, needs_tenancy_check, policy_tenancy_errors


class PolicyAdminForm(forms.ModelForm):
    """
    The policy form. On top of the model's rules, the subsidy and the catalog must belong to the policy's customer,
    as the subsidy service and enterprise-catalog say (decision 0013), checked on the same occasions as the API.
    The form saves every field, so the combination checked is the combination saved.
    """

    class Meta:
        model = SubsidyAccessPolicy
        fields = "__all__"

    def clean(self):
        cleaned = super().clean()
        if any(name in self.errors for name in TENANCY_FIELDS) or any(not cleaned.get(n) for n in TENANCY_FIELDS):
            return cleaned  # the fields' own messages first: nothing to ask the upstreams about yet
        changes = {name: cleaned[name] for name in (*TENANCY_FIELDS, "active") if name in cleaned}
        if not needs_tenancy_check(self.instance, changes):
            return cleaned
        try:
            errors = policy_tenancy_errors(**{name: cleaned[name] for name in TENANCY_FIELDS})
        except TenancyCheckUnavailable as unavailable:
            raise forms.ValidationError(
                f"The {unavailable.service} service could not be reached to confirm that this policy's subsidy and "
                "catalog belong to its enterprise customer, so nothing was saved. Try saving again in a moment.",
                code="tenancy_check_unavailable",
            ) from unavailable
        for name, message in errors.items():
            self.add_error(name, message)
        return cleaned


@admin.register(SubsidyAccessPolicy)
class SubsidyAccessPolicyAdmin(ReadOnlyHistoryAdmin):
    """Policies of every type in one list; the type's rules are checked by the model's clean()."""

    form = PolicyAdminForm
    list_display = ("display_name", "uuid", "policy_type", "enterprise_customer_uuid", "active", "retired",
                    "spend_limit", "modified")
    list_filter = ("policy_type", "active", "retired", "access_method")
    search_fields = ("=uuid", "display_name", "=enterprise_customer_uuid", "=subsidy_uuid", "=catalog_uuid")
    readonly_fields = ("uuid", "created", "modified")
    raw_id_fields = ("assignment_configuration",)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # Saving makes the instance its type's proxy class; admin's redirect, messages and log entries must speak
        # of the one registered model, or adding a policy fails looking up a proxy's admin URL.
        obj.__class__ = SubsidyAccessPolicy
    fieldsets = (
        (None, {"fields": ("uuid", "policy_type", "display_name", "description", "active", "retired")}),
        ("Who and what", {"fields": ("enterprise_customer_uuid", "subsidy_uuid", "catalog_uuid", "access_method",
                                     "assignment_configuration", "enterprise_group_uuids")}),
        ("Limits (USD cents)", {"fields": ("spend_limit", "per_learner_enrollment_limit", "per_learner_spend_limit",
                                           "late_redemption_allowed_until")}),
        ("Record", {"fields": ("created", "modified")}),
    )
