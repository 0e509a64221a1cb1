"""
Every SQL block in docs/analytics.rst runs as written on the test database and returns the rows worked out by hand
from the attempts seeded here. ``make test`` runs it on SQLite, CI again on MariaDB: the same expectations hold
on both, so the queries an analyst copies give the same answer on either.

The dialect-specific forms the page lists (week start, ten minutes ago, a summed condition) are checked for the
database the suite runs on.
"""
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest
from django.db import connection

from .factories import PerLearnerSpendPolicyFactory, RedemptionAttemptFactory

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "independent"])

ANALYTICS = Path(__file__).resolve().parents[4] / "docs" / "analytics.rst"

CUSTOMER = UUID("c0ffee00-0000-4000-8000-000000000001")  # the customer the page's queries name
OTHER_CUSTOMER = UUID("d0000000-0000-4000-8000-000000000002")
P1 = UUID("a1b2c3d4-0000-4000-8000-000000000001")  # the policy the page's queries name
P2 = UUID("a1b2c3d4-0000-4000-8000-000000000002")
P3 = UUID("b1b2c3d4-0000-4000-8000-000000000003")
POLICY_CUSTOMER = {P1: CUSTOMER, P2: CUSTOMER, P3: OTHER_CUSTOMER}


def at(text):
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def attempt(started, policy, outcome, lms_user_id, **fields):
    fields.setdefault("can_redeem", outcome != "not_redeemable")
    return RedemptionAttemptFactory(started_at=at(started), policy_uuid=policy,
                                    enterprise_customer_uuid=POLICY_CUSTOMER[policy], outcome=outcome,
                                    lms_user_id=lms_user_id, **fields)


@pytest.fixture
def seeded():
    """Attempts around October and November 2026, each there to be counted (or not) by a query below."""
    policy = PerLearnerSpendPolicyFactory(uuid=P1, enterprise_customer_uuid=CUSTOMER, spend_limit=500_000,
                                          per_learner_spend_limit=20_000, active=True)
    before_raise = policy.history.latest().history_id
    policy.spend_limit = 800_000
    policy.save()
    after_raise = policy.history.latest().history_id

    refusal = {"outcome": "not_redeemable"}
    # refusals (P1's first three under the 500,000 limit, the rest under 800,000; the first has no history row)
    attempt("2026-09-30 23:59:59", P1, lms_user_id=101, reason="content_not_in_catalog", **refusal)
    attempt("2026-10-05 10:00:00", P1, lms_user_id=102, reason="content_not_in_catalog",
            policy_history_id=before_raise, **refusal)
    attempt("2026-10-20 11:00:00", P1, lms_user_id=103, reason="content_not_in_catalog",
            policy_history_id=before_raise, **refusal)
    attempt("2026-10-21 12:00:00", P1, lms_user_id=104, reason="policy_spend_limit_reached",
            policy_history_id=after_raise, **refusal)
    attempt("2026-11-02 09:00:00", P1, lms_user_id=105, reason="policy_spend_limit_reached",
            policy_history_id=after_raise, **refusal)
    attempt("2026-11-03 09:30:00", P2, lms_user_id=106, reason="beyond_enrollment_deadline", **refusal)
    attempt("2026-12-01 00:00:00", P1, lms_user_id=107, reason="content_not_in_catalog",
            policy_history_id=after_raise, **refusal)
    # successes
    attempt("2026-11-02 10:00:00", P1, "redeemed", 201, can_redeem_ms=20, subsidy_call_ms=100)
    attempt("2026-11-02 11:00:00", P1, "redeemed", 202, can_redeem_ms=30, subsidy_call_ms=200)
    attempt("2026-11-02 14:00:00", P3, "redeemed", 203, can_redeem_ms=40, subsidy_call_ms=50)
    attempt("2026-11-03 08:00:00", P1, "redeemed", 204, can_redeem_ms=10, already_redeemed=True)
    # failures
    attempt("2026-11-02 12:00:00", P2, "upstream_unavailable", 301, error_code="timeout",
            error_message="enterprise-subsidy: read timed out")
    attempt("2026-11-03 15:00:00", P2, "subsidy_refused", 302, error_code="enrollment_error", error_status=422,
            error_message="enterprise-subsidy: learner already enrolled")
    attempt("2026-11-04 09:00:00", P1, "policy_busy", 303, error_code="policy_lock_busy",
            error_message="policy busy")
    attempt("2026-11-04 10:00:00", P3, "upstream_unavailable", 304, error_code="connection_error",
            error_message="connection refused")
    attempt("2026-11-05 10:00:00", P2, "upstream_unavailable", 305, error_code="http_error", error_status=503,
            error_message="enterprise-catalog: 503 Service Unavailable")
    attempt("2026-11-05 11:00:00", P3, "upstream_unavailable", 306, error_code="timeout",
            error_message="enterprise-subsidy: read timed out")
    # runs that died, and two that are not old enough to count as dead
    attempt("2026-11-03 13:00:00", P1, "in_progress", 401, can_redeem=None)
    attempt("2026-11-10 07:00:00", P1, "in_progress", 402, can_redeem=None)
    attempt("2026-11-20 11:49:59", P2, "in_progress", 403, can_redeem=None)
    attempt("2026-11-20 11:50:00", P2, "in_progress", 404, can_redeem=None)


# Keyed by a fragment only that block contains; rows as worked out from ``seeded``.
EXPECTED = {
    "AS refusals": [
        (P1, "2026-10", "content_not_in_catalog", 2),
        (P1, "2026-10", "policy_spend_limit_reached", 1),
        (P1, "2026-11", "policy_spend_limit_reached", 1),
        (P2, "2026-11", "beyond_enrollment_deadline", 1),
    ],
    "AS success_pct": [  # day, runs, redeemed, success %, failed on our side (customer c0ffee00 only)
        ("2026-11-02", 4, 2, 50.0, 1),
        ("2026-11-03", 3, 1, 33.3, 0),
        ("2026-11-04", 1, 0, 0.0, 1),
        ("2026-11-05", 1, 0, 0.0, 1),
        ("2026-12-01", 1, 0, 0.0, 0),
    ],
    "AS slowest_upstream_ms": [
        ("2026-11-02", 3, 30.0, 116.7, 230),
        ("2026-11-03", 1, 10.0, None, None),
    ],
    "AS service": [
        ("enterprise-subsidy", "timeout", None, 2),
        ("connection refused", "connection_error", None, 1),
        ("enterprise-catalog", "http_error", 503, 1),
        ("enterprise-subsidy", "enrollment_error", 422, 1),
    ],
    "h.per_learner_spend_limit": [
        ("2026-12-01 00:00:00", 107, "content_not_in_catalog", 800_000, 20_000, 1),
        ("2026-11-02 09:00:00", 105, "policy_spend_limit_reached", 800_000, 20_000, 1),
        ("2026-10-21 12:00:00", 104, "policy_spend_limit_reached", 800_000, 20_000, 1),
        ("2026-10-20 11:00:00", 103, "content_not_in_catalog", 500_000, 20_000, 1),
        ("2026-10-05 10:00:00", 102, "content_not_in_catalog", 500_000, 20_000, 1),
    ],
    "AS died": [
        (P1, 2, "2026-11-03 13:00:00"),
        (P2, 1, "2026-11-20 11:49:59"),
    ],
}

UUID_TEXT = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$")


def comparable(value):
    """
    The value as either database means it. Only the client's rendering differs: MariaDB hands back uuids with
    dashes, dates as dates and sums as decimals; SQLite hands back uuids as stored, dates as text, floats.
    """
    if isinstance(value, str) and UUID_TEXT.match(value):
        return UUID(value)
    if isinstance(value, datetime):
        return value.isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def sql_blocks(text):
    """The body of every ``.. code-block:: sql`` directive, dedented, without the closing semicolon."""
    blocks, lines = [], text.splitlines()
    for index, line in enumerate(lines):
        if line.strip() != ".. code-block:: sql":
            continue
        body = []
        for following in lines[index + 1:]:
            if following.strip() and not following.startswith("   "):
                break
            body.append(following[3:])
        blocks.append("\n".join(body).strip().rstrip(";"))
    return blocks


def run(sql):
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [tuple(comparable(value) for value in row) for row in cursor.fetchall()]


def test_every_sql_block_on_the_page_has_an_expectation():
    blocks = sql_blocks(ANALYTICS.read_text())
    keys = [[key for key in EXPECTED if key in block] for block in blocks]
    assert all(len(found) == 1 for found in keys), list(zip(keys, blocks))
    assert sorted(found[0] for found in keys) == sorted(EXPECTED)


@pytest.mark.parametrize("key", list(EXPECTED))
def test_worked_query_returns_the_rows_worked_out_by_hand(seeded, key):
    (sql,) = [block for block in sql_blocks(ANALYTICS.read_text()) if key in block]
    assert run(sql) == EXPECTED[key]


def test_uuid_literals_on_the_page_are_in_the_stored_form():
    """A dashed literal matches nothing on SQLite (or MySQL): the page writes them as 32 hex digits."""
    for block in sql_blocks(ANALYTICS.read_text()):
        for literal in re.findall(r"'([0-9a-fA-F-]{32,36})'", block):
            assert re.fullmatch(r"[0-9a-f]{32}", literal), literal


# ---- the forms that differ by database --------------------------------------------------------------------------

def dialect_form(subject):
    """The page's inline form of ``subject`` for the database under test."""
    name = {"mysql": "MariaDB", "sqlite": "SQLite"}[connection.vendor]
    section = ANALYTICS.read_text().split("Forms that differ by database", 1)[1]
    bullet = next(item for item in section.split("\n- ") if item.startswith(subject))
    bullet = " ".join(bullet.split())
    match = re.search(rf"``([^`]+)`` on (?:\w+ and )?{name}\b", bullet)
    assert match, f"no form for {name} in: {bullet}"
    return match.group(1)


def test_dialect_week_start_is_the_monday(seeded):
    expression = dialect_form("The Monday starting a row's week")
    rows = run(f"SELECT {expression}, started_at FROM subsidy_access_policy_redemptionattempt "
               f"WHERE lms_user_id IN (105, 304, 306)")  # a Monday, a Wednesday, a Thursday (2026-11-02, -04, -05)
    assert sorted(row[0] for row in rows) == ["2026-11-02"] * 3


def test_dialect_ten_minutes_ago_is_utc():
    expression = dialect_form("Ten minutes ago, in UTC")
    (value,) = run(f"SELECT {expression}")[0]
    moment = datetime.fromisoformat(str(value)).replace(tzinfo=timezone.utc)
    expected = datetime.now(timezone.utc) - timedelta(minutes=10)
    assert abs((moment - expected).total_seconds()) < 120, (value, expected)


def test_dialect_summed_condition_counts_rows(seeded):
    expression = dialect_form("A boolean condition summed directly")
    (value,) = run(f"SELECT {expression} FROM subsidy_access_policy_redemptionattempt")[0]
    assert value == 4
