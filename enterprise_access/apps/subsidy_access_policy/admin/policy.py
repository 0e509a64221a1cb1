from django import forms
from django.contrib import admin

from enterprise_access.apps.core.history_admin import ReadOnlyHistoryAdmin

from ..models import SubsidyAccessPolicy


class PolicyAdminForm(forms.ModelForm):
    class Meta:
        model = SubsidyAccessPolicy
        fields = "__all__"


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
    fieldsets = (
        (None, {"fields": ("uuid", "policy_type", "display_name", "description", "active", "retired")}),
        ("Who and what", {"fields": ("enterprise_customer_uuid", "subsidy_uuid", "catalog_uuid", "access_method",
                                     "assignment_configuration", "enterprise_group_uuids")}),
        ("Limits (USD cents)", {"fields": ("spend_limit", "per_learner_enrollment_limit", "per_learner_spend_limit",
                                           "late_redemption_allowed_until")}),
        ("Record", {"fields": ("created", "modified")}),
    )
