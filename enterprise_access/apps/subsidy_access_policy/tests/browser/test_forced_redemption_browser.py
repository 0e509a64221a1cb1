"""Staff forcing redemptions in a real browser: add and redeem, wait then confirm the action, errors, permissions."""
import pytest
from django.contrib.auth.models import Permission

from enterprise_access.apps.subsidy_access_policy import constants as c
from enterprise_access.apps.subsidy_access_policy.models import ForcedPolicyRedemption

from ..factories import PerLearnerEnrollmentPolicyFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases=["default", "independent"])]

PASSWORD = "browser-test-password"
LIST_PATH = "/admin/subsidy_access_policy/forcedpolicyredemption/"


def staff_user(*, may_force):
    user = UserFactory(is_staff=True)
    user.set_password(PASSWORD)
    user.save()
    if may_force:
        user.user_permissions.add(Permission.objects.get(codename="force_redemption"))
    return user


def log_in(page, live_server, user):
    page.goto(f"{live_server.url}/admin/login/?next={LIST_PATH}")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"**{LIST_PATH}")


@pytest.fixture
def policy(upstream):
    return PerLearnerEnrollmentPolicyFactory(enterprise_customer_uuid=upstream.customer_uuid,
                                             subsidy_uuid=upstream.subsidy_uuid, catalog_uuid=upstream.catalog_uuid,
                                             display_name="Demo enrollment credit")


def fill_add_form(page, live_server, upstream, policy, *, run=None, wait=False):
    run = run or upstream.run
    page.goto(f"{live_server.url}{LIST_PATH}add/")
    assert "Use with caution" in page.inner_text("#content")
    page.fill("#id_subsidy_access_policy", str(policy.uuid))
    page.fill("#id_lms_user_id", str(upstream.learner["lms_user_id"]))
    page.fill("#id_course_run_key", run)
    # A per-learner policy pays the catalog price: the price stays empty.
    if wait:
        page.check("#id_wait_to_redeem")
    page.click("input[name=_save]")
    page.wait_for_url(f"**{LIST_PATH}")


def test_add_and_redeem(page, live_server, upstream, policy):
    log_in(page, live_server, staff_user(may_force=True))
    fill_add_form(page, live_server, upstream, policy)

    record = ForcedPolicyRedemption.objects.get()
    assert record.state == "redeemed"
    success = page.locator("ul.messagelist li.success", has_text="redeemed: transaction")
    assert success.count() == 1
    assert str(record.transaction_uuid) in success.inner_text()
    assert "redeemed" in page.locator("#result_list").inner_text()


def test_wait_then_force_with_the_confirmation_page(page, live_server, upstream, policy):
    log_in(page, live_server, staff_user(may_force=True))
    fill_add_form(page, live_server, upstream, policy, wait=True)
    record = ForcedPolicyRedemption.objects.get()
    assert record.state == "waiting"

    page.check(f"input[name=_selected_action][value='{record.pk}']")
    page.select_option("select[name=action]", "force_redemption_action")
    page.click("button[name=index]")

    page.wait_for_selector(".force-redemption-warning")
    content = page.inner_text("#content")
    assert "powerful tool" in content and "use it with caution" in content
    assert str(record.pk) in page.inner_text("#force-redemption-list")
    record.refresh_from_db()
    assert record.state == "waiting"  # nothing happened before confirming

    page.click("input[type=submit][value^='Yes, force']")
    page.wait_for_url(f"**{LIST_PATH}")
    record.refresh_from_db()
    assert record.state == "redeemed"
    assert page.locator("ul.messagelist li.success", has_text=str(record.transaction_uuid)).count() == 1


def test_errors_are_shown_to_staff(page, live_server, upstream, policy):
    log_in(page, live_server, staff_user(may_force=True))
    fill_add_form(page, live_server, upstream, policy, run=upstream.not_in_catalog_run)
    error = page.locator("ul.messagelist li.error")
    assert error.count() == 1
    assert c.REASON_CONTENT_NOT_IN_CATALOG in error.inner_text()

    upstream.control.add_fault(service="subsidy", method="POST", path="admin/transactions", status=422,
                               body='{"detail": "Enrollment failed upstream.", "code": "enrollment_error"}')
    fill_add_form(page, live_server, upstream, policy)
    error = page.locator("ul.messagelist li.error")
    assert error.count() == 1
    assert "enrollment_error" in error.inner_text() and "Enrollment failed upstream." in error.inner_text()

    # The stored error is on the record's page too.
    record = ForcedPolicyRedemption.objects.get(course_run_key=upstream.run)
    page.goto(f"{live_server.url}{LIST_PATH}{record.pk}/change/")
    assert "enrollment_error" in page.inner_text("#content")


def test_staff_without_the_permission_cannot_add_or_force(page, live_server, upstream, policy):
    ForcedPolicyRedemption.objects.create(subsidy_access_policy=policy, lms_user_id=101, course_run_key=upstream.run,
                                          wait_to_redeem=True)
    log_in(page, live_server, staff_user(may_force=False))

    assert page.locator("#result_list tbody tr").count() == 1  # may look
    assert page.locator("a.addlink").count() == 0
    assert page.locator("select[name=action] option[value=force_redemption_action]").count() == 0

    response = page.goto(f"{live_server.url}{LIST_PATH}add/")
    assert response.status == 403
