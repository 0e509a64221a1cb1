"""
Which user a signed token acts as (issue 11, identity; decision 0013).

The findings pinned here: a token with ``preferred_username: "admin"`` rewrote the local superuser (is_staff,
email, lms_user_id); a token without ``user_id`` acted under an lms_user_id stored from an earlier token; a token
whose ``roles`` held non-strings answered 500.
"""
import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from rest_framework.exceptions import AuthenticationFailed

from enterprise_access.apps.core.authentication import LmsJwtAuthentication, identity_from_claims, user_for_identity
from enterprise_access.apps.core.lms_ids import LMS_USER_ID_MAX
from enterprise_access.apps.core.models import User
from enterprise_access.devtools.tokens import build_claims, sign_claims

from .helpers import OPERATOR_ROLE, client_with_token

pytestmark = pytest.mark.django_db

URL = "/api/v1/subsidy-access-policies/"
# Derandomized, as the suite's other property tests: CI replays the same examples (longer runs: make fuzz).
FEW = hypothesis_settings(max_examples=50, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _token(**overrides):
    claims = build_claims(lms_user_id=555, roles=[OPERATOR_ROLE])
    claims.update(overrides)
    return sign_claims(claims)


def _without(claim, **overrides):
    claims = build_claims(lms_user_id=555, roles=[OPERATOR_ROLE])
    claims.update(overrides)
    del claims[claim]
    return sign_claims(claims)


@pytest.fixture
def superuser():
    """A local account as ``createsuperuser`` makes it: a password, no LMS identity."""
    return User.objects.create_superuser("admin", "admin@service.example", "a-long-local-password")


def _get(token):
    return client_with_token(token).get(URL)


def test_a_token_named_like_the_local_superuser_does_not_touch_it(client, superuser):
    token = _token(preferred_username="admin", email="attacker@evil.example", administrator=True)
    response = _get(token)
    assert response.status_code == 200, response.content
    superuser.refresh_from_db()
    assert (superuser.is_staff, superuser.is_superuser, superuser.email, superuser.lms_user_id) == (
        True, True, "admin@service.example", None)
    # The token acted as an account of its own, named apart from the superuser.
    token_user = User.objects.get(lms_user_id=555)
    assert token_user.pk != superuser.pk and token_user.username != "admin"
    assert not token_user.is_staff and not token_user.is_superuser and not token_user.has_usable_password()
    # Admin login still works for the superuser.
    assert client.login(username="admin", password="a-long-local-password")
    assert client.get("/admin/").status_code == 200


def test_a_token_whose_user_id_a_staff_account_carries_never_becomes_that_account(superuser):
    superuser.lms_user_id = 555  # e.g. left by the earlier bug, or typed by staff
    superuser.save()
    response = _get(_token(preferred_username="someone", email="someone@example.org"))
    assert response.status_code == 200
    superuser.refresh_from_db()
    assert superuser.is_staff and superuser.email == "admin@service.example"
    assert User.objects.filter(lms_user_id=555, is_staff=False).count() == 1


def test_the_administrator_claim_grants_no_admin_rights():
    assert _get(_token(administrator=True)).status_code == 200
    user = User.objects.get(lms_user_id=555)
    assert not user.is_staff and not user.is_superuser


def test_the_administrator_claim_does_not_unset_staff_either():
    staff = User.objects.create_user("ops", "ops@service.example", "pw-pw-pw-pw", is_staff=True, lms_user_id=555)
    assert _get(_token(preferred_username="ops", administrator=False)).status_code == 200
    staff.refresh_from_db()
    assert staff.is_staff


def test_a_token_without_user_id_gets_401_even_if_the_username_has_a_stored_lms_id():
    assert _get(_token(preferred_username="pat")).status_code == 200
    assert User.objects.get(username="pat").lms_user_id == 555
    response = _get(_without("user_id", preferred_username="pat"))
    assert response.status_code == 401
    assert "user_id" in response.json()["detail"]


@pytest.mark.parametrize("value", ["555", 555.0, True, False, 0, -5, LMS_USER_ID_MAX + 1, 2**63, 10**40, None,
                                   [555], {"id": 555}])
def test_a_user_id_that_is_not_an_lms_id_gets_401_with_a_message(value):
    response = _get(_token(user_id=value))
    assert response.status_code == 401, response.content
    assert "user_id" in response.json()["detail"]
    assert not User.objects.exists()


@pytest.mark.parametrize("roles", [[1], [None], [{"role": "x"}], [["enterprise_openedx_operator:*"]],
                                   "enterprise_openedx_operator:*", {"enterprise_openedx_operator": "*"}, 7,
                                   [""], ["x" * 301], ["enterprise_learner:a"] * 501])
def test_a_roles_claim_of_the_wrong_shape_gets_401_with_a_message(roles):
    response = _get(_token(roles=roles))
    assert response.status_code == 401, response.content
    assert "roles" in response.json()["detail"]


@pytest.mark.parametrize("email", [5, ["a@example.org"], {"a": 1}, True, "a" * 250 + "@x.org", "pat\x00@example.org",
                                   "pat\n@example.org"])
def test_an_email_claim_that_is_not_a_short_string_gets_401(email):
    response = _get(_token(email=email))
    assert response.status_code == 401
    assert "email" in response.json()["detail"]


@pytest.mark.parametrize("username", [5, ["pat"], {"a": 1}, True])
def test_a_username_claim_that_is_not_a_string_gets_401(username):
    response = _get(_token(preferred_username=username))
    assert response.status_code == 401
    assert "preferred_username" in response.json()["detail"]


def test_the_same_lms_id_under_another_username_is_the_same_user():
    _get(_token(preferred_username="pat", email="pat@example.org"))
    _get(_token(preferred_username="pat-renamed", email="pat@new.example"))
    user = User.objects.get(lms_user_id=555)
    assert user.username == "pat" and user.email == "pat@new.example"
    assert User.objects.count() == 1


def test_a_username_another_account_holds_is_not_taken_over():
    other = User.objects.create_user("pat", "pat@elsewhere.example", lms_user_id=777)
    assert _get(_token(preferred_username="pat", email="pat@example.org")).status_code == 200
    mine = User.objects.get(lms_user_id=555)
    assert mine.pk != other.pk and mine.username == "lms-user-555"
    other.refresh_from_db()
    assert other.email == "pat@elsewhere.example"


def test_a_disabled_token_user_gets_401():
    _get(_token())
    User.objects.filter(lms_user_id=555).update(is_active=False)
    response = _get(_token())
    assert response.status_code == 401 and "disabled" in response.json()["detail"]


# ----- properties over the claims ----------------------------------------------------------------------------

JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40))
ANY_JSON = st.recursive(JSON_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                              st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                        max_leaves=6)
USER_IDS = st.one_of(st.integers(min_value=-5, max_value=LMS_USER_ID_MAX + 5), st.integers(min_value=1, max_value=300),
                     ANY_JSON)
ROLES = st.one_of(st.lists(st.sampled_from([OPERATOR_ROLE, "enterprise_learner:*", "enterprise_admin:x"]), max_size=3),
                  st.lists(ANY_JSON, max_size=3), ANY_JSON)
USERNAMES = st.one_of(st.sampled_from(["admin", "pat", "", " ", "x" * 151]), st.text(max_size=20), ANY_JSON)
EMAILS = st.one_of(st.emails(), st.text(max_size=20), ANY_JSON)


def _valid_lms_id(value):
    return type(value) is int and 1 <= value <= LMS_USER_ID_MAX


@FEW
@given(user_id=USER_IDS, roles=ROLES, username=USERNAMES, email=EMAILS, administrator=ANY_JSON)
def test_property_a_token_maps_to_its_lms_identity_or_is_refused(superuser, user_id, roles, username, email,
                                                                  administrator):
    payload = {**build_claims(lms_user_id=1), "user_id": user_id, "roles": roles, "preferred_username": username,
               "email": email, "administrator": administrator}
    before = User.objects.values().get(pk=superuser.pk)
    try:
        user = LmsJwtAuthentication().authenticate_credentials(payload)
    except AuthenticationFailed as refused:
        assert str(refused.detail)  # a message, whatever the claims
        assert not _valid_lms_id(user_id) or not isinstance(roles, (list, type(None))) \
            or not isinstance(email, (str, type(None))) or not (email or "").isprintable() \
            or not isinstance(username, (str, type(None))) \
            or any(not isinstance(r, str) or not r for r in roles or [])
    else:
        assert _valid_lms_id(user_id) and user.lms_user_id == user_id
        assert not user.is_staff and not user.is_superuser and user.pk != superuser.pk
    assert User.objects.values().get(pk=superuser.pk) == before


@FEW
@given(user_id=USER_IDS, roles=ROLES, email=EMAILS)
def test_property_no_token_claims_answer_a_5xx(user_id, roles, email):
    response = _get(_token(user_id=user_id, roles=roles, email=email))
    assert response.status_code in (200, 401, 403), response.content
    if response.status_code == 401:
        assert response.json()["detail"]


def test_identity_from_claims_keeps_a_usable_username_only():
    assert identity_from_claims({"user_id": 5, "preferred_username": " pat "}).username == "pat"
    assert identity_from_claims({"user_id": 5, "preferred_username": "x" * 151}).username == ""
    assert identity_from_claims({"user_id": 5, "username": "legacy"}).username == "legacy"


def test_asking_again_for_one_learner_finds_the_same_account():
    identity = identity_from_claims({"user_id": 42, "preferred_username": "pat"})
    first = user_for_identity(identity)
    assert user_for_identity(identity).pk == first.pk


@pytest.mark.parametrize("role", ["enterprise_admin:x", "enterprise_openedx_operator:not-a-uuid",
                                  "enterprise_learner:", "enterprise_admin:'; DROP TABLE x; --"])
def test_a_role_whose_context_is_not_a_customer_uuid_grants_nothing_and_answers_no_5xx(role):
    # Found by the property above: a non-uuid context reached a uuid filter and answered 500.
    response = _get(_token(roles=[role]))
    assert response.status_code == 403, response.content


def test_a_role_context_in_another_spelling_of_the_same_uuid_still_matches():
    from enterprise_access.apps.subsidy_access_policy.tests.factories import PerLearnerEnrollmentPolicyFactory
    from enterprise_access.devtools import demo

    policy = PerLearnerEnrollmentPolicyFactory(enterprise_customer_uuid=demo.CUSTOMER_UUID)
    spelled = demo.CUSTOMER_UUID.replace("-", "").upper()
    response = _get(_token(roles=[f"enterprise_admin:{spelled}"]))
    assert response.status_code == 200
    assert [row["uuid"] for row in response.json()["results"]] == [str(policy.uuid)]
    assert client_with_token(_token(roles=[f"enterprise_admin:{spelled}"])).get(
        f"{URL}{policy.uuid}/").status_code == 200
