"""
The "Force redemption" list action forces only what its confirmation showed (hostile finding F5): the confirmation
carries each record's inputs fingerprint, "Yes" forces a record only with it, inline and through a bulk job; a record
changed in another tab (or not listed on the confirmation) is refused, per record, and nothing is spent on it.
"""
import re

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from enterprise_access import celery_app
from enterprise_access.apps.subsidy_access_policy import bulk_forcing
from enterprise_access.apps.subsidy_access_policy.admin import forced_redemption as forced_admin
from enterprise_access.apps.subsidy_access_policy.bulk_forcing import run_bulk_forcing, start_bulk_forcing
from enterprise_access.apps.subsidy_access_policy.forcing import inputs_digest
from enterprise_access.apps.subsidy_access_policy.models import (
    BulkForcingJob,
    BulkForcingRow,
    ForcedPolicyRedemption,
    RedemptionAttempt,
)

from .admin_world import person
from .factories import ForcedRedemptionFactory
from .test_forced_confirmation import change_form
from .test_forced_admin import change_url

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "independent"])

LIST_URL = "admin:subsidy_access_policy_forcedpolicyredemption_changelist"
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def learner(upstream, index):
    return upstream.learners[index]["lms_user_id"]


def charged(upstream, lms_user_id):
    """The ledger's transactions (read through the emulator's control API) for one learner."""
    return [tx for tx in upstream.control.transactions(upstream.subsidy_uuid) if tx["lms_user_id"] == lms_user_id]


def tab(forcer):
    client = Client()
    client.force_login(forcer)
    return client


def confirmation(client, records):
    """Tab A: run the action on ``records``; returns the confirmation page's form as "Yes" would post it."""
    page = client.post(reverse(LIST_URL), {"action": "force_redemption_action", "index": "0",
                                           "_selected_action": [str(r.pk) for r in records]})
    assert page.status_code == 200
    form = page.content.decode().split('<form method="post">', 1)[1]
    data = {}
    for name, value in HIDDEN.findall(form):
        data.setdefault(name, []).append(value)
    assert data["post"] == ["yes"]
    return data


def texts(response):
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def edit_in_tab_b(forcer, record, **changes):
    """Tab B: change the waiting record and "Save without redeeming" through its change form."""
    record.refresh_from_db()
    response = tab(forcer).post(change_url(record), change_form(record, **changes))
    assert response.status_code == 302
    record.refresh_from_db()
    assert all(str(getattr(record, name)) == str(value) for name, value in changes.items())


@pytest.fixture
def forcer():
    return person(may_force=True)


@pytest.fixture
def world(policy_world, upstream):
    """Two waiting records under one policy: learner 1 on run 2, and learner 0 on run 1."""
    policy = policy_world(display_name="Tabbed credit")
    first = ForcedRedemptionFactory(subsidy_access_policy=policy, lms_user_id=learner(upstream, 1),
                                    course_run_key=upstream.runs[2], wait_to_redeem=True)
    second = ForcedRedemptionFactory(subsidy_access_policy=policy, lms_user_id=learner(upstream, 0),
                                     course_run_key=upstream.runs[1], wait_to_redeem=True)
    return [first, second]


@pytest.fixture
def eager():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


# ----- the confirmation carries what it showed ---------------------------------------------------------------------

def test_the_confirmation_carries_each_listed_records_inputs_fingerprint(world, forcer):
    data = confirmation(tab(forcer), world)
    for record in world:
        assert data[f"_confirmed_inputs_{record.pk}"] == [inputs_digest(record)]


# ----- inline (a small selection is forced in the request) ---------------------------------------------------------

def test_a_record_changed_in_another_tab_is_refused_inline_and_nothing_is_charged(world, upstream, forcer):
    changed, unchanged = world
    tab_a = tab(forcer)
    yes = confirmation(tab_a, world)  # lists learner 1 / run 2
    edit_in_tab_b(forcer, changed, lms_user_id=learner(upstream, 2), course_run_key=upstream.runs[0])

    response = tab_a.post(reverse(LIST_URL), yes)

    assert response.status_code == 302
    changed.refresh_from_db()
    unchanged.refresh_from_db()
    assert changed.state == "waiting" and changed.redeemed_at is None and changed.errored_at is None
    assert charged(upstream, learner(upstream, 2)) == [] and charged(upstream, learner(upstream, 1)) == []
    assert not RedemptionAttempt.objects.filter(forced_redemption=changed).exists()
    messages = texts(response)
    assert any(level == "warning" and str(changed.pk) in text and "changed since the confirmation" in text
               and "Nothing was redeemed" in text for level, text in messages)
    # The other record, unchanged, is forced as shown.
    assert unchanged.state == "redeemed" and len(charged(upstream, learner(upstream, 0))) == 1


def test_a_confirmation_without_a_records_fingerprint_forces_nothing_for_it(world, upstream, forcer):
    tab_a = tab(forcer)
    yes = confirmation(tab_a, world)
    del yes[f"_confirmed_inputs_{world[0].pk}"]
    yes[f"_confirmed_inputs_{world[1].pk}"] = ["0" * 32]  # a fingerprint it never showed

    response = tab_a.post(reverse(LIST_URL), yes)

    assert response.status_code == 302
    assert charged(upstream, learner(upstream, 0)) == [] and charged(upstream, learner(upstream, 1)) == []
    assert not RedemptionAttempt.objects.exists()
    assert ForcedPolicyRedemption.objects.filter(redeemed_at__isnull=True, errored_at__isnull=True).count() == 2
    refused = [text for level, text in texts(response) if level == "warning" and "was not forced" in text]
    assert len(refused) == 2


def test_an_edit_between_the_check_and_the_claim_is_refused_inline(world, upstream, forcer, monkeypatch):
    """Tab B saves just after "Yes" compared the fingerprint: the claim insists on those inputs, nothing runs."""
    record = world[0]
    tab_a = tab(forcer)
    yes = confirmation(tab_a, [record])
    real_force = forced_admin.force_redemption

    def tab_b_saves_then_force(**kwargs):
        ForcedPolicyRedemption.objects.filter(pk=record.pk).update(lms_user_id=learner(upstream, 2),
                                                                    course_run_key=upstream.runs[0])
        return real_force(**kwargs)

    monkeypatch.setattr(forced_admin, "force_redemption", tab_b_saves_then_force)
    response = tab_a.post(reverse(LIST_URL), yes)

    record.refresh_from_db()
    assert record.redeemed_at is None and record.run_started_at is None
    assert charged(upstream, learner(upstream, 2)) == [] and charged(upstream, learner(upstream, 1)) == []
    assert any(level == "warning" and "inputs changed after they were confirmed" in text
               for level, text in texts(response))


# ----- bulk job (a large selection is forced by a worker) ----------------------------------------------------------

def test_a_record_changed_before_yes_is_left_out_of_the_bulk_job(world, upstream, forcer, settings, eager):
    settings.BULK_FORCING_INLINE_MAX = 1
    changed, unchanged = world
    tab_a = tab(forcer)
    yes = confirmation(tab_a, world)
    edit_in_tab_b(forcer, changed, lms_user_id=learner(upstream, 2), course_run_key=upstream.runs[0])

    response = tab_a.post(reverse(LIST_URL), yes)

    job = BulkForcingJob.objects.get()
    assert response.status_code == 302
    assert list(job.rows.values_list("forced_redemption_id", "confirmed_inputs", "result")) == [
        (unchanged.pk, inputs_digest(unchanged), BulkForcingRow.REDEEMED)]
    changed.refresh_from_db()
    assert changed.redeemed_at is None and charged(upstream, learner(upstream, 2)) == []
    assert any(level == "warning" and str(changed.pk) in text for level, text in texts(response))


def test_a_bulk_selection_whose_records_all_changed_starts_no_job(world, upstream, forcer, settings):
    settings.BULK_FORCING_INLINE_MAX = 1
    tab_a = tab(forcer)
    yes = confirmation(tab_a, world)
    for record in world:
        edit_in_tab_b(forcer, record, course_run_key=upstream.runs[0])
    response = tab_a.post(reverse(LIST_URL), yes)
    assert response.status_code == 302 and not BulkForcingJob.objects.exists()
    assert len([1 for level, _ in texts(response) if level == "warning"]) == 2


def test_a_record_changed_after_the_job_started_is_not_forced_by_the_worker(world, upstream, forcer, settings):
    """The job was written (no worker yet); tab B edits a record; the worker then refuses that row, spends nothing."""
    settings.BULK_FORCING_INLINE_MAX = 1
    changed, unchanged = world
    tab_a = tab(forcer)
    tab_a.post(reverse(LIST_URL), confirmation(tab_a, world))  # the request only enqueues: nobody reads the broker
    job = BulkForcingJob.objects.get()
    assert set(job.rows.values_list("confirmed_inputs", flat=True)) == {inputs_digest(r) for r in world}
    edit_in_tab_b(forcer, changed, lms_user_id=learner(upstream, 2), course_run_key=upstream.runs[0])

    run_bulk_forcing(job.uuid)

    rows = {row.forced_redemption_id: row for row in job.rows.all()}
    assert rows[changed.pk].result == BulkForcingRow.INPUTS_CHANGED
    assert "changed after the confirmation" in rows[changed.pk].error_message
    assert rows[unchanged.pk].result == BulkForcingRow.REDEEMED
    changed.refresh_from_db()
    assert changed.redeemed_at is None and changed.errored_at is None
    assert charged(upstream, learner(upstream, 2)) == [] and charged(upstream, learner(upstream, 1)) == []
    assert not RedemptionAttempt.objects.filter(forced_redemption=changed).exists()
    assert "inputs_changed" in bulk_forcing.results_csv(job)


def test_an_edit_between_the_workers_check_and_its_claim_is_refused(world, upstream, forcer, monkeypatch):
    record = world[0]
    job = start_bulk_forcing(records=[record], acting_user=forcer)
    real_force = bulk_forcing.force_redemption

    def tab_b_saves_then_force(**kwargs):
        ForcedPolicyRedemption.objects.filter(pk=record.pk).update(lms_user_id=learner(upstream, 2))
        return real_force(**kwargs)

    monkeypatch.setattr(bulk_forcing, "force_redemption", tab_b_saves_then_force)
    run_bulk_forcing(job.uuid)

    row = job.rows.get()
    assert row.result == BulkForcingRow.INPUTS_CHANGED
    record.refresh_from_db()
    assert record.redeemed_at is None and record.run_started_at is None
    assert charged(upstream, learner(upstream, 2)) == [] and charged(upstream, learner(upstream, 1)) == []


def test_a_row_without_a_confirmed_fingerprint_is_not_forced(world, upstream, forcer):
    """A row written before rows carried fingerprints (or by any path that confirmed nothing) spends nothing."""
    job = start_bulk_forcing(records=world[:1], acting_user=forcer)
    BulkForcingRow.objects.filter(job=job).update(confirmed_inputs="")
    run_bulk_forcing(job.uuid)
    assert job.rows.get().result == BulkForcingRow.INPUTS_CHANGED
    assert charged(upstream, learner(upstream, 1)) == []
