"""
The forms of the forced-redemption admin, and what its confirmation page shows (decision record 0018).

``ForcedRedemptionForm`` is the add and change form: the record's inputs, and for executive education content the
learner's details, which are form fields only (never model fields, so never saved). ``ExecEdDetailsForm`` asks for
those details again on a record's confirmation page. ``refusal_to_edit`` says why a posted change must not be saved
(the record ran, runs, or changed since the form was opened); ``summary_rows`` lays out a ``ForcingPreview``.
"""
from datetime import timezone as dt_timezone

from django import forms
from django.utils import timezone

from enterprise_access.apps.api_client.exceptions import UpstreamAPIError

from .. import constants as c
from ..models import AssignedLearnerCreditAccessPolicy, ForcedPolicyRedemption
from ..redemption import exec_ed_required_keys

INPUT_FIELDS = ("subsidy_access_policy", "lms_user_id", "course_run_key", "content_price_cents")
EXEC_ED_FIELDS = (*c.EXEC_ED_REQUIRED_METADATA, c.EXEC_ED_DATA_SHARE_CONSENT)


class ExecEdDetailsForm(forms.Form):
    """
    The learner details executive-education fulfillment needs (contract 5.5). Every field is optional here: which
    are required depends on the content and the customer, decided by ``missing``.
    """

    geag_first_name = forms.CharField(label="Learner's first name", max_length=255, required=False)
    geag_last_name = forms.CharField(label="Learner's last name", max_length=255, required=False)
    geag_email = forms.EmailField(label="Learner's email", required=False)
    geag_date_of_birth = forms.DateField(label="Date of birth", required=False,
                                         widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    geag_terms_accepted_at = forms.DateTimeField(
        label="Terms accepted at (UTC)", required=False, input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S",
                                                                        "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="When the learner accepted the executive education terms.")
    geag_data_share_consent = forms.BooleanField(
        label="Data-sharing consent", required=False,
        help_text="Tick if the learner consented to share their data. Required only when the enterprise asks its "
                  "learners for data-sharing consent.")

    LABELS = {
        "geag_first_name": "first name", "geag_last_name": "last name", "geag_email": "email",
        "geag_date_of_birth": "date of birth", "geag_terms_accepted_at": "when the terms were accepted",
        c.EXEC_ED_DATA_SHARE_CONSENT: "consent to data sharing",
    }

    def clean_geag_date_of_birth(self):
        born = self.cleaned_data.get("geag_date_of_birth")
        if born is not None and born >= timezone.now().date():
            raise forms.ValidationError("A date of birth is in the past: check the year.")
        return born

    def given_details(self) -> dict:
        """The details entered (cleaned), as the redeem metadata carries them; empty ones left out."""
        details = {}
        for key in EXEC_ED_FIELDS:
            value = self.cleaned_data.get(key)
            if value in (None, "", False):
                continue
            if key == "geag_date_of_birth":
                value = value.isoformat()
            elif key == "geag_terms_accepted_at":
                value = value.astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            elif key == c.EXEC_ED_DATA_SHARE_CONSENT:
                value = True
            else:
                value = value.strip()
            details[key] = value
        return details

    def check_required(self, required_keys) -> dict | None:
        """
        The metadata for ``required_keys`` (only those), or None after adding an error that names what is missing.
        Call after ``is_valid()``.
        """
        details = self.given_details()
        missing = [key for key in required_keys if key not in details]
        if missing:
            for key in missing:
                if key not in self.errors:
                    self.add_error(key, "Required for executive education content.")
            self.add_error(None, "This is executive education content: the subsidy service needs the learner's "
                                 "details to fulfil it. Missing: "
                                 + ", ".join(self.LABELS.get(key, key) for key in missing) + ".")
            return None
        return {key: details[key] for key in required_keys}


class ForcedRedemptionForm(forms.ModelForm, ExecEdDetailsForm):
    """
    The add and change form. On "Save and redeem…" for executive education content it also asks for the learner's
    details (they are not model fields: the form never saves them).
    """

    redeem_requested = False  # set per request by the admin: which button was pressed

    class Meta:
        model = ForcedPolicyRedemption
        fields = INPUT_FIELDS

    def clean(self):
        cleaned = super().clean()
        self.exec_ed_details = {}
        policy, run_key = cleaned.get("subsidy_access_policy"), cleaned.get("course_run_key")
        if not self.redeem_requested or policy is None or not run_key or self.errors:
            return cleaned
        try:
            required = exec_ed_required_keys(policy, policy.content_metadata(run_key))
        except UpstreamAPIError:
            # Whether it is exec-ed cannot be told now: the confirmation page asks again before anything is spent.
            return cleaned
        if required and self.check_required(required) is not None:
            # What the confirmation page shows again (as entered, for its inputs): only the details required.
            self.exec_ed_details = {key: cleaned[key] for key in required}
        return cleaned


def money(cents) -> str:
    """USD cents as dollars, e.g. 19900 -> "$199.00"."""
    if cents is None:
        return "unknown"
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) / 100:,.2f}"


def _date(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "not given"


def summary_rows(preview) -> list:
    """The confirmation page's table: what forcing the record would do, each row with the notes staff must read."""
    record, content = preview.record, preview.content or {}
    policy = record.subsidy_access_policy
    rows = []
    learner_notes = [preview.learner_note] if preview.learner_note else []
    rows.append({"key": "learner", "label": "Learner", "value": preview.learner_email or "email unknown",
                 "detail": f"LMS user id {record.lms_user_id}", "notes": learner_notes})
    run_notes = [preview.content_note] if preview.content_note else []
    if preview.past_enroll_by:
        run_notes.append("Its enrollment deadline has passed: forcing enrolls the learner anyway.")
    if preview.exec_ed:
        run_notes.append("Executive education content: the learner's details below are required.")
    if preview.exec_ed_note:
        run_notes.append(preview.exec_ed_note)
    rows.append({"key": "run", "label": "Course run", "value": content.get("content_title") or record.course_run_key,
                 "detail": record.course_run_key if content.get("content_title") else "", "notes": run_notes})
    if content:
        rows.append({"key": "dates", "label": "Dates",
                     "value": f"starts {_date(preview.run_start)}; enroll by {_date(preview.enroll_by)}",
                     "detail": "", "notes": []})
    balance_notes = [preview.balance_note] if preview.balance_note else []
    if preview.remaining_cents is not None:
        parts = [f"subsidy balance {money(preview.subsidy_balance_cents)}"]
        if policy.spend_limit is not None:
            parts.append(f"policy limit {money(policy.spend_limit)}, of which {money(preview.policy_used_cents)} is "
                         "spent or set aside")
        balance_detail = "(" + "; ".join(parts) + ")"
        balance_value = f"{money(preview.remaining_cents)} remaining"
    else:
        balance_detail, balance_value = "", "remaining balance unknown"
    rows.append({"key": "policy", "label": "Policy", "value": policy.display_name or str(policy.uuid),
                 "detail": str(policy.uuid), "notes": []})
    rows.append({"key": "balance", "label": "Remaining balance", "value": balance_value, "detail": balance_detail,
                 "notes": balance_notes})
    price_notes = [preview.price_note] if preview.price_note else []
    if preview.guard_reason:
        price_notes.append(f"The redemption would be refused now ({preview.guard_reason}): "
                           + c.REASON_USER_MESSAGES.get(preview.guard_reason, "").split(" {")[0])
    if isinstance(policy, AssignedLearnerCreditAccessPolicy):
        how = "the assignment's price, allocated to the learner first"
    else:
        how = "the catalog price"
    rows.append({"key": "price", "label": "Price to be charged", "value": money(preview.price_cents),
                 "detail": f"({how})" if preview.price_cents is not None else "", "notes": price_notes})
    return rows


class RecordMovedOn(Exception):
    """The record changed (ran, or was edited elsewhere) between opening a form and saving it: nothing is saved."""


def refusal_to_edit(record, loaded_version) -> str:
    """Why a change form posted for ``record`` must not be saved, or "" when it may."""
    if record.redeemed_at is not None:
        return (f"{record} has redeemed (transaction {record.transaction_uuid}): its inputs cannot change, and "
                "nothing you entered was saved. To redeem other inputs, use \"Copy into a new record\".")
    if record.run_started_at is not None:
        return (f"{record} is being forced right now: its inputs cannot change while the run holds it, and nothing "
                "you entered was saved. Reload in a moment to see its result.")
    if record.errored_at is not None:
        return (f"{record} has run and failed: its inputs stay as they ran, and nothing you entered was saved. "
                "Redeem it again as it is, or use \"Copy into a new record\" to try other inputs.")
    if loaded_version != record.modified.isoformat():
        return (f"{record} changed since you opened it (in another tab, or by another staff member): nothing you "
                "entered was saved. This is its current version; make your change again if it is still needed.")
    return ""
