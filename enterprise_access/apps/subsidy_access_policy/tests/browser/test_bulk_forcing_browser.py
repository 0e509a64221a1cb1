"""
Bulk forcing in a real browser, as staff do it: a CSV with a bad row (each row's errors shown, nothing saved), then
a good file saved as waiting records, the confirmed "Force redemption" handed to the background, and the job's
page from queued to finished with its CSV download. Screenshots go to ``var/screenshots/bulk-*.png``.
"""
import csv
import io

import pytest

from enterprise_access.apps.subsidy_access_policy.bulk_forcing import run_bulk_forcing
from enterprise_access.apps.subsidy_access_policy.models import BulkForcingJob, ForcedPolicyRedemption

from ..admin_world import person
from .test_attempt_admin_browser import LAPTOP, log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases=["default", "independent"])]

UPLOAD_PATH = "/admin/subsidy_access_policy/bulkforcingjob/upload/"


def choose_file(page, text, name="learners.csv"):
    page.set_input_files("#id_file", files=[{"name": name, "mimeType": "text/csv", "buffer": text.encode()}])


def test_bulk_upload_with_a_bad_row_then_a_good_file_forced_in_the_background(page, live_server, policy_world,
                                                                              upstream, settings):
    settings.BULK_FORCING_INLINE_MAX = 2  # three records go to the background
    policy = policy_world(display_name="Acme learner credit")
    forcer = person(may_force=True, username="staff-forcer", email="forcer@example.org")
    page.set_viewport_size(LAPTOP)
    log_in(page, live_server, forcer)
    runs = upstream.runs

    # 1. A file with bad rows: each is shown with what to fix, and nothing is saved.
    page.goto(f"{live_server.url}{UPLOAD_PATH}")
    page.select_option("#id_policy", str(policy.pk))
    choose_file(page, "lms_user_id,email,course_run_key,price\n"
                      f"101,,{runs[0]},\n"
                      f",sam@demo-co.example,{upstream.exec_ed_run},\n"
                      f"2147483648,,{runs[1]},\n"
                      f"103,,{runs[2]},19900\n")
    page.click("#bulk-upload-form input[type=submit]")
    page.wait_for_selector("#bulk-upload-preview")
    screenshot(page, "bulk-upload-errors")
    assert "3 rows cannot be saved" in page.inner_text("#bulk-upload-errors")
    bad = page.locator("#bulk-upload-rows tr.bulk-row-error")
    assert bad.count() == 3
    assert "force exec-ed content one record at a time" in bad.nth(0).inner_text()
    assert "out of range" in bad.nth(1).inner_text()
    assert "leave price empty" in bad.nth(2).inner_text()
    assert page.locator("#bulk-upload-save").count() == 0
    assert ForcedPolicyRedemption.objects.count() == 0

    # 2. The fixed file: every row valid, saved as waiting records.
    page.select_option("#id_policy", str(policy.pk))
    choose_file(page, "lms_user_id,email,course_run_key\n"
                      f"101,,{runs[0]}\n,sam@demo-co.example,{runs[1]}\n103,,{runs[2]}\n")
    page.click("#bulk-upload-form input[type=submit]")
    page.wait_for_selector("#bulk-upload-save")
    screenshot(page, "bulk-upload-valid")
    assert "Every row is valid." in page.inner_text("#bulk-upload-preview")
    assert ForcedPolicyRedemption.objects.count() == 0
    page.click("#bulk-upload-save input[name=_save]")
    page.wait_for_selector("#bulk-saved-summary")
    screenshot(page, "bulk-upload-saved")
    assert [(r.state, r.created_by_id, r.wait_to_redeem) for r in ForcedPolicyRedemption.objects.all()] == [
        ("waiting", forcer.pk, True)] * 3

    # 3. The existing confirmed action forces them: three are more than the inline limit, so a job runs them.
    page.click("#bulk-saved-force input[type=submit]")
    page.wait_for_selector(".force-redemption-warning")
    screenshot(page, "bulk-force-confirmation")
    assert "will be redeemed in the background" in page.inner_text("#content")
    page.click("input[type=submit][value^='Yes, force']")
    page.wait_for_selector("#bulk-job-progress")
    job = BulkForcingJob.objects.get()
    assert page.inner_text("#bulk-job-state") == "queued"  # no worker in this test: the request only enqueued
    assert "0 / 3" in page.inner_text("#bulk-job-progress")
    screenshot(page, "bulk-job-queued")

    # 4. The worker's part, then the page (it refreshes itself) shows each row's result.
    run_bulk_forcing(job.uuid)
    page.reload()
    page.wait_for_selector("#bulk-job-progress")
    assert page.inner_text("#bulk-job-state") == "finished"
    assert "3 / 3" in page.inner_text("#bulk-job-progress")
    rows = page.locator("#bulk-job-rows tbody tr")
    assert rows.count() == 3
    assert all("transaction " in rows.nth(i).inner_text() for i in range(3))
    screenshot(page, "bulk-job-finished")
    with page.expect_download() as download:
        page.click("#bulk-job-download")
    lines = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert [line["result"] for line in lines] == ["redeemed"] * 3
    assert {line["transaction_uuid"] for line in lines} == {
        str(record.transaction_uuid) for record in ForcedPolicyRedemption.objects.all()}
