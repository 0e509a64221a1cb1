"""
Admin of forced redemptions: staff push one learner into one course run under a policy (decision records 0006, 0018).

Nothing here spends on a plain save. "Save and redeem…" saves the record and leads to its confirmation page
(``<pk>/redeem/``), which shows the learner, the run, the policy's remaining balance and the price the subsidy will
charge; only its "Yes, redeem" (a POST by a holder of ``force_redemption``) hands off to
``forcing.force_redemption``. "Save without redeeming" is the seed's wait-to-redeem. A record's inputs are frozen
once it has run and while a run holds it: a stale form is refused on the server, and trying other inputs means
a new record ("Copy into a new record").

Executive-education content needs the learner's details (``geag_*``). The forms ask for them; they travel only in
the redeem metadata (and in the confirmation page the staff member is looking at), never onto the record, its
history, the session or a message.
"""
from urllib.parse import urlencode
from uuid import UUID

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import OperationalError, router, transaction
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.views.decorators.debug import sensitive_post_parameters

from enterprise_access.apps.api_client.exceptions import UpstreamAPIError
from enterprise_access.apps.core.databases import lock_row
from enterprise_access.apps.core.history_admin import ReadOnlyHistoryAdmin

from ..bulk_forcing import start_bulk_forcing
from ..forcing import (
    CODE_FORCING_INPUTS_CHANGED,
    force_redemption,
    inputs_digest,
    inputs_of,
    preview_forcing,
)
from ..models import AssignedLearnerCreditAccessPolicy, ForcedPolicyRedemption
from ..redemption import exec_ed_required_keys
from .forced_redemption_forms import (
    EXEC_ED_FIELDS,
    INPUT_FIELDS,
    ExecEdDetailsForm,
    ForcedRedemptionForm,
    RecordMovedOn,
    money,
    refusal_to_edit,
    summary_rows,
)

FORCE_PERMISSION = "subsidy_access_policy.force_redemption"
RESULT_FIELDS = ("state", "redeemed_at", "transaction_uuid", "errored_at", "error_reason", "error_message",
                 "error_status", "error_code", "error_payload", "traceback")
RECORD_FIELDS = ("uuid", "wait_to_redeem", "policy_link", "attempts_link", "created_by", "created", "modified_by",
                 "modified")
# The buttons of the add and change forms: the default one (Enter) leads to the confirmation; this one only saves.
SAVE_WAITING = "_save_waiting"
# The version of the record a change form was opened on (its ``modified``): a form from an older version is stale.
LOADED_VERSION = "_loaded_version"
# The confirmation form: the fingerprint of the inputs it showed, and its "Yes, redeem" button.
CONFIRMED_INPUTS = "_confirmed_inputs"
REDEEM_BUTTON = "_redeem"
# "Copy into a new record": the add form's query names the record it copies (shown, never saved).
COPIED_FROM = "copied_from"


class StaffSeeForcersAct:
    """Admin permissions of the forcing pages: any active staff member may look; holders of
    ``force_redemption`` may act."""

    def has_force_permission(self, request) -> bool:
        return request.user.is_active and request.user.has_perm(FORCE_PERMISSION)

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff


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
    if result.code == CODE_FORCING_INPUTS_CHANGED or (record.redeemed_at is None and record.errored_at is None):
        # Nothing ran (another forcing of this record was still running, or its inputs changed meanwhile).
        messages.warning(request, f"{record} was not forced: {result.error_message}")
        return
    messages.error(request, f"{record} did not redeem: {record.error_message}")


@admin.register(ForcedPolicyRedemption)
class ForcedPolicyRedemptionAdmin(StaffSeeForcersAct, ReadOnlyHistoryAdmin):
    """
    Forced redemptions. Anyone on staff may look; only holders of ``force_redemption`` may add or force.

    This is a powerful tool: it spends an enterprise's learner credit and skips the enrollment deadline.
    """

    form = ForcedRedemptionForm
    change_form_template = "admin/subsidy_access_policy/forcedpolicyredemption/change_form.html"
    list_display = ("uuid", "state", "policy_link", "lms_user_id", "course_run_key", "content_price_cents",
                    "wait_to_redeem", "redeemed_at", "errored_at", "attempts_link", "created_by", "modified")
    list_filter = (StateFilter, "subsidy_access_policy", "lms_user_id", "course_run_key")
    search_fields = ("uuid", "subsidy_access_policy__uuid", "lms_user_id", "course_run_key")
    search_help_text = "A record's uuid, a policy uuid, an LMS user id, or (part of) a course run key."
    raw_id_fields = ("subsidy_access_policy",)
    list_select_related = ("subsidy_access_policy", "created_by")
    ordering = ("-created",)
    actions = ("force_redemption_action",)
    redeem_fieldset = ("Redeem", {
        "fields": INPUT_FIELDS,
        "description": ("Use with caution: this spends the enterprise's learner credit and enrolls the learner even "
                        "after the run's enrollment deadline. Every other rule of the policy still holds. \"Save and "
                        "redeem…\" shows what will be charged and asks you to confirm; nothing is spent before you "
                        "do. Once a record has run, its inputs stay as they ran."),
    })
    frozen_fieldset = ("What it redeems", {
        "fields": INPUT_FIELDS,
        "description": ("These inputs stay as they ran (or as the running forcing took them). To redeem other inputs, "
                        "use \"Copy into a new record\"."),
    })
    exec_ed_fieldset = ("Executive education only: the learner's details", {
        "fields": EXEC_ED_FIELDS,
        "classes": ("exec-ed-details",),
        "description": ("Executive education (2U) runs are fulfilled outside the LMS, and the subsidy service needs "
                        "these details to do it. Leave them empty for other content. They are sent with the "
                        "redemption and never stored here."),
    })
    fieldsets = (
        redeem_fieldset,
        ("Result", {"fields": RESULT_FIELDS}),
        ("Record", {"fields": RECORD_FIELDS}),
    )

    # ----- permissions ------------------------------------------------------------------------------

    def has_add_permission(self, request):
        return self.has_force_permission(request)

    def has_change_permission(self, request, obj=None):
        return self.has_force_permission(request)

    def has_delete_permission(self, request, obj=None):
        # The record is the audit trail of money spent by hand: it stays.
        return False

    # ----- form -------------------------------------------------------------------------------------

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return (self.redeem_fieldset, self.exec_ed_fieldset)
        if obj.state == "waiting" and self.has_force_permission(request):
            return (self.redeem_fieldset, self.exec_ed_fieldset) + self.fieldsets[1:]
        if obj.state != "waiting":
            return (self.frozen_fieldset,) + self.fieldsets[1:]
        return self.fieldsets

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.state != "waiting":
            return INPUT_FIELDS + RESULT_FIELDS + RECORD_FIELDS  # it has run, or a run holds it: nothing changes
        return RESULT_FIELDS + RECORD_FIELDS

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        attrs = {"redeem_requested": request.method == "POST" and SAVE_WAITING not in request.POST}
        if self.exec_ed_fieldset not in self.get_fieldsets(request, obj):
            attrs.update(dict.fromkeys(EXEC_ED_FIELDS))  # a record that ran (or a viewer) is asked for nothing
        return type(form.__name__, (form,), attrs)

    def get_changeform_initial_data(self, request):
        """A copy of a record prefills the add form (see ``copy_url``); the learner's details are never copied."""
        initial = super().get_changeform_initial_data(request)
        return {key: value for key, value in initial.items() if key in INPUT_FIELDS}

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        may_force = self.has_force_permission(request)
        context.update({
            "may_force": may_force,
            "record_state": obj.state if obj is not None else "",
            "loaded_version": obj.modified.isoformat() if obj is not None else "",
            "loaded_version_name": LOADED_VERSION,
            "save_waiting_name": SAVE_WAITING,
            "redeem_url": self.redeem_url(obj) if obj is not None else "",
            "copy_url": self.copy_url(obj) if obj is not None and may_force else "",
            "copied_from": request.GET.get(COPIED_FROM, "")[:64] if add else "",
        })
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def redeem_url(self, obj) -> str:
        return reverse("admin:subsidy_access_policy_forcedpolicyredemption_redeem", args=[obj.pk])

    def change_url(self, obj) -> str:
        return reverse("admin:subsidy_access_policy_forcedpolicyredemption_change", args=[obj.pk])

    def copy_url(self, obj) -> str:
        """The add form prefilled with this record's inputs (the price only where the policy takes one)."""
        params = {"subsidy_access_policy": str(obj.subsidy_access_policy_id), "lms_user_id": obj.lms_user_id,
                  "course_run_key": obj.course_run_key, COPIED_FROM: str(obj.pk)}
        if isinstance(obj.subsidy_access_policy, AssignedLearnerCreditAccessPolicy) and obj.content_price_cents:
            params["content_price_cents"] = obj.content_price_cents
        return reverse("admin:subsidy_access_policy_forcedpolicyredemption_add") + "?" + urlencode(params)

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

    # ----- saving: never spends; inputs frozen once run --------------------------------------------

    @method_decorator(sensitive_post_parameters(*EXEC_ED_FIELDS))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """A change posted for a record that has run, is running, or changed since the form opened is refused."""
        if request.method == "POST" and object_id is not None and self.has_force_permission(request):
            record = self.get_object(request, unquote(object_id))
            if record is not None:
                refusal = refusal_to_edit(record, request.POST.get(LOADED_VERSION))
                if refusal:
                    messages.error(request, refusal)
                    return HttpResponseRedirect(self.change_url(record))
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except RecordMovedOn as refusal:
            messages.error(request, str(refusal))
            return HttpResponseRedirect(self.change_url(ForcedPolicyRedemption(pk=unquote(object_id))))

    def save_model(self, request, obj, form, change):
        obj.modified_by = request.user
        obj.wait_to_redeem = SAVE_WAITING in request.POST
        # Kept for the response only (never on the record, the session or a message): see response_add.
        request.forced_exec_ed_details = getattr(form, "exec_ed_details", {})
        if not change:
            obj.created_by = request.user
            obj.save()
            return
        # Re-read the row under a lock: a run may have claimed it since the form was checked. The save writes the
        # inputs only, never the run's fields.
        try:
            with transaction.atomic(using=router.db_for_write(ForcedPolicyRedemption)):
                current = lock_row(ForcedPolicyRedemption, obj.pk, router.db_for_write(ForcedPolicyRedemption))
        except OperationalError as exc:  # SQLite: a claim committed since this request first read the database
            raise RecordMovedOn(f"{obj} changed while your change was being saved: nothing was saved. This is "
                                "its current version.") from exc
        refusal = refusal_to_edit(current, request.POST.get(LOADED_VERSION)) if current else "It no longer exists."
        if refusal:
            raise RecordMovedOn(refusal)
        obj.save(update_fields=[*INPUT_FIELDS, "wait_to_redeem", "modified_by", "modified"])

    def response_add(self, request, obj, post_url_continue=None):
        return self._after_save(request, obj, added=True)

    def response_change(self, request, obj):
        return self._after_save(request, obj, added=False)

    def _after_save(self, request, obj, *, added):
        details = getattr(request, "forced_exec_ed_details", {}) or {}
        verb = "saved" if added else "changed"
        if SAVE_WAITING in request.POST:
            messages.success(request, f"{obj} {verb} without redeeming: nothing was spent. Redeem it from its page "
                                      "(\"Redeem…\") or with the \"Force redemption\" action.")
            if any(request.POST.get(key) for key in EXEC_ED_FIELDS):
                messages.info(request, "The learner's details you entered were not kept (they never are): enter "
                                       "them again when you redeem.")
            return HttpResponseRedirect(self.change_url(obj))
        messages.info(request, f"{obj} {verb}; confirm below to redeem it. Nothing has been spent yet.")
        if not details and any(request.POST.get(key) for key in EXEC_ED_FIELDS):
            messages.info(request, "This content is not executive education: the learner's details you entered "
                                   "are not needed, and were not kept.")
        if details:
            # The details cannot travel through a redirect without being stored: show the confirmation now.
            return self.confirmation_response(request, obj, ExecEdDetailsForm(initial=details), replace_url=True)
        return HttpResponseRedirect(self.redeem_url(obj))

    # ----- the confirmation page: GET shows, only POST "Yes, redeem" spends ---------------------------------

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        own = [path("<path:object_id>/redeem/", self.admin_site.admin_view(self.redeem_view),
                    name="%s_%s_redeem" % info)]
        return own + super().get_urls()

    @method_decorator(sensitive_post_parameters(*EXEC_ED_FIELDS))
    def redeem_view(self, request, object_id):
        if request.method not in ("GET", "HEAD", "POST"):
            return HttpResponseNotAllowed(["GET", "HEAD", "POST"])
        record = self.get_object(request, unquote(object_id))
        if record is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, record):
            raise PermissionDenied
        if request.method != "POST":
            return self.confirmation_response(request, record, ExecEdDetailsForm())
        if not self.has_force_permission(request):
            raise PermissionDenied
        return self._confirmed(request, record)

    def _confirmed(self, request, record):
        """'Yes, redeem': re-check the state and the inputs shown, then force exactly those."""
        if record.redeemed_at is not None:
            messages.warning(request, f"{record} was already redeemed (transaction {record.transaction_uuid}); "
                                      "nothing was redeemed again.")
            return HttpResponseRedirect(self.change_url(record))
        if record.run_started_at is not None:
            messages.warning(request, f"{record} is being forced right now (another tab, or another staff member); "
                                      "nothing more was started. Reload in a moment to see its result.")
            return HttpResponseRedirect(self.change_url(record))
        if request.POST.get(CONFIRMED_INPUTS) != inputs_digest(record):
            messages.error(request, f"{record} changed since this confirmation was shown: nothing was redeemed. "
                                    "Check what it will do now, and confirm again.")
            return HttpResponseRedirect(self.redeem_url(record))
        confirmed = inputs_of(record)
        details_form = ExecEdDetailsForm(request.POST)
        policy = record.subsidy_access_policy
        try:
            required = exec_ed_required_keys(policy, policy.content_metadata(record.course_run_key))
        except UpstreamAPIError:
            required = ()  # the run reads the same, fails on the same outage and records it: nothing is spent
        metadata = None
        if required:
            # Only exec-ed content takes details, and only the ones its fulfillment requires travel.
            metadata = details_form.check_required(required) if details_form.is_valid() else None
            if metadata is None:
                return self.confirmation_response(request, record, details_form)
        result = force_redemption(forced_redemption=record, acting_user=request.user, metadata=metadata,
                                  confirmed_inputs=confirmed)
        report(request, record, result)
        return HttpResponseRedirect(self.change_url(record))

    def confirmation_response(self, request, record, details_form, *, replace_url=False):
        """The confirmation page for ``record`` (what forcing it would do), read only."""
        may_force = self.has_force_permission(request)
        preview = preview_forcing(record) if record.state in ("waiting", "errored") else None
        context = {
            **self.admin_site.each_context(request),
            "title": "Redeem this forced redemption?",
            "subtitle": None,
            "opts": self.opts,
            "original": record,
            "record": record,
            "preview": preview,
            "may_force": may_force,
            "details_form": details_form,
            "summary": summary_rows(preview) if preview is not None else [],
            "price_text": money(preview.price_cents) if preview is not None else "",
            "exec_ed_fields": [details_form[name] for name in EXEC_ED_FIELDS
                               if preview is not None and name in preview.exec_ed_keys],
            "confirmed_inputs_name": CONFIRMED_INPUTS,
            "confirmed_inputs": inputs_digest(record),
            "redeem_button_name": REDEEM_BUTTON,
            "change_url": self.change_url(record),
            "redeem_url": self.redeem_url(record),
            "copy_url": self.copy_url(record) if may_force else "",
            "replace_url": replace_url,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request, "admin/subsidy_access_policy/forcedpolicyredemption/redeem_confirmation.html", context)

    # ----- the action -------------------------------------------------------------------------------

    @admin.action(description="Force redemption", permissions=["force"])
    def force_redemption_action(self, request, queryset):
        """
        Confirm, then force each selected record that has not redeemed, reporting on each.

        The confirmation carries each listed record's inputs fingerprint; "Yes" forces a record only with the inputs
        it showed. A record changed since (another tab, another staff member), or one the confirmation did not list,
        is refused and nothing is spent on it.
        """
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
                "confirmed_inputs": [(f"{CONFIRMED_INPUTS}_{record.pk}", inputs_digest(record))
                                     for record in to_force],
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
        for record in skipped:
            messages.info(request, f"{record} was already redeemed (transaction {record.transaction_uuid}); skipped.")
        confirmed, changed, shown = [], [], {}
        for record in to_force:
            shown[record.pk] = request.POST.get(f"{CONFIRMED_INPUTS}_{record.pk}", "")
            (confirmed if shown[record.pk] == inputs_digest(record) else changed).append(record)
        for record in changed:
            messages.warning(request, f"{record} was not forced: it changed since the confirmation was shown (in "
                                      "another tab, or by another staff member), or that confirmation did not list "
                                      "it. Nothing was redeemed for it. Review it and force it again.")
        if len(to_force) > settings.BULK_FORCING_INLINE_MAX:
            # Too many to force within one request: a background job forces them (decision record 0019), each row
            # with the inputs fingerprint its confirmation showed.
            if not confirmed:
                return None
            job = start_bulk_forcing(records=confirmed, acting_user=request.user,
                                     confirmed_digests={record.pk: shown[record.pk] for record in confirmed})
            messages.success(request, f"{len(confirmed)} records are being forced in the background"
                                      f"{f' ({len(skipped)} already redeemed, skipped)' if skipped else ''}.")
            return HttpResponseRedirect(reverse("admin:subsidy_access_policy_bulkforcingjob_change", args=[job.pk]))
        for record in confirmed:
            # The claim insists on the inputs just compared with the confirmation: an edit in between is refused.
            report(request, record, force_redemption(forced_redemption=record, acting_user=request.user,
                                                     confirmed_inputs=inputs_of(record)))
        return None
