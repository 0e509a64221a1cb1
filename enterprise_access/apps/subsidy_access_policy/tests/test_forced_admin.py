"""
The forced-redemption admin: saving leads to a confirmation (never spends), the confirmed action, list tools, and who
may do what. The confirmation page itself, frozen inputs and exec-ed details: test_forced_confirmation.py.
"""
import re

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.urls import reverse

from enterprise_access.apps.subsidy_access_policy import constants as c
from enterprise_access.apps.subsidy_access_policy.forcing import inputs_digest
from enterprise_access.apps.subsidy_access_policy.models import (
    AttemptSource,
    ForcedPolicyRedemption,
    RedemptionAttempt,
)
from enterprise_access.devtools.testing import build_world_policy

from .factories import ForcedRedemptionFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "independent"])

ADD_URL = "admin:subsidy_access_policy_forcedpolicyredemption_add"
LIST_URL = "admin:subsidy_access_policy_forcedpolicyredemption_changelist"


def change_url(record):
    return reverse("admin:subsidy_access_policy_forcedpolicyredemption_change", args=[record.pk])


def staff_user(*, may_force):
    user = UserFactory(is_staff=True)
    if may_force:
        user.user_permissions.add(Permission.objects.get(codename="force_redemption"))
    return user


@pytest.fixture
def forcer(client):
    user = staff_user(may_force=True)
    client.force_login(user)
    return user


def texts(response):
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def redeem_url(record):
    return reverse("admin:subsidy_access_policy_forcedpolicyredemption_redeem", args=[record.pk])


def add_form(upstream, policy, *, run=None, wait=False, learner=None):
    """The add form as a browser posts it: "Save and redeem…" (the default button), or "Save without redeeming"."""
    run = run or upstream.run
    data = {
        "subsidy_access_policy": str(policy.uuid),
        "lms_user_id": str(learner or upstream.learner["lms_user_id"]),
        "course_run_key": run,
        # Only assigned policies take a price; the others pay the catalog price.
        "content_price_cents": str(upstream.prices[run]) if policy.assignment_configuration_id else "",
    }
    data["_save_waiting" if wait else "_save"] = "button"
    return data


def confirm(client, record, **extra):
    """Press "Yes, redeem" on ``record``'s confirmation page, as it was shown now."""
    page = client.get(redeem_url(record))
    assert page.status_code == 200
    return client.post(redeem_url(record), {"_confirmed_inputs": page.context["confirmed_inputs"], "_redeem": "Yes",
                                            **extra}, follow=True)


def subsidy_creates(upstream):
    return [r for r in upstream.control.requests(service="subsidy")
            if r["method"] == "POST" and "transactions" in r["path"]]


def test_save_and_redeem_saves_then_asks_for_confirmation(client, upstream, forcer):
    policy = build_world_policy()
    response = client.post(reverse(ADD_URL), add_form(upstream, policy))
    record = ForcedPolicyRedemption.objects.get()
    assert response.status_code == 302 and response["Location"] == redeem_url(record)
    # Nothing is spent by saving, and no "added successfully" pretends it is done.
    assert record.state == "waiting" and not record.wait_to_redeem
    assert not subsidy_creates(upstream) and not RedemptionAttempt.objects.exists()
    page = client.get(response["Location"])
    assert texts(page) == [("info", f"{record} saved; confirm below to redeem it. Nothing has been spent yet.")]
    assert "Yes, redeem $199.00" in page.content.decode()
    assert not subsidy_creates(upstream) and not RedemptionAttempt.objects.exists()

    done = client.post(redeem_url(record), {"_confirmed_inputs": page.context["confirmed_inputs"], "_redeem": "Yes"},
                       follow=True)
    record.refresh_from_db()
    assert record.state == "redeemed"
    assert record.created_by == forcer and record.modified_by == forcer
    assert texts(done) == [("success", f"{record} redeemed: transaction {record.transaction_uuid}.")]
    attempt = RedemptionAttempt.objects.get(forced_redemption=record)
    assert attempt.source == AttemptSource.FORCED_REDEMPTION and attempt.acting_user_id == forcer.pk
    assert len(subsidy_creates(upstream)) == 1


def test_the_default_button_is_save_and_redeem(client, upstream, forcer):
    """Enter in the form presses the first submit button: it must be the one that asks for confirmation."""
    html = client.get(reverse(ADD_URL)).content.decode()
    buttons = re.findall(r'<input type="submit"[^>]*>', html)
    assert 'value="Save and redeem…"' in buttons[0] and 'name="_save"' in buttons[0]
    assert any('value="Save without redeeming"' in button for button in buttons[1:])
    assert 'value="Save"' not in html and "Save and add another" not in html


def test_save_without_redeeming_only_saves(client, upstream, forcer):
    policy = build_world_policy()
    response = client.post(reverse(ADD_URL), add_form(upstream, policy, wait=True), follow=True)
    assert response.status_code == 200
    record = ForcedPolicyRedemption.objects.get()
    assert record.state == "waiting" and record.wait_to_redeem
    assert not RedemptionAttempt.objects.exists()
    assert not subsidy_creates(upstream)
    assert texts(response) == [("success", f"{record} saved without redeeming: nothing was spent. Redeem it from its "
                                           "page (\"Redeem…\") or with the \"Force redemption\" action.")]


def test_a_refusal_is_shown_as_one_error_with_its_reason(client, upstream, forcer):
    policy = build_world_policy()
    client.post(reverse(ADD_URL), add_form(upstream, policy, run=upstream.not_in_catalog_run))
    record = ForcedPolicyRedemption.objects.get()
    response = confirm(client, record)
    record.refresh_from_db()
    assert record.state == "errored" and record.error_reason == c.REASON_CONTENT_NOT_IN_CATALOG
    messages = texts(response)
    assert len(messages) == 1 and messages[0][0] == "error"
    assert c.REASON_CONTENT_NOT_IN_CATALOG in messages[0][1]
    assert "not part of your organization's catalog" in messages[0][1]


@pytest.mark.parametrize("price", ["-1", "0"])
def test_an_assigned_policy_needs_a_price_above_zero(client, upstream, forcer, price):
    policy = build_world_policy("assigned")
    data = {**add_form(upstream, policy), "content_price_cents": price}
    response = client.post(reverse(ADD_URL), data)
    assert response.status_code == 200 and not ForcedPolicyRedemption.objects.exists()
    assert "greater than or equal to 1" in response.content.decode() or "more than zero" in response.content.decode()
    assert not subsidy_creates(upstream)


def test_a_price_for_a_policy_that_pays_the_catalog_price_is_refused(client, upstream, forcer):
    policy = build_world_policy()
    data = {**add_form(upstream, policy), "content_price_cents": "100"}
    response = client.post(reverse(ADD_URL), data)
    assert response.status_code == 200 and not ForcedPolicyRedemption.objects.exists()
    assert "leave the price empty" in response.content.decode()
    assert not subsidy_creates(upstream)


def _select(records, *, confirm):
    """The action's form; confirmed, it carries each record's inputs fingerprint as its confirmation showed it."""
    data = {"action": "force_redemption_action", "_selected_action": [str(r.pk) for r in records]}
    if confirm:
        data["post"] = "yes"
        data.update({f"_confirmed_inputs_{r.pk}": inputs_digest(r) for r in records})
    return data


def test_the_action_asks_for_confirmation_then_forces_each_record(client, upstream, forcer):
    policy = build_world_policy()
    good = ForcedRedemptionFactory(subsidy_access_policy=policy, course_run_key=upstream.run)
    bad = ForcedRedemptionFactory(subsidy_access_policy=policy, course_run_key=upstream.exec_ed_run)

    page = client.post(reverse(LIST_URL), _select([good, bad], confirm=False))
    html = page.content.decode()
    assert page.status_code == 200 and "powerful tool" in html and "use it with caution" in html
    assert str(good.pk) in html and str(bad.pk) in html
    assert "the catalog price" in html and ">None<" not in html  # a per-learner policy has no price of its own
    assert not RedemptionAttempt.objects.exists()  # nothing happens before the confirmation

    response = client.post(reverse(LIST_URL), _select([good, bad], confirm=True), follow=True)
    good.refresh_from_db()
    bad.refresh_from_db()
    assert good.state == "redeemed" and bad.state == "errored"
    assert bad.error_reason == c.REASON_EXEC_ED_DETAILS_MISSING
    messages = texts(response)
    assert ("success", f"{good} redeemed: transaction {good.transaction_uuid}.") in messages
    assert any(level == "error" and str(bad.pk) in text and "geag_first_name" in text for level, text in messages)
    assert good.modified_by == forcer and bad.modified_by == forcer


def test_running_the_action_twice_makes_one_transaction(client, upstream, forcer):
    record = ForcedRedemptionFactory(subsidy_access_policy=build_world_policy(), course_run_key=upstream.run)
    client.post(reverse(LIST_URL), _select([record], confirm=True))
    page = client.post(reverse(LIST_URL), _select([record], confirm=False))
    assert "will be skipped" in page.content.decode()
    response = client.post(reverse(LIST_URL), _select([record], confirm=True), follow=True)
    assert any(level == "info" and "skipped" in text for level, text in texts(response))
    assert len(subsidy_creates(upstream)) == 1
    assert RedemptionAttempt.objects.filter(forced_redemption=record).count() == 1


def test_saving_a_redeemed_record_again_does_not_redeem_again(client, upstream, forcer):
    policy = build_world_policy()
    client.post(reverse(ADD_URL), add_form(upstream, policy))
    record = ForcedPolicyRedemption.objects.get()
    confirm(client, record)
    page = client.get(change_url(record))
    assert 'name="course_run_key"' not in page.content.decode()  # a redeemed record is read-only
    response = client.post(change_url(record), {"_save": "Save and redeem…"}, follow=True)
    assert [level for level, _ in texts(response)] == ["error"]
    assert len(subsidy_creates(upstream)) == 1
    assert RedemptionAttempt.objects.filter(forced_redemption=record).count() == 1


def test_list_filters_search_and_links(client, upstream, forcer):
    policy = build_world_policy()
    waiting = ForcedRedemptionFactory(subsidy_access_policy=policy, lms_user_id=102, course_run_key=upstream.runs[1])
    errored = ForcedRedemptionFactory(subsidy_access_policy=policy, lms_user_id=103, course_run_key="course-v1:X+Y+Z",
                                      errored_at="2026-01-01T00:00:00Z", error_reason="content_not_in_catalog")
    redeemed = ForcedRedemptionFactory(lms_user_id=101, redeemed_at="2026-01-01T00:00:00Z",
                                       transaction_uuid="00000000-0000-4000-8000-000000000009")

    def listed(**params):
        page = client.get(reverse(LIST_URL), params)
        assert page.status_code == 200
        return {r.pk for r in page.context["cl"].result_list}

    assert listed(state="waiting") == {waiting.pk}
    assert listed(state="errored") == {errored.pk}
    assert listed(state="redeemed") == {redeemed.pk}
    assert listed(q=str(errored.pk)) == {errored.pk}
    assert listed(q=str(policy.uuid)) == {waiting.pk, errored.pk}
    assert listed(q="102") == {waiting.pk}
    assert listed(q="Gardening201") == {waiting.pk}
    assert listed(q="not-a-uuid-at-all") == set()
    assert listed(subsidy_access_policy__uuid__exact=str(policy.uuid)) == {waiting.pk, errored.pk}
    assert listed(lms_user_id="101") == {redeemed.pk}
    assert listed(course_run_key="course-v1:X+Y+Z") == {errored.pk}

    html = client.get(reverse(LIST_URL)).content.decode()
    assert reverse("admin:subsidy_access_policy_subsidyaccesspolicy_change", args=[policy.pk]) in html
    attempts = reverse("admin:subsidy_access_policy_redemptionattempt_changelist")
    assert f"{attempts}?forced_redemption__uuid__exact={waiting.pk}" in html


def test_staff_without_the_permission_may_look_but_not_add_or_force(client, upstream):
    viewer = staff_user(may_force=False)
    client.force_login(viewer)
    record = ForcedRedemptionFactory(subsidy_access_policy=build_world_policy(), course_run_key=upstream.run)

    listing = client.get(reverse(LIST_URL))
    assert listing.status_code == 200
    html = listing.content.decode()
    assert reverse(ADD_URL) not in html and "force_redemption_action" not in html
    assert client.get(reverse(ADD_URL)).status_code == 403
    assert client.post(reverse(ADD_URL), add_form(upstream, record.subsidy_access_policy)).status_code == 403

    page = client.get(change_url(record))
    assert page.status_code == 200 and 'name="course_run_key"' not in page.content.decode()
    assert client.post(change_url(record), {"lms_user_id": "102"}).status_code == 403

    client.post(reverse(LIST_URL), _select([record], confirm=True))
    record.refresh_from_db()
    assert record.state == "waiting" and not RedemptionAttempt.objects.exists()
    assert ForcedPolicyRedemption.objects.count() == 1


def test_non_staff_cannot_see_the_admin(client, upstream):
    client.force_login(UserFactory(is_staff=False))
    assert client.get(reverse(LIST_URL)).status_code == 302  # to the admin login


def test_nobody_deletes_a_record(client, upstream):
    superuser = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(superuser)
    record = ForcedRedemptionFactory(subsidy_access_policy=build_world_policy())
    response = client.get(reverse("admin:subsidy_access_policy_forcedpolicyredemption_delete", args=[record.pk]))
    assert response.status_code == 403
