"""
Bulk forcing in the background: the action hands large selections to a Celery job; the task forces each record
once, survives a crash, and its page and CSV tell staff what happened to each row.
"""
import csv
import io
import os
import signal
import subprocess
import time
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from enterprise_access import celery_app
from enterprise_access.apps.subsidy_access_policy import bulk_forcing
from enterprise_access.apps.subsidy_access_policy.bulk_forcing import run_bulk_forcing, start_bulk_forcing
from enterprise_access.apps.subsidy_access_policy.forcing import inputs_digest
from enterprise_access.apps.subsidy_access_policy.models import BulkForcingJob, BulkForcingRow, ForcedPolicyRedemption
from enterprise_access.apps.subsidy_access_policy.tasks import force_bulk_job
from enterprise_access.devtools.management.commands.run_demo import worker_command
from enterprise_access.devtools.testing import run_concurrently
from enterprise_access.settings.base import filesystem_broker

from .admin_world import JOB_STATES, build_admin_world, person
from .factories import ForcedRedemptionFactory

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "independent"])

LIST_URL = "admin:subsidy_access_policy_forcedpolicyredemption_changelist"


def job_url(job, view="change"):
    return reverse(f"admin:subsidy_access_policy_bulkforcingjob_{view}", args=[job.pk])


def waiting(policy, upstream, *pairs):
    return [ForcedRedemptionFactory(subsidy_access_policy=policy, lms_user_id=learner, course_run_key=run)
            for learner, run in pairs]


def learner_transactions(upstream, subsidy_uuid):
    return [tx for tx in upstream.control.transactions(subsidy_uuid) if tx["lms_user_id"]]


@pytest.fixture
def records(policy_world, upstream):
    """Three waiting records: two that redeem, one whose run is outside the policy's catalog."""
    policy = policy_world(display_name="Bulk credit")
    return waiting(policy, upstream, (101, upstream.runs[0]), (102, upstream.runs[1]),
                   (103, upstream.not_in_catalog_run))


@pytest.fixture
def eager():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


# ----- the task --------------------------------------------------------------------------------------------------

def test_the_task_forces_each_row_and_records_its_result(records, upstream):
    forcer = person(may_force=True)
    job = start_bulk_forcing(records=records, acting_user=forcer)
    assert job.state == "queued" and job.total == 3

    force_bulk_job(str(job.uuid))  # the task's function, called directly

    job.refresh_from_db()
    assert job.state == "finished" and job.runs == 1
    rows = list(job.rows.order_by("position").select_related("forced_redemption"))
    assert [row.result for row in rows] == ["redeemed", "redeemed", "errored"]
    for row in rows[:2]:
        assert row.forced_redemption.state == "redeemed"
        assert row.transaction_uuid == row.forced_redemption.transaction_uuid
        assert row.forced_redemption.modified_by == forcer
    assert rows[2].transaction_uuid is None and rows[2].error_message.startswith("content_not_in_catalog")
    assert len(learner_transactions(upstream, upstream.subsidy_uuid)) == 2


def test_a_job_run_again_after_a_crash_forces_no_record_twice(records, upstream, monkeypatch):
    job = start_bulk_forcing(records=records, acting_user=person(may_force=True))
    real_force = bulk_forcing.force_redemption
    calls = []

    def die_on_the_second(**kwargs):
        calls.append(kwargs["forced_redemption"].pk)
        if len(calls) == 2:
            raise SystemExit("worker killed")  # the process dies mid-job, after the first record redeemed
        return real_force(**kwargs)

    monkeypatch.setattr(bulk_forcing, "force_redemption", die_on_the_second)
    with pytest.raises(SystemExit):
        run_bulk_forcing(job.uuid)
    job.refresh_from_db()
    assert job.finished_at is None and job.started_at is not None
    assert list(job.rows.order_by("position").values_list("result", flat=True)) == ["redeemed", "", ""]

    # Someone forced the second record by hand meanwhile; then the message comes back (acks_late) or staff re-run.
    monkeypatch.setattr(bulk_forcing, "force_redemption", real_force)
    real_force(forced_redemption=records[1], acting_user=None)
    run_bulk_forcing(job.uuid)
    job.refresh_from_db()
    assert job.state == "finished" and job.runs == 2
    assert list(job.rows.order_by("position").values_list("result", flat=True)) == [
        "redeemed", "already_redeemed", "errored"]
    assert len(learner_transactions(upstream, upstream.subsidy_uuid)) == 2  # one per learner, never two

    run_bulk_forcing(job.uuid)  # a duplicate delivery of a finished job changes nothing
    assert len(learner_transactions(upstream, upstream.subsidy_uuid)) == 2


def test_two_staff_forcing_the_same_records_at_once_redeem_each_once(records, upstream):
    """Two tabs, two jobs over the same records, run side by side: one transaction per record, whatever the order."""
    jobs = [start_bulk_forcing(records=records[:2], acting_user=person(may_force=True)) for _ in range(2)]
    run_concurrently(run_bulk_forcing, [(job.uuid,) for job in jobs])
    assert len(learner_transactions(upstream, upstream.subsidy_uuid)) == 2
    for record in records[:2]:
        results = sorted(BulkForcingRow.objects.filter(forced_redemption=record).values_list("result", flat=True))
        assert results in (["already_redeemed", "redeemed"], ["busy", "redeemed"]), results
        record.refresh_from_db()
        assert record.state == "redeemed"


def test_an_answer_lost_after_the_subsidy_wrote_is_reported_and_forcing_again_charges_once(records, upstream,
                                                                                          settings):
    settings.SUBSIDY_CREATE_RETRIES = 0
    upstream.control.add_fault("subsidy", method="POST", path=r"/admin/transactions/?$", status=0, phase="after",
                               times=1)
    job = start_bulk_forcing(records=records[:2], acting_user=None)
    run_bulk_forcing(job.uuid)
    first, second = job.rows.order_by("position")
    assert first.result == BulkForcingRow.ERRORED and "may have written the transaction" in first.error_message
    assert second.result == BulkForcingRow.REDEEMED
    assert len(learner_transactions(upstream, upstream.subsidy_uuid)) == 2  # the first was written all the same

    # Staff force the errored record again (a new job): the same idempotency key finds the written transaction.
    again = start_bulk_forcing(records=[first.forced_redemption], acting_user=None)
    run_bulk_forcing(again.uuid)
    row = again.rows.get()
    assert row.result in (BulkForcingRow.REDEEMED, BulkForcingRow.ALREADY_REDEEMED) and row.transaction_uuid
    assert len(learner_transactions(upstream, upstream.subsidy_uuid)) == 2


def test_a_record_held_by_another_forcing_is_reported_not_forced(records, upstream):
    ForcedPolicyRedemption.objects.filter(pk=records[0].pk).update(run_started_at=timezone.now())
    job = start_bulk_forcing(records=records[:1], acting_user=None)
    run_bulk_forcing(job.uuid)
    row = job.rows.get()
    assert row.result == BulkForcingRow.BUSY and "Another forcing held this record" in row.error_message
    assert learner_transactions(upstream, upstream.subsidy_uuid) == []


def test_an_unknown_job_is_nothing_to_do():
    assert run_bulk_forcing("6a1b8a59-0000-4000-8000-000000000000") is None


# ----- the action hands large selections to the background -------------------------------------------------------

def force_action(client, records, **extra):
    """The confirmed action, carrying each record's inputs fingerprint as its confirmation showed it."""
    digests = {f"_confirmed_inputs_{r.pk}": inputs_digest(r) for r in records}
    return client.post(reverse(LIST_URL), {"action": "force_redemption_action", "post": "yes", "index": "0",
                                           "_selected_action": [str(r.pk) for r in records], **digests, **extra})


def test_a_large_selection_is_forced_in_the_background_eagerly(client, records, upstream, settings, eager):
    settings.BULK_FORCING_INLINE_MAX = 2
    forcer = person(may_force=True)
    client.force_login(forcer)
    response = force_action(client, records)
    job = BulkForcingJob.objects.get()
    assert response.status_code == 302 and response["Location"] == job_url(job)
    assert "3 records are being forced in the background" in [str(m) for m in get_messages(response.wsgi_request)][0]
    job.refresh_from_db()
    assert job.state == "finished" and job.created_by == forcer
    assert sorted(job.rows.values_list("result", flat=True)) == ["errored", "redeemed", "redeemed"]


def test_the_request_only_enqueues(client, records, upstream, settings):
    """Without a worker nothing is forced: the request wrote the job and sent its id, no more."""
    settings.BULK_FORCING_INLINE_MAX = 2
    client.force_login(person(may_force=True))
    force_action(client, records)
    job = BulkForcingJob.objects.get()
    assert job.state == "queued"
    assert ForcedPolicyRedemption.objects.filter(redeemed_at__isnull=False).count() == 0
    assert learner_transactions(upstream, upstream.subsidy_uuid) == []
    page = client.get(job_url(job))
    assert page.status_code == 200 and b'http-equiv="refresh"' in page.content and b"queued" in page.content


def test_the_confirmation_says_whether_it_forces_now_or_in_the_background(client, records, settings):
    client.force_login(person(may_force=True))
    ask = {"action": "force_redemption_action", "index": "0", "_selected_action": [str(r.pk) for r in records]}
    assert "will be redeemed now" in client.post(reverse(LIST_URL), ask).content.decode()
    settings.BULK_FORCING_INLINE_MAX = 2
    assert "will be redeemed in the background" in client.post(reverse(LIST_URL), ask).content.decode()
    assert BulkForcingJob.objects.count() == 0  # asking is not confirming


def test_a_small_selection_is_still_forced_in_the_request(client, records, upstream):
    client.force_login(person(may_force=True))
    response = force_action(client, records[:2])
    assert response.status_code == 302 and BulkForcingJob.objects.count() == 0
    assert ForcedPolicyRedemption.objects.filter(redeemed_at__isnull=False).count() == 2


def test_view_only_staff_cannot_start_or_rerun_a_job(client, records, settings):
    settings.BULK_FORCING_INLINE_MAX = 0
    client.force_login(person(view_only=True))
    force_action(client, records)
    assert BulkForcingJob.objects.count() == 0
    job = start_bulk_forcing(records=records, acting_user=None)
    assert client.post(job_url(job, "run_again")).status_code == 403
    assert client.get(job_url(job)).status_code == 200  # they may look


# ----- the pages -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["superuser", "viewer"])
def test_job_pages_in_every_state_and_the_csv(client, policy_world, who):
    world = build_admin_world(days=1)
    client.force_login(getattr(world.people, who))
    assert set(world.jobs) == set(JOB_STATES)
    for state, job in world.jobs.items():
        response = client.get(job_url(job))
        assert response.status_code == 200, state
        html = response.content.decode()
        assert f'id="bulk-job-state">{state}<' in html
        assert ('http-equiv="refresh"' in html) == (state in ("queued", "running"))
        assert ("Run the job again" in html) == (who == "superuser" and state == "stalled")
        download = client.get(job_url(job, "results"))
        assert download.status_code == 200 and download["Content-Type"].startswith("text/csv")
        lines = list(csv.DictReader(io.StringIO(download.content.decode())))
        assert len(lines) == job.total
    finished = world.jobs["finished"]
    lines = list(csv.DictReader(io.StringIO(client.get(job_url(finished, "results")).content.decode())))
    assert [line["result"] for line in lines] == ["redeemed", "already_redeemed", "errored", "busy", "inputs_changed"]
    assert lines[0]["transaction_uuid"] and lines[2]["error_message"].startswith("not_enough_value_in_subsidy")
    assert client.get(job_url(finished) + "?result=errored").status_code == 200
    assert client.get(job_url(finished) + "?page=99").status_code == 200
    assert client.get(reverse("admin:subsidy_access_policy_bulkforcingjob_changelist")).status_code == 200
    assert client.get("/admin/subsidy_access_policy/bulkforcingjob/not-a-uuid/change/").status_code == 404
    assert client.get("/admin/subsidy_access_policy/bulkforcingjob/not-a-uuid/results.csv").status_code == 404


def test_a_job_no_worker_took_for_too_long_is_stalled(client, records, settings):
    job = start_bulk_forcing(records=records, acting_user=None)
    assert job.state == "queued"
    BulkForcingJob.objects.filter(pk=job.pk).update(
        created=timezone.now() - timedelta(seconds=settings.BULK_FORCING_STALLED_SECONDS + 5))
    job.refresh_from_db()
    assert job.state == "stalled"
    client.force_login(person(may_force=True))
    html = client.get(job_url(job)).content.decode()
    assert "No worker has picked the job up" in html and "Run the job again" in html


def test_results_csv_never_carries_a_formula(policy_world, upstream):
    record = waiting(policy_world(), upstream, (101, upstream.runs[0]))[0]
    job = start_bulk_forcing(records=[record], acting_user=None)
    job.rows.update(result=BulkForcingRow.ERRORED, error_message="=HYPERLINK(\"http://evil\")")
    line = list(csv.DictReader(io.StringIO(bulk_forcing.results_csv(job))))[0]
    assert line["error_message"] == "'=HYPERLINK(\"http://evil\")"


def test_rerunning_a_stalled_job_sends_it_again(client, records, request):
    job = start_bulk_forcing(records=records, acting_user=None)  # its message goes to a broker nobody reads
    BulkForcingJob.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(hours=1),
                                                    heartbeat_at=timezone.now() - timedelta(hours=1), runs=1)
    client.force_login(person(may_force=True))
    request.getfixturevalue("eager")
    response = client.post(job_url(job, "run_again"))
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.state == "finished" and job.runs == 2
    # A finished job is not sent again.
    client.post(job_url(job, "run_again"))
    job.refresh_from_db()
    assert job.runs == 2
    assert client.get(job_url(job, "run_again")).status_code == 405


# ----- a real worker ---------------------------------------------------------------------------------------------

@pytest.mark.skipif(connection.vendor != "sqlite", reason="the worker reads the SQLite test database by its path")
def test_a_real_worker_picks_the_job_up(records, upstream, tmp_path):
    """A Celery worker process, started as run_demo starts it, on the filesystem broker, forces an enqueued job."""
    call_command("createcachetable", "django_cache", verbosity=0)  # the worker runs the local settings' DB cache
    broker = tmp_path / "broker"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "enterprise_access.settings.local",
           "LOCAL_SQLITE_PATH": str(django_settings.DATABASES["default"]["NAME"]),
           "EMULATOR_URL": upstream.url, "CELERY_BROKER_DIR": str(broker)}
    original = celery_app.conf.broker_transport_options
    _, options = filesystem_broker(broker)  # the folders the worker's settings make of CELERY_BROKER_DIR
    celery_app.conf.broker_transport_options = options
    # The worker as make demo starts it.
    worker = subprocess.Popen(worker_command(), env=env, cwd=django_settings.BASE_DIR, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with celery_app.connection_for_write() as conn:
            job = start_bulk_forcing(records=records, acting_user=None)
            force_bulk_job.apply_async(args=[str(job.uuid)], connection=conn)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if job.finished_at is not None:
                break
            assert worker.poll() is None, "the worker exited"
            time.sleep(0.2)
    finally:
        celery_app.conf.broker_transport_options = original
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(20)
    assert job.state == "finished"
    assert sorted(job.rows.values_list("result", flat=True)) == ["errored", "redeemed", "redeemed"], list(
        job.rows.values_list("error_message", flat=True))
