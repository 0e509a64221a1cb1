"""
A forced redemption names a real LMS learner: ``lms_user_id`` within 1..2147483647 (issue 11: -5, 0 and 2^40 were
saved). The admin form says what to fix; the model's full_clean refuses; the database refuses every other write.
"""
import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, transaction
from django.urls import reverse

from enterprise_access.apps.core.lms_ids import LMS_USER_ID_MAX, LMS_USER_ID_RANGE_MESSAGE
from enterprise_access.apps.subsidy_access_policy.models import ForcedPolicyRedemption

from .factories import ForcedRedemptionFactory, PerLearnerEnrollmentPolicyFactory, UserFactory

pytestmark = pytest.mark.django_db

OUT_OF_RANGE = [-5, 0, 2**31, 2**40]
ADD_URL = "admin:subsidy_access_policy_forcedpolicyredemption_add"


@pytest.fixture
def forcer(client):
    user = UserFactory(is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="force_redemption"),
                              Permission.objects.get(codename="add_forcedpolicyredemption"),
                              Permission.objects.get(codename="view_forcedpolicyredemption"))
    client.force_login(user)
    return user


def _form(policy, lms_user_id):
    # Saved without redeeming: only the input's validation is under test.
    return {"subsidy_access_policy": str(policy.uuid), "lms_user_id": str(lms_user_id),
            "course_run_key": "course-v1:DemoU+Cooking101+2T2026", "content_price_cents": "",
            "wait_to_redeem": "on"}


@pytest.mark.parametrize("lms_user_id", OUT_OF_RANGE)
def test_the_admin_form_refuses_an_id_outside_the_lms_range_and_says_why(client, forcer, lms_user_id):
    policy = PerLearnerEnrollmentPolicyFactory()
    response = client.post(reverse(ADD_URL), _form(policy, lms_user_id))
    assert response.status_code == 200  # the form again, with its errors
    assert LMS_USER_ID_RANGE_MESSAGE in response.content.decode().replace("&#x27;", "'")
    assert not ForcedPolicyRedemption.objects.exists()


@pytest.mark.parametrize("lms_user_id", [1, LMS_USER_ID_MAX])
def test_the_admin_form_saves_the_edges_of_the_range(client, forcer, lms_user_id):
    policy = PerLearnerEnrollmentPolicyFactory()
    response = client.post(reverse(ADD_URL), _form(policy, lms_user_id))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert ForcedPolicyRedemption.objects.get().lms_user_id == lms_user_id


@pytest.mark.parametrize("lms_user_id", OUT_OF_RANGE)
def test_full_clean_refuses_an_id_outside_the_lms_range(lms_user_id):
    record = ForcedRedemptionFactory.build(subsidy_access_policy=PerLearnerEnrollmentPolicyFactory(),
                                           lms_user_id=lms_user_id)
    with pytest.raises(ValidationError) as caught:
        record.full_clean()
    assert caught.value.message_dict["lms_user_id"] == [LMS_USER_ID_RANGE_MESSAGE]


@pytest.mark.parametrize("lms_user_id", OUT_OF_RANGE)
def test_the_database_refuses_an_id_outside_the_lms_range_on_create(lms_user_id):
    policy = PerLearnerEnrollmentPolicyFactory()
    # MariaDB refuses a value past INT as a data error before the check constraint is reached.
    with pytest.raises((IntegrityError, DataError)), transaction.atomic():
        ForcedPolicyRedemption.objects.create(subsidy_access_policy=policy, lms_user_id=lms_user_id,
                                              course_run_key="course-v1:DemoU+Cooking101+2T2026")
    assert not ForcedPolicyRedemption.objects.exists()


@pytest.mark.parametrize("lms_user_id", OUT_OF_RANGE)
def test_the_database_refuses_an_update_to_an_id_outside_the_lms_range(lms_user_id):
    record = ForcedRedemptionFactory(subsidy_access_policy=PerLearnerEnrollmentPolicyFactory(), lms_user_id=101)
    with pytest.raises((IntegrityError, DataError)), transaction.atomic():
        ForcedPolicyRedemption.objects.filter(pk=record.pk).update(lms_user_id=lms_user_id)
    record.refresh_from_db()
    assert record.lms_user_id == 101
