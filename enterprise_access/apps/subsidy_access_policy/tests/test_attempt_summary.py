"""
The admin's charts of attempts: the page draws the list's filters with the REST summary's numbers
(``selectors.attempt_summary``), and the SVG charts themselves.
"""
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from enterprise_access.apps.api.tests.helpers import operator_client
from enterprise_access.apps.subsidy_access_policy.admin import charts

from .admin_world import build_admin_world

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "independent"])

# ----- the admin's charts page ---------------------------------------------------------------------

SUMMARY_URL = "/admin/subsidy_access_policy/redemptionattempt/summary/"


@pytest.fixture
def world(policy_world):
    return build_admin_world(days=4)


@pytest.fixture
def support(client, world):
    client.force_login(world.people.viewer)
    return client


def test_charts_page_has_the_rest_summarys_numbers_for_the_same_filters(support, world):
    policy = world.policies["per_learner_enrollment"]
    today = timezone.localdate()
    since, until = today - timedelta(days=3), today + timedelta(days=1)
    # As the list's date filter writes them.
    page = support.get(SUMMARY_URL, {"policy_uuid": str(policy.uuid), "started_at__gte": f"{since} 00:00:00+00:00",
                                     "started_at__lt": f"{until} 00:00:00+00:00"})
    assert page.status_code == 200
    api = operator_client().get("/api/v1/redemption-attempts/summary/", {
        "policy_uuid": str(policy.uuid), "created_after": f"{since}T00:00:00Z", "created_before": f"{until}T00:00:00Z",
        "group_by": "day"}).json()
    shown = {key: value for key, value in page.context["summary"].items() if key != "by_error_code"}
    for group in shown["groups"]:
        group.pop("by_error_code")
    assert api["total"] > 0 and shown == api
    html = page.content.decode()
    assert 'class="chart chart-outcomes-per-day"' in html
    assert f"<strong>{api['total']}</strong> attempt" in html


def test_charts_page_follows_the_lists_filters_and_search(support, world):
    everything = support.get(SUMMARY_URL).context["summary"]
    assert everything["total"] == len(world.attempts)
    refused = support.get(SUMMARY_URL, {"outcome": "subsidy_refused"}).context["summary"]
    assert refused["by_outcome"] == {"subsidy_refused": 1} and refused["by_error_code"] == {"enrollment_error": 1}
    searched = support.get(SUMMARY_URL, {"q": 'error_code in ("timeout", "http_503")', "q-l": "on"})
    assert searched.context["summary"]["total"] == 2
    # The list links to the charts with its own query string.
    listed = support.get("/admin/subsidy_access_policy/redemptionattempt/", {"outcome": "subsidy_refused"})
    assert f'href="{SUMMARY_URL}?outcome=subsidy_refused"' in listed.content.decode()


def test_charts_page_refuses_bad_filters_with_a_400(support, world):
    response = support.get(SUMMARY_URL, {"started_at__gte": "not-a-date"})
    assert response.status_code == 400
    assert "These filters are not valid here" in response.content.decode()


def test_charts_page_loads_nothing_from_another_host(support, world):
    html = support.get(SUMMARY_URL).content.decode()
    external = [url for url in re.findall(r'(?:src|href)="([^"]+)"', html) if re.match(r"(https?:)?//", url)]
    assert external == []


def test_charts_page_needs_view_permission(client, world):
    from .factories import UserFactory

    client.force_login(UserFactory(is_staff=True))  # staff, but no permission on attempts
    assert client.get(SUMMARY_URL).status_code == 403


# ----- the SVG ----------------------------------------------------------------------------------------

def day_summary(groups):
    by_outcome = {}
    for group in groups:
        for outcome, n in group["by_outcome"].items():
            by_outcome[outcome] = by_outcome.get(outcome, 0) + n
    return {"by_outcome": by_outcome, "groups": groups}


def test_outcomes_chart_draws_a_bar_per_day_with_gaps_filled():
    summary = day_summary([
        {"group": "2026-11-02", "total": 3, "by_outcome": {"redeemed": 2, "not_redeemable": 1}},
        {"group": "2026-11-05", "total": 1, "by_outcome": {"subsidy_refused": 1}},
    ])
    svg = str(charts.outcomes_per_day_svg(summary))
    assert svg.startswith('<svg class="chart chart-outcomes-per-day"')
    tooltips = re.findall(r"<title>([^<]+)</title></rect>", svg)
    assert tooltips == ["2026-11-02: 2 redeemed", "2026-11-02: 1 not redeemable", "2026-11-05: 1 subsidy refused"]
    assert all(day in svg for day in ("Nov 02", "Nov 03", "Nov 04", "Nov 05"))  # every day, attempts or not
    assert "redeemed (2)" in svg and "subsidy refused (1)" in svg


def test_outcomes_chart_escapes_unknown_outcomes_and_says_when_empty():
    summary = day_summary([{"group": "2026-11-02", "total": 1, "by_outcome": {"<b>odd</b>": 1}}])
    svg = str(charts.outcomes_per_day_svg(summary))
    assert "<b>" not in svg and "&lt;b&gt;odd&lt;/b&gt;" in svg
    assert "No attempts match" in str(charts.outcomes_per_day_svg({"by_outcome": {}, "groups": []}))


def test_round_steps_on_the_y_axis():
    assert [charts.nice_step(n) for n in (1, 3, 5, 7, 12, 48, 230, 9999)] == [1, 1, 1, 2, 5, 10, 50, 2000]


def test_top_counts_chart():
    svg = str(charts.top_counts_svg({"timeout": 3, "http_503": 7, "enrollment_error": 3}, title="Top error codes",
                                    color="#000", limit=2))
    assert re.findall(r"<title>([^<]+)</title></rect>", svg) == ["http_503: 7", "enrollment_error: 3"]
    assert "none." in str(charts.top_counts_svg({}, title="Top reasons", color="#000"))
