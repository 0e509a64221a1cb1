"""
Staff forcing redemptions in a real browser at a laptop's size (1366x768): "Save and redeem…" leads to a confirmation
page and only "Yes, redeem" spends; a record that has run is read-only and a stale tab cannot change it; exec-ed
content asks for the learner's details; errors and permissions. Each test writes its screenshots under
``var/screenshots/`` for a person to look at.
"""
import pytest
from django.contrib.auth.models import Permission

from enterprise_access.apps.subsidy_access_policy import constants as c
from enterprise_access.apps.subsidy_access_policy.models import ForcedPolicyRedemption, RedemptionAttempt

from ..factories import PerLearnerEnrollmentPolicyFactory, UserFactory
from .test_attempt_admin_browser import LAPTOP, log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases=["default", "independent"])]

LIST_PATH = "/admin/subsidy_access_policy/forcedpolicyredemption/"
EXEC_ED_DETAILS = {"geag_first_name": "Pat", "geag_last_name": "Lee", "geag_email": "pat.lee@demo-co.example",
                   "geag_date_of_birth": "1990-04-01", "geag_terms_accepted_at": "2026-11-01T10:00"}


def staff_user(*, may_force):
    user = UserFactory(is_staff=True)
    if may_force:
        user.user_permissions.add(Permission.objects.get(codename="force_redemption"))
    return user


@pytest.fixture
def policy(upstream):
    return PerLearnerEnrollmentPolicyFactory(enterprise_customer_uuid=upstream.customer_uuid,
                                             subsidy_uuid=upstream.subsidy_uuid, catalog_uuid=upstream.catalog_uuid,
                                             display_name="Demo enrollment credit")


@pytest.fixture
def forcer_page(page, live_server):
    page.set_viewport_size(LAPTOP)
    log_in(page, live_server, staff_user(may_force=True))
    return page


def fill_add_form(page, live_server, policy, *, run, learner=101, details=None):
    page.goto(f"{live_server.url}{LIST_PATH}add/")
    assert "Use with caution" in page.inner_text("#content")
    page.fill("#id_subsidy_access_policy", str(policy.uuid))
    page.fill("#id_lms_user_id", str(learner))
    page.fill("#id_course_run_key", run)
    # A per-learner policy pays the catalog price: the price stays empty.
    for name, value in (details or {}).items():
        page.fill(f"#id_{name}", value)


def whole_page(page, name):
    """A screenshot of a page taller than the laptop's screen: the same width, tall enough for all of it."""
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": LAPTOP["width"], "height": max(LAPTOP["height"], height)})
    screenshot(page, name)
    page.set_viewport_size(LAPTOP)


def fits_the_laptop(page):
    return page.evaluate("document.documentElement.scrollWidth") <= LAPTOP["width"]


def test_save_and_redeem_then_confirm(forcer_page, live_server, upstream, policy):
    page = forcer_page
    fill_add_form(page, live_server, policy, run=upstream.run)
    whole_page(page, "forced-add-form")
    page.click("input[type=submit][value='Save and redeem…']")
    page.wait_for_url("**/redeem/")
    record = ForcedPolicyRedemption.objects.get()
    assert record.state == "waiting" and not RedemptionAttempt.objects.exists()  # nothing spent yet

    messages = page.locator("ul.messagelist li")
    assert messages.count() == 1 and "saved; confirm below to redeem it" in messages.inner_text()
    summary = page.inner_text("#forced-confirm-summary")
    assert upstream.learner["email"] in summary and "Cooking" in summary
    assert "$199.00" in page.inner_text("tr.forced-row-price") and "remaining" in summary
    assert fits_the_laptop(page)
    screenshot(page, "forced-confirm-page")

    page.click("input[type=submit][value^='Yes, redeem']")
    page.wait_for_url(f"**{LIST_PATH}{record.pk}/change/")
    record.refresh_from_db()
    assert record.state == "redeemed"
    messages = page.locator("ul.messagelist li")
    assert messages.count() == 1 and str(record.transaction_uuid) in page.inner_text("ul.messagelist li.success")
    screenshot(page, "forced-redeemed-record")


def test_a_record_that_ran_is_read_only_and_a_stale_tab_changes_nothing(forcer_page, live_server, upstream, policy):
    page = forcer_page
    record = ForcedPolicyRedemption.objects.create(subsidy_access_policy=policy, lms_user_id=101,
                                                   course_run_key=upstream.run, wait_to_redeem=True)
    page.goto(f"{live_server.url}{LIST_PATH}{record.pk}/change/")  # tab 1: the waiting record, editable
    assert page.locator("#id_lms_user_id").count() == 1

    other_tab = page.context.new_page()
    other_tab.set_viewport_size(LAPTOP)
    other_tab.goto(f"{live_server.url}{LIST_PATH}{record.pk}/redeem/")
    other_tab.click("input[type=submit][value^='Yes, redeem']")
    other_tab.wait_for_url("**/change/")
    record.refresh_from_db()
    assert record.state == "redeemed"

    page.fill("#id_lms_user_id", "103")  # tab 1, stale, tries another learner
    page.click("input[type=submit][value='Save and redeem…']")
    page.wait_for_url(f"**{LIST_PATH}{record.pk}/change/")
    errors = page.locator("ul.messagelist li.error")
    assert errors.count() == 1 and "nothing you entered was saved" in errors.inner_text()
    assert page.locator("ul.messagelist li.success").count() == 0
    record.refresh_from_db()
    assert record.lms_user_id == 101 and record.state == "redeemed"
    assert page.locator("#id_lms_user_id").count() == 0  # read-only now
    assert page.locator("input[type=submit]").count() == 0
    assert fits_the_laptop(page)
    whole_page(page, "forced-stale-tab-refused")

    page.click("a.forced-copy-link >> nth=0")
    page.wait_for_url("**/add/?*")
    assert page.input_value("#id_lms_user_id") == "101"
    assert page.input_value("#id_course_run_key") == upstream.run
    assert f"A copy of forced redemption {record.pk}" in page.inner_text(".forced-copy-note")
    screenshot(page, "forced-copy-into-new-record")


def test_exec_ed_asks_for_the_learners_details(forcer_page, live_server, upstream, policy):
    page = forcer_page
    fill_add_form(page, live_server, policy, run=upstream.exec_ed_run,
                  details={"geag_first_name": "Pat", "geag_email": "pat.lee@demo-co.example"})
    page.click("input[type=submit][value='Save and redeem…']")
    page.wait_for_load_state()
    error = page.locator("#content .errornote, #content ul.errorlist.nonfield").first
    assert "Missing: last name, date of birth, when the terms were accepted." in page.inner_text("#content")
    assert error.count() == 1
    assert not ForcedPolicyRedemption.objects.exists()
    whole_page(page, "forced-exec-ed-missing-details")

    for name, value in EXEC_ED_DETAILS.items():
        page.fill(f"#id_{name}", value)
    page.click("input[type=submit][value='Save and redeem…']")
    page.wait_for_selector("#forced-confirm-form")
    record = ForcedPolicyRedemption.objects.get()
    assert page.url.endswith(f"{LIST_PATH}{record.pk}/redeem/")  # a reload shows the page, never adds again
    assert page.input_value("#id_geag_last_name") == "Lee"  # carried on the page, not stored
    assert "$2,500.00" in page.inner_text("tr.forced-row-price")
    whole_page(page, "forced-exec-ed-confirm")

    page.click("input[type=submit][value^='Yes, redeem']")
    page.wait_for_url("**/change/")
    record.refresh_from_db()
    assert record.state == "redeemed", record.error_message
    attempt = RedemptionAttempt.objects.get(forced_redemption=record)
    assert attempt.request_metadata["geag_last_name"] == "***"
    assert "Lee" not in page.inner_text("#content")
    screenshot(page, "forced-exec-ed-redeemed")


def test_wait_then_force_with_the_action(forcer_page, live_server, upstream, policy):
    page = forcer_page
    fill_add_form(page, live_server, policy, run=upstream.run)
    page.click("input[type=submit][value='Save without redeeming']")
    page.wait_for_url("**/change/")
    record = ForcedPolicyRedemption.objects.get()
    assert record.state == "waiting" and record.wait_to_redeem

    page.goto(f"{live_server.url}{LIST_PATH}")
    page.check(f"input[name=_selected_action][value='{record.pk}']")
    page.select_option("select[name=action]", "force_redemption_action")
    page.click("button[name=index]")
    page.wait_for_selector(".force-redemption-warning")
    content = page.inner_text("#content")
    assert "powerful tool" in content and "use it with caution" in content
    assert str(record.pk) in page.inner_text("#force-redemption-list")
    record.refresh_from_db()
    assert record.state == "waiting"  # nothing happened before confirming

    screenshot(page, "forced-action-confirmation")
    page.click("input[type=submit][value^='Yes, force']")
    page.wait_for_url(f"**{LIST_PATH}")
    record.refresh_from_db()
    assert record.state == "redeemed"
    assert page.locator("ul.messagelist li.success", has_text=str(record.transaction_uuid)).count() == 1


def test_errors_are_shown_to_staff(forcer_page, live_server, upstream, policy):
    page = forcer_page
    upstream.control.add_fault(service="subsidy", method="POST", path="admin/transactions", status=422,
                               body='{"detail": "Enrollment failed upstream.", "code": "enrollment_error"}')
    fill_add_form(page, live_server, policy, run=upstream.run)
    page.click("input[type=submit][value='Save and redeem…']")
    page.wait_for_url("**/redeem/")
    page.click("input[type=submit][value^='Yes, redeem']")
    page.wait_for_url("**/change/")
    error = page.locator("ul.messagelist li.error")
    assert error.count() == 1 and page.locator("ul.messagelist li").count() == 1
    assert "enrollment_error" in error.inner_text() and "Enrollment failed upstream." in error.inner_text()
    assert "enrollment_error" in page.inner_text("div.field-error_code")  # stored on the record
    assert page.locator("a.forced-redeem-link", has_text="Redeem again").count() == 1
    whole_page(page, "forced-errored-record")

    upstream.control.clear_faults()
    fill_add_form(page, live_server, policy, run=upstream.not_in_catalog_run)
    page.click("input[type=submit][value='Save and redeem…']")
    page.wait_for_url("**/redeem/")
    assert c.REASON_CONTENT_NOT_IN_CATALOG in page.inner_text("tr.forced-row-run")  # said before anything is spent


def test_staff_without_the_permission_cannot_add_or_force(page, live_server, upstream, policy):
    record = ForcedPolicyRedemption.objects.create(subsidy_access_policy=policy, lms_user_id=101,
                                                   course_run_key=upstream.run, wait_to_redeem=True)
    page.set_viewport_size(LAPTOP)
    log_in(page, live_server, staff_user(may_force=False))
    page.goto(f"{live_server.url}{LIST_PATH}")
    assert page.locator("#result_list tbody tr").count() == 1  # may look
    assert page.locator("a.addlink").count() == 0
    assert page.locator("select[name=action] option[value=force_redemption_action]").count() == 0

    page.goto(f"{live_server.url}{LIST_PATH}{record.pk}/redeem/")
    assert page.locator("input[type=submit]").count() == 0
    assert "only staff with the permission" in page.inner_text("#content")
    screenshot(page, "forced-confirm-view-only")

    response = page.goto(f"{live_server.url}{LIST_PATH}add/")
    assert response.status == 403
