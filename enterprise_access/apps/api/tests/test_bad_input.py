"""
Bad input answers a 4xx with a message saying what to fix, never a 500 (issue 11, decision 0014): tampered cursors,
date-times UTC cannot hold, bodies over the API's size limit, JSON nested past the depth limit, odd filter values.
"""
import json
from base64 import b64encode
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enterprise_access.apps.api.limits import MAX_JSON_DEPTH, json_depth_exceeds
from enterprise_access.apps.subsidy_access_policy.models import AttemptOutcome, AttemptSource, RedemptionAttempt
from enterprise_access.devtools.demo import CUSTOMER_UUID
from enterprise_access.devtools.testing import build_world_policy

from .helpers import operator_client, redeem_url

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "independent"])

URL = "/api/v1/redemption-attempts/"
SUMMARY = URL + "summary/"
POLICIES = "/api/v1/subsidy-access-policies/"
A_POLICY = "a1b2c3d4-0000-4000-8000-00000000000a"
LIMIT = 64 * 1024
EDGE_DATETIMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+00:01",
                  "9999-12-31T23:59:59.999999-00:01"]


def cursor(**tokens):
    return b64encode(urlencode(tokens).encode()).decode()


def make_attempts(n):
    start = datetime(2026, 11, 2, 10, tzinfo=timezone.utc)
    return [RedemptionAttempt.objects.create(
        policy_uuid=A_POLICY, enterprise_customer_uuid=CUSTOMER_UUID, lms_user_id=101, content_key=f"run-{i}",
        source=AttemptSource.LEARNER_REDEEM_API, outcome=AttemptOutcome.REDEEMED, started_at=start + timedelta(i),
        can_redeem=True) for i in range(n)]


def assert_names(response, status, field):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert field in body, body
    return body


# ----- cursors --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tampered", [
    cursor(p="x"), cursor(o="0", p="x"), cursor(p="2026-13-45 99:00:00+00:00"), cursor(r="x"), cursor(o="-3"),
    cursor(p="0001-01-01 00:00:00+14:00"), cursor(p="9999-12-31 23:59:59-14:00"), cursor(z="1"),
    "!!!", "bm90IGEgY3Vyc29y", "%%%", "p=x", b64encode(b"\xff\xfe").decode(), "YQ",
])
def test_a_tampered_cursor_is_a_400_naming_the_cursor(tampered):
    make_attempts(2)
    body = assert_names(operator_client().get(URL, {"cursor": tampered}), 400, "cursor")
    assert "Invalid cursor" in body["cursor"][0]


def test_the_cursors_the_list_gives_out_still_page_through_everything():
    rows = make_attempts(5)
    client, seen, url = operator_client(), [], f"{URL}?page_size=2"
    while url:
        page = client.get(url)
        assert page.status_code == 200, page.content
        seen += [row["uuid"] for row in page.json()["results"]]
        url = page.json()["next"]
    assert seen == [str(r.uuid) for r in reversed(rows)]
    back = client.get(page.json()["previous"])
    assert back.status_code == 200 and len(back.json()["results"]) == 2


# ----- date-times and other filters ---------------------------------------------------------------------

@pytest.mark.parametrize("url", [URL, SUMMARY])
@pytest.mark.parametrize("name", ["created_after", "created_before"])
@pytest.mark.parametrize("value", EDGE_DATETIMES)
def test_a_datetime_utc_cannot_hold_is_a_400_naming_the_parameter(url, name, value):
    body = assert_names(operator_client().get(url, {name: value}), 400, name)
    assert "9999-12-31" in body[name][0]


@pytest.mark.parametrize("url", [URL, SUMMARY])
def test_the_widest_datetimes_utc_holds_are_accepted(url):
    make_attempts(1)
    response = operator_client().get(url, {"created_after": "0001-01-01T00:00:00Z",
                                           "created_before": "9999-12-31T23:59:59.999999Z"})
    assert response.status_code == 200, response.content
    assert (response.json()["total"] if url == SUMMARY else len(response.json()["results"])) == 1


@pytest.mark.parametrize("value", ["1.5", "1e40", "99999999999999999999999", "0", "-1", "NaN", "Infinity"])
def test_lms_user_id_filter_takes_a_positive_whole_number(value):
    assert_names(operator_client().get(URL, {"lms_user_id": value}), 400, "lms_user_id")


def _datetimes_with_offsets():
    offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
    return st.builds(lambda dt, tz: dt.replace(tzinfo=tz), st.datetimes(), offsets)


def _utc_holds(value):
    try:
        value.astimezone(timezone.utc)
        return True
    except OverflowError:
        return False


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(after=_datetimes_with_offsets(), before=_datetimes_with_offsets(), summary=st.booleans())
def test_property_any_datetime_filter_is_answered_200_or_a_400_naming_it(after, before, summary):
    response = operator_client().get(SUMMARY if summary else URL,
                                     {"created_after": after.isoformat(), "created_before": before.isoformat()})
    bad = [name for name, value in (("created_after", after), ("created_before", before)) if not _utc_holds(value)]
    if bad:
        assert response.status_code == 400 and set(response.json()) == set(bad), response.content
    else:
        assert response.status_code == 200, response.content


FILTER_NAMES = ["enterprise_customer_uuid", "policy_uuid", "lms_user_id", "content_key", "outcome", "reason",
                "source", "created_after", "created_before", "cursor", "page_size", "group_by"]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(query=st.dictionaries(st.sampled_from(FILTER_NAMES), st.text(max_size=40) | st.sampled_from(
    EDGE_DATETIMES + ["0001-01-01T00:00:00Z", "2026-11-02", "1e400", "-0", "😀", "\x00"]), max_size=5),
    summary=st.booleans())
def test_property_any_attempt_filters_are_answered_without_a_server_error(query, summary):
    response = operator_client().get(SUMMARY if summary else URL, query)
    assert response.status_code in (200, 400), (query, response.content)
    if response.status_code == 400:
        assert set(response.json()) <= set(FILTER_NAMES), response.content


# ----- body size -------------------------------------------------------------------------------------------

BODY_TARGETS = [("post", redeem_url(A_POLICY)), ("post", POLICIES), ("patch", f"{POLICIES}{A_POLICY}/")]


@pytest.fixture
def a_policy():
    """The policy the body-taking endpoints address, so they get as far as reading the body."""
    return build_world_policy(uuid=A_POLICY)


@pytest.mark.parametrize(("method", "url"), BODY_TARGETS)
@pytest.mark.parametrize("size", [LIMIT + 1, 3 * 1024 * 1024])
def test_a_body_over_the_limit_is_a_413_in_json(a_policy, method, url, size):
    body = json.dumps({"content_key": "x" * size}).encode()
    response = operator_client().generic(method.upper(), url, body, content_type="application/json")
    assert response.status_code == 413
    assert response.json() == {"detail": f"The request body is larger than this API accepts ({LIMIT} bytes); "
                                          "send less.", "code": "request_too_large", "max_bytes": LIMIT}


def test_a_body_at_the_limit_is_read(a_policy):
    padding = LIMIT - len(json.dumps({"lms_user_id": 101, "content_key": ""}))
    body = json.dumps({"lms_user_id": 101, "content_key": "x" * padding}).encode()
    assert len(body) == LIMIT
    response = operator_client().generic("POST", redeem_url(A_POLICY), body, content_type="application/json")
    assert response.status_code == 400 and "content_key" in response.json()  # too long a key: read, then refused


@override_settings(API_MAX_BODY_BYTES=10 * 1024 * 1024, DATA_UPLOAD_MAX_MEMORY_SIZE=1024)
def test_a_body_past_djangos_own_limit_is_a_413_too():
    response = operator_client().post(POLICIES, {"display_name": "x" * 2048})  # a form body: Django reads it
    assert response.status_code == 413 and response.json()["code"] == "request_too_large"


def test_a_body_declared_smaller_than_it_is_is_read_only_as_far_as_declared(a_policy):
    response = operator_client().generic("POST", redeem_url(A_POLICY), b'{"lms_user_id": 1}' + b" " * (2 * LIMIT),
                                         content_type="application/json", CONTENT_LENGTH="18")
    assert response.status_code == 400 and "content_key" in response.json()


# ----- JSON nesting ---------------------------------------------------------------------------------------

def nested(depth, inner="1"):
    return "[" * depth + inner + "]" * depth


@pytest.mark.parametrize(("method", "url"), BODY_TARGETS)
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 30_000])
def test_json_nested_past_the_limit_is_a_400(a_policy, method, url, depth):
    body = ('{"metadata": ' + nested(depth - 1) + "}").encode()
    assert len(body) < LIMIT
    response = operator_client().generic(method.upper(), url, body, content_type="application/json")
    body = assert_names(response, 400, "detail")
    assert f"deeper than {MAX_JSON_DEPTH} levels" in body["detail"]


def test_json_at_the_depth_limit_is_parsed(a_policy):
    body = '{"lms_user_id": 101, "content_key": "k", "metadata": {"geag_x": ' + nested(MAX_JSON_DEPTH - 2) + "}}"
    response = operator_client().generic("POST", redeem_url(A_POLICY), body, content_type="application/json")
    assert response.status_code == 400 and "metadata" in response.json(), response.content  # parsed, then refused


@pytest.mark.parametrize(("text", "deep"), [
    (nested(MAX_JSON_DEPTH), False), (nested(MAX_JSON_DEPTH + 1), True),
    ('{"a": "' + "[" * 100 + '"}', False), ('{"a": "\\"' + "{" * 100 + '"}', False),
    ('["\\\\", ' + nested(MAX_JSON_DEPTH) + "]", True), ("[]" * 1000, False),
])
def test_depth_counts_brackets_outside_strings_only(text, deep):
    assert json_depth_exceeds(text, MAX_JSON_DEPTH) is deep


@pytest.mark.parametrize("digits", ["١٠١", "１０１", "𝟏𝟎𝟏"])
def test_a_learner_id_in_other_digits_is_a_400(digits):
    # str.isdigit() takes Arabic-Indic, full-width and mathematical digits, which int() reads as 101.
    url = f"/api/v1/policy-redemption/enterprise-customer/{CUSTOMER_UUID}/can-redeem/"
    response = operator_client().get(url, {"content_key": "course-v1:DemoU+Cooking101+1T2027", "lms_user_id": digits})
    assert_names(response, 400, "lms_user_id")
