"""
Admin of forced redemptions: staff push one learner into one course run under a policy.

Saving a record (unless "wait to redeem" is ticked) and the "Force redemption" action both hand off to
``forcing.force_redemption``; this module only collects input, asks for confirmation and reports. The forcing
runs after the admin's own transaction commits (``transaction.on_commit``): the workflow writes its audit rows
through a second connection, which on SQLite cannot write while the admin's transaction holds the write lock.
"""
from uuid import UUID

from django.conf import settings
from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from enterprise_access.apps.core.history_admin import ReadOnlyHistoryAdmin

from ..bulk_forcing import start_bulk_forcing
from ..forcing import force_redemption
from ..models import ForcedPolicyRedemption

FORCE_PERMISSION = "subsidy_access_policy.force_redemption"
INPUT_FIELDS = ("subsidy_access_policy", "lms_user_id", "course_run_key", "content_price_cents", "wait_to_redeem")
RESULT_FIELDS = ("state", "redeemed_at", "transaction_uuid", "errored_at", "error_reason", "error_message",
                 "error_status", "error_code", "error_payload", "traceback")
RECORD_FIELDS = ("uuid", "policy_link", "attempts_link", "created_by", "created", "modified_by", "modified")


class StateFilter(admin.SimpleListFilter):
    """Waiting (never ran, or ran and must be forced again), redeemed, or errored on its last run."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return (("waiting", "Waiting"), ("redeemed", "Redeemed"), ("errored", "Errored"))

    def queryset(self, request, queryset):
        value = self.value()
        if value == "redeemed":
            return queryset.filter(redeemed_at__isnull=False)
        if value == "errored":
            return queryset.filter(redeemed_at__isnull=True, errored_at__isnull=False)
        if value == "waiting":
            return queryset.filter(redeemed_at__isnull=True, errored_at__isnull=True)
        return queryset


def report(request, record: ForcedPolicyRedemption, result) -> None:
    """Tell the staff member what one forcing came to, at the matching message level."""
    if result.succeeded:
        if result.already_redeemed:
            text = (f"{record} was already redeemed (transaction {record.transaction_uuid}); "
                    "nothing was redeemed again.")
            messages.warning(request, text)
        else:
            messages.success(request, f"{record} redeemed: transaction {record.transaction_uuid}.")
        return
    if record.redeemed_at is None and record.errored_at is None:
        # Nothing was stored (another forcing of this record was still running).
        messages.warning(request, f"{record} was not forced: {result.error_message}")
        return
    messages.error(request, f"{record} did not redeem: {record.error_message}")


@admin.register(ForcedPolicyRedemption)
class ForcedPolicyRedemptionAdmin(ReadOnlyHistoryAdmin):
    """
    Forced redemptions. Anyone on staff may look; only holders of ``force_redemption`` may add or force.

    This is a powerful tool: it spends an enterprise's learner credit and skips the enrollment deadline.
    """

    list_display = ("uuid", "state", "policy_link", "lms_user_id", "course_run_key", "content_price_cents",
                    "wait_to_redeem", "redeemed_at", "errored_at", "attempts_link", "created_by", "modified")
    list_filter = (StateFilter, "subsidy_access_policy", "lms_user_id", "course_run_key")
    search_fields = ("uuid", "subsidy_access_policy__uuid", "lms_user_id", "course_run_key")
    search_help_text = "A record's uuid, a policy uuid, an LMS user id, or (part of) a course run key."
    raw_id_fields = ("subsidy_access_policy",)
    list_select_related = ("subsidy_access_policy", "created_by")
    ordering = ("-created",)
    actions = ("force_redemption_action",)
    fieldsets = (
        ("Redeem", {
            "fields": INPUT_FIELDS,
            "description": ("Use with caution: this spends the enterprise's learner credit and enrolls the learner "
                            "even after the run's enrollment deadline. Every other rule of the policy still holds. "
                            "Executive education content cannot be forced."),
        }),
        ("Result", {"fields": RESULT_FIELDS}),
        ("Record", {"fields": RECORD_FIELDS}),
    )
    add_fieldsets = (fieldsets[0],)

    # ----- permissions ------------------------------------------------------------------------------

    def has_force_permission(self, request) -> bool:
        return request.user.is_active and request.user.has_perm(FORCE_PERMISSION)

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_add_permission(self, request):
        return self.has_force_permission(request)

    def has_change_permission(self, request, obj=None):
        return self.has_force_permission(request)

    def has_delete_permission(self, request, obj=None):
        # The record is the audit trail of money spent by hand: it stays.
        return False

    # ----- form -------------------------------------------------------------------------------------

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and (obj.redeemed_at is not None or obj.run_started_at is not None):
            return INPUT_FIELDS + RESULT_FIELDS + RECORD_FIELDS  # a redeemed or running record does not change
        return RESULT_FIELDS + RECORD_FIELDS

    @admin.display(description="state")
    def state(self, obj):
        return obj.state

    @admin.display(description="policy", ordering="subsidy_access_policy__display_name")
    def policy_link(self, obj):
        policy = obj.subsidy_access_policy
        url = reverse("admin:subsidy_access_policy_subsidyaccesspolicy_change", args=[policy.pk])
        return format_html('<a href="{}">{}</a>', url, policy.display_name or policy.uuid)

    @admin.display(description="attempts")
    def attempts_link(self, obj):
        if obj.pk is None:
            return "-"
        try:
            url = reverse("admin:subsidy_access_policy_redemptionattempt_changelist")
        except NoReverseMatch:  # the attempts admin is not installed
            return "-"
        return format_html('<a href="{}?forced_redemption__uuid__exact={}">attempts</a>', url, obj.pk)

    def get_search_results(self, request, queryset, search_term):
        """Exact matches on uuids and the user id (no text scans of uuid columns), substring on the run key."""
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            as_uuid = UUID(term)
        except ValueError:
            as_uuid = None
        if as_uuid is not None:
            return queryset.filter(uuid=as_uuid) | queryset.filter(subsidy_access_policy__uuid=as_uuid), False
        if term.isdigit():
            return queryset.filter(lms_user_id=int(term)) | queryset.filter(course_run_key__icontains=term), False
        return queryset.filter(course_run_key__icontains=term), False

    # ----- saving redeems ---------------------------------------------------------------------------

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        obj.modified_by = request.user
        super().save_model(request, obj, form, change)
        if not obj.wait_to_redeem and obj.redeemed_at is None:
            # After the admin's transaction commits, still before the response stores its messages.
            transaction.on_commit(lambda: self._force_and_report(request, obj))

    def _force_and_report(self, request, obj):
        result = force_redemption(forced_redemption=obj, acting_user=request.user)
        report(request, obj, result)

    # ----- the action -------------------------------------------------------------------------------

    @admin.action(description="Force redemption", permissions=["force"])
    def force_redemption_action(self, request, queryset):
        """Confirm, then force each selected record that has not redeemed, reporting on each."""
        if not self.has_force_permission(request):  # the permissions= check guards the list; be explicit anyway
            self.message_user(request, "You do not have permission to force redemptions.", messages.ERROR)
            return None
        records = list(queryset.select_related("subsidy_access_policy").order_by("created"))
        to_force = [record for record in records if record.redeemed_at is None]
        skipped = [record for record in records if record.redeemed_at is not None]
        if request.POST.get("post") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": "Force redemption: are you sure?",
                "opts": self.model._meta,
                "to_force": to_force,
                "in_background": len(to_force) > settings.BULK_FORCING_INLINE_MAX,
                "skipped": skipped,
                "selected": records,
                "action_name": "force_redemption_action",
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                "media": self.media,
            }
            request.current_app = self.admin_site.name
            return TemplateResponse(
                request, "admin/subsidy_access_policy/forcedpolicyredemption/force_redemption_confirmation.html",
                context,
            )
        if len(to_force) > settings.BULK_FORCING_INLINE_MAX:
            # Too many to force within one request: a background job forces them (decision record 0019).
            job = start_bulk_forcing(records=to_force, acting_user=request.user)
            messages.success(request, f"{len(to_force)} records are being forced in the background"
                                      f"{f' ({len(skipped)} already redeemed, skipped)' if skipped else ''}.")
            return HttpResponseRedirect(reverse("admin:subsidy_access_policy_bulkforcingjob_change", args=[job.pk]))
        for record in skipped:
            messages.info(request, f"{record} was already redeemed (transaction {record.transaction_uuid}); skipped.")
        for record in to_force:
            report(request, record, force_redemption(forced_redemption=record, acting_user=request.user))
        return None
