"""
Read-only admin of RedemptionAttempt, built to stay fast on a table of millions of rows:
no full count (a capped count instead), no joins or per-row queries in the list, filters from constants
rather than SELECT DISTINCT, and searches on indexed columns only.
"""
from django.contrib import admin
from django.core.paginator import Paginator
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html

from .. import constants as c
from ..models import RedemptionAttempt, SubsidyAccessPolicy

COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 rows: the page links stay useful and the count stays cheap."""

    @cached_property
    def count(self):
        return self.object_list.order_by()[: COUNT_CAP + 1].count()


class ReasonFilter(admin.SimpleListFilter):
    title = "reason"
    parameter_name = "reason"

    def lookups(self, request, model_admin):
        return [(reason, reason) for reason in c.ALL_REASONS]

    def queryset(self, request, queryset):
        return queryset.filter(reason=self.value()) if self.value() else queryset


@admin.register(RedemptionAttempt)
class RedemptionAttemptAdmin(admin.ModelAdmin):
    list_display = ("uuid", "started_at", "outcome", "reason", "source", "lms_user_id", "content_key",
                    "policy_link", "transaction_uuid", "can_redeem_ms", "subsidy_call_ms")
    list_filter = ("outcome", ReasonFilter, "source", ("started_at", admin.DateFieldListFilter))
    search_fields = ("=lms_user_id", "=content_key", "=policy_uuid", "=transaction_uuid", "=uuid", "=request_id")
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 50
    ordering = ("-started_at",)
    readonly_fields = ("policy_link", "policy_history_link", "forced_redemption_link", "assignment_link")
    fieldsets = (
        ("Inputs", {"fields": ("uuid", "policy_link", "policy_uuid", "enterprise_customer_uuid", "lms_user_id",
                               "content_key", "assignment_link", "subsidy_request_uuid", "forced_redemption_link",
                               "request_metadata")}),
        ("Who and how", {"fields": ("source", "acting_user", "request_id")}),
        ("Policy at that moment", {"fields": ("policy_history_link",)}),
        ("Eligibility", {"fields": ("can_redeem", "reason")}),
        ("Subsidy answer", {"fields": ("outcome", "already_redeemed", "transaction_uuid", "transaction_state",
                                       "fulfillment_identifier", "external_references", "content_price",
                                       "error_status", "error_code", "error_message", "error_payload")}),
        ("Timings", {"fields": ("started_at", "finished_at", "can_redeem_ms", "subsidy_call_ms")}),
    )

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields] + list(self.readonly_fields)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    # Links are built from the ids on the row itself: no query per row.
    @admin.display(description="policy")
    def policy_link(self, obj):
        url = reverse("admin:subsidy_access_policy_subsidyaccesspolicy_change", args=[obj.policy_uuid])
        return format_html('<a href="{}">{}</a>', url, obj.policy_uuid)

    @admin.display(description="policy as it was (history row)")
    def policy_history_link(self, obj):
        """The policy's history row in force when the attempt started, opened in simple_history's row view."""
        if not obj.policy_history_id:
            return "-"
        history = SubsidyAccessPolicy.history.model
        if not history.objects.filter(history_id=obj.policy_history_id, uuid=obj.policy_uuid).exists():
            return f"history row {obj.policy_history_id} (no longer stored)"
        # django-simple-history names its row view "<app>_<model>_simple_history".
        url = reverse("admin:subsidy_access_policy_subsidyaccesspolicy_simple_history",
                      args=[obj.policy_uuid, obj.policy_history_id])
        return format_html('<a href="{}">history row {}</a>', url, obj.policy_history_id)

    @admin.display(description="forced redemption")
    def forced_redemption_link(self, obj):
        if not obj.forced_redemption_id:
            return "-"
        url = reverse("admin:subsidy_access_policy_forcedpolicyredemption_change", args=[obj.forced_redemption_id])
        return format_html('<a href="{}">{}</a>', url, obj.forced_redemption_id)

    @admin.display(description="assignment")
    def assignment_link(self, obj):
        if not obj.assignment_id:
            return "-"
        url = reverse("admin:content_assignments_learnercontentassignment_change", args=[obj.assignment_id])
        return format_html('<a href="{}">{}</a>', url, obj.assignment_id)
