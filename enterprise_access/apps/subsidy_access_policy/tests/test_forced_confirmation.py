"""
The forced-redemption confirmation page and what guards it (issue 13; decision 0018): showing it never spends; only
"Yes, redeem" by a holder of force_redemption does, once, for the inputs it showed; a record's inputs are frozen
once it has run and while a run holds it, whatever a stale tab posts; exec-ed content needs the learner's details,
which are never stored.
"""
import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from enterprise_access.apps.subsidy_access_policy import constants as c
from enterprise_access.apps.subsidy_access_policy.admin import forced_redemption as forced_admin
from enterprise_access.apps.subsidy_access_policy.models import ForcedPolicyRedemption, RedemptionAttempt
from enterprise_access.devtools.testing import build_world_policy, run_concurrently

from .factories import ForcedRedemptionFactory
from .test_forced_admin import (  # noqa: F401 (forcer is a fixture)
    ADD_URL,
    add_form,
    change_url,
    confirm,
    forcer,
    redeem_url,
    staff_user,
    subsidy_creates,
    texts,
)

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "independent"])

DETAILS = {"geag_first_name": "Patricia", "geag_last_name": "Leeworth", "geag_email": "patricia.private@mail.example",
           "geag_date_of_birth": "1990-04-01", "geag_terms_accepted_at": "2026-11-01T10:00"}
SECRETS = ("Patricia", "Leeworth", "patricia.private@mail.example", "1990-04-01")


def waiting(upstream, *, run=None, policy=None, **fields):
    return ForcedRedemptionFactory(subsidy_access_policy=policy or build_world_policy(),
                                   lms_user_id=upstream.learner["lms_user_id"], course_run_key=run or upstream.run,
                                   wait_to_redeem=True, **fields)


def change_form(record, **changes):
    """The change form of ``record`` as its page showed it (inputs and the version it was opened on)."""
    data = {"subsidy_access_policy": str(record.subsidy_access_policy_id), "lms_user_id": str(record.lms_user_id),
            "course_run_key": record.course_run_key, "content_price_cents": record.content_price_cents or "",
            "_loaded_version": record.modified.isoformat(), "_save_waiting": "Save without redeeming"}
    return {**data, **changes}


def nothing_spent(upstream):
    return not subsidy_creates(upstream) and not RedemptionAttempt.objects.exists()


# ----- the page shows, never spends -------------------------------------------------------------------------

@pytest.mark.parametrize("state", ["waiting", "errored", "redeemed", "running", "exec_ed_waiting"])
def test_showing_the_confirmation_never_spends(client, upstream, forcer, state):
    fields = {"errored": {"errored_at": "2026-01-01T00:00:00Z", "error_message": "subsidy_refused: no."},
              "redeemed": {"redeemed_at": "2026-01-01T00:00:00Z",
                           "transaction_uuid": "00000000-0000-4000-8000-000000000009"},
              "running": {"run_started_at": "2026-01-01T00:00:00Z"}}.get(state, {})
    record = waiting(upstream, run=upstream.exec_ed_run if state == "exec_ed_waiting" else None, **fields)
    page = client.get(redeem_url(record))
    assert page.status_code == 200
    html = page.content.decode()
    may_redeem = state in ("waiting", "errored", "exec_ed_waiting")
    assert ('name="_redeem"' in html) == may_redeem
    if may_redeem:
        assert upstream.learner["email"] in html and "remaining" in html
    if state == "exec_ed_waiting":
        assert 'name="geag_first_name"' in html and "$2,500.00" in html
    assert nothing_spent(upstream)
    ForcedPolicyRedemption.objects.get(pk=record.pk)  # unchanged state
    assert ForcedPolicyRedemption.objects.get(pk=record.pk).state == record.state


def test_the_page_names_what_it_shows(client, upstream, forcer):
    record = waiting(upstream)
    page = client.get(redeem_url(record))
    rows = {row["key"]: row for row in page.context["summary"]}
    assert rows["learner"]["value"] == upstream.learner["email"]
    assert rows["run"]["value"] == "Cooking for Engineers" and rows["run"]["detail"] == upstream.run
    assert rows["dates"]["value"].startswith("starts 2027-01-15")
    assert rows["price"]["value"] == "$199.00" and "catalog price" in rows["price"]["detail"]
    assert rows["policy"]["value"] == record.subsidy_access_policy.display_name
    assert rows["balance"]["value"].endswith("remaining")


def test_the_price_shown_is_the_assignments_for_an_assigned_policy(client, upstream, forcer):
    policy = build_world_policy("assigned")
    record = waiting(upstream, policy=policy, content_price_cents=18900)
    rows = {row["key"]: row for row in client.get(redeem_url(record)).context["summary"]}
    assert rows["price"]["value"] == "$189.00" and "assignment" in rows["price"]["detail"]
    confirm(client, record)
    record.refresh_from_db()
    assert record.state == "redeemed", record.error_message
    (tx,) = [t for t in upstream.control.transactions(upstream.subsidy_uuids["assigned"])
             if t["content_key"] == upstream.run and t["lms_user_id"] == upstream.learner["lms_user_id"]]
    assert tx["quantity"] == -18900  # what the page said is what was charged


def test_an_lms_that_cannot_answer_is_a_note_not_an_error(client, upstream, forcer):
    record = waiting(upstream)
    upstream.control.add_fault(service="lms", path="enterprise-learner", status=503)
    page = client.get(redeem_url(record))
    assert page.status_code == 200
    rows = {row["key"]: row for row in page.context["summary"]}
    assert rows["learner"]["value"] == "email unknown"
    assert "The LMS did not answer" in rows["learner"]["notes"][0]
    assert nothing_spent(upstream)


def test_a_learner_the_lms_does_not_know_is_said_before_spending(client, upstream, forcer):
    record = waiting(upstream)
    record.lms_user_id = upstream.unlinked_learner["lms_user_id"]
    record.save()
    rows = {row["key"]: row for row in client.get(redeem_url(record)).context["summary"]}
    assert c.REASON_LEARNER_NOT_IN_ENTERPRISE in rows["learner"]["notes"][0]


# ----- only "Yes, redeem", by someone who may, once ---------------------------------------------------------

def test_view_only_staff_see_the_page_but_cannot_redeem(client, upstream):
    record = waiting(upstream)
    client.force_login(staff_user(may_force=False))
    page = client.get(redeem_url(record))
    assert page.status_code == 200 and 'name="_redeem"' not in page.content.decode()
    response = client.post(redeem_url(record), {"_confirmed_inputs": page.context["confirmed_inputs"],
                                                "_redeem": "Yes"})
    assert response.status_code == 403
    assert nothing_spent(upstream)


def test_pressing_yes_twice_redeems_once(client, upstream, forcer):
    record = waiting(upstream)
    digest = client.get(redeem_url(record)).context["confirmed_inputs"]
    first = client.post(redeem_url(record), {"_confirmed_inputs": digest, "_redeem": "Yes"}, follow=True)
    second = client.post(redeem_url(record), {"_confirmed_inputs": digest, "_redeem": "Yes"}, follow=True)
    record.refresh_from_db()
    assert [level for level, _ in texts(first)] == ["success"]
    assert texts(second) == [("warning", f"{record} was already redeemed (transaction {record.transaction_uuid}); "
                                         "nothing was redeemed again.")]
    assert len(subsidy_creates(upstream)) == 1
    assert RedemptionAttempt.objects.filter(forced_redemption=record).count() == 1


def test_two_tabs_pressing_yes_at_once_redeem_once(upstream, forcer):
    record = waiting(upstream)
    tabs = [Client(), Client()]
    digests = []
    for tab in tabs:
        tab.force_login(forcer)
        digests.append(tab.get(redeem_url(record)).context["confirmed_inputs"])

    def press_yes(tab, digest):
        return tab.post(redeem_url(record), {"_confirmed_inputs": digest, "_redeem": "Yes"}).status_code

    assert run_concurrently(press_yes, list(zip(tabs, digests))) == [302, 302]
    record.refresh_from_db()
    assert record.state == "redeemed"
    assert len(subsidy_creates(upstream)) == 1
    assert RedemptionAttempt.objects.filter(forced_redemption=record).count() == 1


def test_yes_on_a_page_showing_other_inputs_redeems_nothing(client, upstream, forcer):
    record = waiting(upstream)
    digest = client.get(redeem_url(record)).context["confirmed_inputs"]
    ForcedPolicyRedemption.objects.filter(pk=record.pk).update(lms_user_id=103)  # another tab saved a change
    response = client.post(redeem_url(record), {"_confirmed_inputs": digest, "_redeem": "Yes"}, follow=True)
    assert response.redirect_chain[-1][0] == redeem_url(record)
    ((level, text),) = texts(response)
    assert level == "error" and "changed since this confirmation was shown: nothing was redeemed" in text
    assert nothing_spent(upstream)


def test_an_edit_landing_between_the_check_and_the_claim_stops_the_run(client, upstream, forcer, monkeypatch):
    """The claim itself insists on the confirmed inputs: an edit committed after the page's check runs nothing."""
    record = waiting(upstream)
    digest = client.get(redeem_url(record)).context["confirmed_inputs"]
    real_inputs_of = forced_admin.inputs_of

    def inputs_then_another_tab_saves(obj):
        confirmed = real_inputs_of(obj)
        ForcedPolicyRedemption.objects.filter(pk=obj.pk).update(lms_user_id=103)
        return confirmed

    monkeypatch.setattr(forced_admin, "inputs_of", inputs_then_another_tab_saves)
    response = client.post(redeem_url(record), {"_confirmed_inputs": digest, "_redeem": "Yes"}, follow=True)
    ((level, text),) = texts(response)
    assert level == "warning" and "inputs changed after they were confirmed" in text
    record.refresh_from_db()
    assert record.state == "waiting" and record.lms_user_id == 103
    assert nothing_spent(upstream)


# ----- frozen inputs ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("state", ["redeemed", "errored", "running"])
def test_a_stale_form_cannot_change_a_record_that_ran_or_runs(client, upstream, forcer, state):
    record = waiting(upstream)
    stale = change_form(record, lms_user_id="103", _save="Save and redeem…")  # tab 1 opened it while waiting
    if state == "redeemed":
        confirm(client, record)  # tab 2 redeemed it
    elif state == "errored":
        upstream.control.add_fault(service="subsidy", method="POST", path="admin/transactions", status=422,
                                   body={"detail": "Enrollment failed upstream.", "code": "enrollment_error"})
        confirm(client, record)
    else:
        ForcedPolicyRedemption.objects.filter(pk=record.pk).update(run_started_at="2026-01-01T00:00:00Z")
    before = ForcedPolicyRedemption.objects.get(pk=record.pk)
    assert before.state == state
    creates = len(subsidy_creates(upstream))

    response = client.post(change_url(record), stale, follow=True)
    ((level, text),) = texts(response)
    assert level == "error" and "nothing you entered was saved" in text
    after = ForcedPolicyRedemption.objects.get(pk=record.pk)
    assert after.lms_user_id == 101 and after.state == state and after.modified == before.modified
    assert after.history.count() == before.history.count()
    assert len(subsidy_creates(upstream)) == creates
    page = client.get(change_url(record))
    assert not page.context["adminform"].form.fields  # every input read-only
    assert 'name="_save"' not in page.content.decode() and 'name="_save_waiting"' not in page.content.decode()


def test_an_edit_from_a_tab_opened_on_an_older_version_is_refused(client, upstream, forcer):
    record = waiting(upstream)
    tab_1 = change_form(record, lms_user_id="102")
    tab_2 = change_form(record, content_price_cents="", lms_user_id="103")
    assert client.post(change_url(record), tab_2, follow=True).status_code == 200
    response = client.post(change_url(record), tab_1, follow=True)
    ((level, text),) = texts(response)
    assert level == "error" and "changed since you opened it" in text
    record.refresh_from_db()
    assert record.lms_user_id == 103


def test_a_run_claiming_the_record_while_a_change_is_saved_wins(client, upstream, forcer, monkeypatch):
    """The change re-reads the row under a lock before saving: a claim that slipped in after the first check wins."""
    record = waiting(upstream)
    real_refusal = forced_admin.refusal_to_edit
    calls = []

    def first_check_passes_then_a_run_claims(obj, version):
        calls.append(obj.pk)
        if len(calls) == 1:
            answer = real_refusal(obj, version)
            ForcedPolicyRedemption.objects.filter(pk=obj.pk).update(run_started_at="2026-01-01T00:00:00Z")
            return answer
        return real_refusal(obj, version)

    monkeypatch.setattr(forced_admin, "refusal_to_edit", first_check_passes_then_a_run_claims)
    response = client.post(change_url(record), change_form(record, lms_user_id="103"), follow=True)
    assert len(calls) == 2
    ((level, text),) = texts(response)
    assert level == "error" and "is being forced right now" in text and "nothing you entered was saved" in text
    record.refresh_from_db()
    assert record.lms_user_id == 101 and record.run_started_at is not None  # the run's claim stands


def test_a_waiting_record_may_still_change(client, upstream, forcer):
    record = waiting(upstream)
    response = client.post(change_url(record), change_form(record, lms_user_id="102"), follow=True)
    record.refresh_from_db()
    assert record.lms_user_id == 102 and record.modified_by == forcer and record.state == "waiting"
    assert [level for level, _ in texts(response)] == ["success"]


def test_copy_into_a_new_record_prefills_the_inputs(client, upstream, forcer):
    record = waiting(upstream)
    confirm(client, record)
    record.refresh_from_db()
    assert record.content_price_cents == 19900  # what was charged; this policy takes no price on the form
    html = client.get(change_url(record)).content.decode()
    copy = forced_admin.ForcedPolicyRedemptionAdmin.copy_url(None, record)
    assert copy.replace("&", "&amp;") in html and "content_price_cents" not in copy
    add_page = client.get(copy)
    assert f"A copy of forced redemption {record.pk}" in add_page.content.decode()
    form = add_page.context["adminform"].form
    assert form.initial["lms_user_id"] == str(record.lms_user_id)
    assert form.initial["course_run_key"] == record.course_run_key
    assert form.initial["subsidy_access_policy"] == str(record.subsidy_access_policy_id)


# ----- exec-ed: the learner's details, asked for and never kept ---------------------------------------------

def exec_ed_add(upstream, policy, **details):
    return {**add_form(upstream, policy, run=upstream.exec_ed_run), **details}


def test_exec_ed_without_the_details_is_refused_naming_what_is_missing(client, upstream, forcer):
    policy = build_world_policy()
    response = client.post(reverse(ADD_URL), exec_ed_add(upstream, policy, geag_first_name="Pat"))
    assert response.status_code == 200 and not ForcedPolicyRedemption.objects.exists()
    errors = response.context["adminform"].form.non_field_errors()
    assert errors == ["This is executive education content: the subsidy service needs the learner's details to fulfil "
                      "it. Missing: last name, email, date of birth, when the terms were accepted."]
    assert nothing_spent(upstream)


def test_exec_ed_details_travel_to_the_subsidy_and_are_kept_nowhere(client, upstream, forcer):
    policy = build_world_policy()
    page = client.post(reverse(ADD_URL), exec_ed_add(upstream, policy, **DETAILS))
    record = ForcedPolicyRedemption.objects.get()
    # The confirmation comes at once, carrying the details on the page (they cannot survive a redirect unstored).
    assert page.status_code == 200 and 'value="Leeworth"' in page.content.decode()
    assert nothing_spent(upstream)
    response = client.post(redeem_url(record), {"_confirmed_inputs": page.context["confirmed_inputs"],
                                                "_redeem": "Yes", **DETAILS}, follow=True)
    record.refresh_from_db()
    assert record.state == "redeemed", record.error_message
    (tx,) = [t for t in upstream.control.transactions(upstream.subsidy_uuid)
             if t["content_key"] == upstream.exec_ed_run]
    assert tx["metadata"]["geag_last_name"] == "Leeworth" and tx["metadata"]["geag_date_of_birth"] == "1990-04-01"
    assert tx["metadata"]["geag_terms_accepted_at"] == "2026-11-01T10:00:00Z"

    attempt = RedemptionAttempt.objects.get(forced_redemption=record)
    assert attempt.request_metadata == {**{key: "***" for key in DETAILS}, c.METADATA_ALLOW_LATE_ENROLLMENT: True}
    kept = [str(row.__dict__) for row in record.history.all()] + [str(record.__dict__), str(attempt.__dict__)]
    kept += [str(entry.__dict__) for entry in LogEntry.objects.all()]
    kept += [str(session.get_decoded()) for session in Session.objects.all()]
    kept += [text for _, text in texts(page)] + [text for _, text in texts(response)]
    assert not any(secret in text for secret in SECRETS for text in kept)


def test_a_waiting_exec_ed_record_asks_for_the_details_when_forced(client, upstream, forcer):
    record = waiting(upstream, run=upstream.exec_ed_run)
    page = client.get(redeem_url(record))
    digest = page.context["confirmed_inputs"]
    refused = client.post(redeem_url(record), {"_confirmed_inputs": digest, "_redeem": "Yes",
                                               "geag_first_name": "Pat"})
    assert refused.status_code == 200
    assert "Missing: last name, email, date of birth, when the terms were accepted." in refused.content.decode()
    assert nothing_spent(upstream)
    done = client.post(redeem_url(record), {"_confirmed_inputs": digest, "_redeem": "Yes", **DETAILS}, follow=True)
    record.refresh_from_db()
    assert record.state == "redeemed", record.error_message
    assert [level for level, _ in texts(done)] == ["success"]


def test_a_customer_that_asks_for_consent_needs_it(client, upstream, forcer):
    policy = build_world_policy()
    customer = {"uuid": upstream.customer_uuid, "name": "Demo Co", "enable_data_sharing_consent": True,
                "contact_email": "learning-admin@demo-co.example", "admin_users": []}
    upstream.control.add_fault(service="lms", method="GET", path="enterprise-customer/", status=200, body=customer)
    response = client.post(reverse(ADD_URL), exec_ed_add(upstream, policy, **DETAILS))
    assert response.status_code == 200 and not ForcedPolicyRedemption.objects.exists()
    assert "Missing: consent to data sharing." in response.content.decode()
    with_consent = client.post(reverse(ADD_URL), exec_ed_add(upstream, policy, geag_data_share_consent="on",
                                                             **DETAILS))
    assert with_consent.status_code == 200 and ForcedPolicyRedemption.objects.count() == 1
    assert 'name="geag_data_share_consent"' in with_consent.content.decode()


def test_details_typed_for_a_record_saved_without_redeeming_are_dropped_and_said_so(client, upstream, forcer):
    policy = build_world_policy()
    data = {**exec_ed_add(upstream, policy, **DETAILS), "_save_waiting": "Save without redeeming"}
    data.pop("_save")
    response = client.post(reverse(ADD_URL), data, follow=True)
    record = ForcedPolicyRedemption.objects.get()
    assert record.state == "waiting" and record.wait_to_redeem
    assert ("info", "The learner's details you entered were not kept (they never are): enter them again when you "
                    "redeem.") in texts(response)
    assert not any(secret in str(record.history.first().__dict__) for secret in SECRETS)


def test_learner_portal_exec_ed_attempts_keep_keys_with_masked_values(upstream):
    from enterprise_access.apps.api.tests.helpers import learner_client, redeem_url as api_redeem_url

    policy = build_world_policy()
    metadata = {**DETAILS, "geag_terms_accepted_at": "2026-11-01T10:00:00Z"}
    response = learner_client().post(api_redeem_url(policy.uuid), {"lms_user_id": 101,
                                                                   "content_key": upstream.exec_ed_run,
                                                                   "metadata": metadata}, format="json")
    assert response.status_code == 200, response.content
    attempt = RedemptionAttempt.objects.get(transaction_uuid=response.json()["uuid"])
    assert attempt.request_metadata == {key: "***" for key in metadata}
    assert not any(secret in str(attempt.__dict__) for secret in SECRETS)


def test_details_sent_for_other_content_are_neither_needed_nor_sent(client, upstream, forcer):
    policy = build_world_policy()
    page = client.post(reverse(ADD_URL), {**add_form(upstream, policy), **DETAILS}, follow=True)
    assert ("info", "This content is not executive education: the learner's details you entered are not needed, and "
                    "were not kept.") in texts(page)
    record = ForcedPolicyRedemption.objects.get()
    response = client.post(redeem_url(record), {"_confirmed_inputs": page.context["confirmed_inputs"],
                                                "_redeem": "Yes", "geag_email": "not an email"}, follow=True)
    record.refresh_from_db()
    assert record.state == "redeemed" and [level for level, _ in texts(response)] == ["success"]
    (tx,) = upstream.control.transactions(upstream.subsidy_uuid)[-1:]
    assert not any(key.startswith("geag_") for key in tx["metadata"])


def test_a_date_of_birth_in_the_future_is_refused(client, upstream, forcer):
    record = waiting(upstream, run=upstream.exec_ed_run)
    digest = client.get(redeem_url(record)).context["confirmed_inputs"]
    refused = client.post(redeem_url(record), {"_confirmed_inputs": digest, "_redeem": "Yes",
                                               **DETAILS, "geag_date_of_birth": "2999-01-01"})
    assert refused.status_code == 200 and "A date of birth is in the past: check the year." in refused.content.decode()
    assert nothing_spent(upstream)
