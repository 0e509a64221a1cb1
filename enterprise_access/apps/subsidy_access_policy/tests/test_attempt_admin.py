"""The attempt admin: the change page and its links, the list's columns, its search and its paginator."""
import re
from html import unescape

import pytest
from django.urls import reverse

from enterprise_access.apps.subsidy_access_policy.models import AttemptOutcome

from .admin_world import build_admin_world, make_attempt

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "independent"])


@pytest.fixture
def world(policy_world):
    return build_admin_world(days=1)


@pytest.fixture
def support(client, world):
    client.force_login(world.people.viewer)
    return client


def change_page(client, attempt):
    response = client.get(reverse("admin:subsidy_access_policy_redemptionattempt_change", args=[attempt.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_change_page_links_to_the_policy_as_it_was(support, world):
    policy = world.policies["per_learner_enrollment"]
    attempt = make_attempt(policy, outcome=AttemptOutcome.REDEEMED, started_at=world.attempts[0].started_at)
    policy.display_name = "Renamed after the attempt"
    policy.save()

    html = change_page(support, attempt)
    link = re.search(r'<a href="([^"]+)">history row (\d+)</a>', html)
    assert link and int(link.group(2)) == attempt.policy_history_id
    row_page = support.get(unescape(link.group(1)))
    assert row_page.status_code == 200
    content = row_page.content.decode()
    assert "Demo per learner enrollment credit" in content and "Renamed after the attempt" not in content


def test_change_page_of_a_row_whose_policy_history_is_gone(support, world):
    gone = world.attempts[-1]
    gone.refresh_from_db()
    assert "(no longer stored)" in change_page(support, gone)


# ----- the list ---------------------------------------------------------------------------------------

LIST_URL = "/admin/subsidy_access_policy/redemptionattempt/"


def rows_of(response):
    """(outcome label, why) of each row on a list page."""
    html = response.content.decode()
    outcomes = re.findall(r'class="attempt-outcome"[^>]*>([^<]+)<', html)
    whys = [unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r'<td class="field-why">(.*?)</td>', html, re.S)]
    return list(zip(outcomes, whys))


def test_list_shows_short_outcomes_and_why(support, world):
    response = support.get(LIST_URL)
    assert response.status_code == 200
    rows = set(rows_of(response))
    assert ("subsidy refused", "subsidy 422 enrollment_error") in rows
    assert ("upstream down", "lms timeout") in rows
    assert ("upstream down", "subsidy 503 http_503") in rows
    assert ("upstream down", "cache_unavailable") in rows
    assert ("policy busy", "policy_lock_busy") in rows
    assert ("not redeemable", "content_not_in_catalog") in rows
    assert ("error", "unexpected_error") in rows
    assert ("redeemed", "learner_already_redeemed_content") in rows
    # Stored values are untouched: the filter and the API still speak in codes.
    filtered = support.get(LIST_URL, {"outcome": "subsidy_refused"})
    assert [outcome for outcome, _ in rows_of(filtered)] == ["subsidy refused"]


def test_list_names_policies_without_a_query_per_row(support, world):
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    def queries_for_list():
        with CaptureQueriesContext(connections["default"]) as default, \
                CaptureQueriesContext(connections["independent"]) as independent:
            response = support.get(LIST_URL)
        assert response.status_code == 200
        return len(default) + len(independent), response

    before, response = queries_for_list()
    assert "Demo per learner spend credit" in response.content.decode()
    policy = world.policies["assigned"]
    for n in range(20):
        make_attempt(policy, outcome=AttemptOutcome.REDEEMED, started_at=world.attempts[0].started_at,
                     lms_user_id=900 + n)
    after, _ = queries_for_list()
    assert after == before


def test_the_count_stops_at_the_cap(support, world, monkeypatch):
    from enterprise_access.apps.subsidy_access_policy.admin import attempt as attempt_admin

    monkeypatch.setattr(attempt_admin, "COUNT_CAP", 5)
    html = support.get(LIST_URL).content.decode()
    assert "6 results" in html and "More than 5 attempts match" in html
    monkeypatch.setattr(attempt_admin, "COUNT_CAP", 10_000)
    assert "More than" not in support.get(LIST_URL).content.decode()


def test_list_sorts_by_start_time_only(support, world):
    html = support.get(LIST_URL).content.decode()
    assert re.findall(r'<th scope="col" class="sortable[^"]*column-(\w+)', html) == ["started"]


# ----- search ---------------------------------------------------------------------------------------

def search(client, query, *, ql=True):
    params = {"q": query, **({"q-l": "on"} if ql else {})}
    response = client.get(LIST_URL, params)
    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    return rows_of(response), messages


def test_query_search_on_indexed_columns(support, world):
    rows, messages = search(support, 'outcome = "not_redeemable" and reason in ("content_not_in_catalog", '
                                     '"policy_spend_limit_reached")')
    assert messages == [] and sorted(why for _, why in rows) == ["content_not_in_catalog",
                                                                "policy_spend_limit_reached"]
    rows, _ = search(support, 'content_key startswith "course-v1:DemoU+Gardening"')
    assert len(rows) == 1
    rows, _ = search(support, f'lms_user_id = 101 and started_at > "{world.attempts[0].started_at:%Y-%m-%d}"')
    assert rows


@pytest.mark.parametrize("query, hint", [
    ('content_key ~ "Cooking"', '"content_key" can be compared with =, !=, in, not in, startswith'),
    ('error_code endswith "error"', '"error_code" can be compared with =, !=, in, not in only'),
    ('error_status = 422', "Unknown field: error_status"),  # not indexed: not offered
    ('policy.display_name = "x"', "Unknown field: policy"),  # no joins
    ('outcome = ', "Unexpected end of input"),
])
def test_query_search_refuses_what_would_scan_the_table(support, world, query, hint):
    rows, messages = search(support, query)
    assert rows == []
    assert len(messages) == 1 and hint in unescape(messages[0]), messages


def test_a_bare_value_is_looked_up_as_is(support, world):
    redeemed = next(a for a in world.attempts if a.transaction_uuid)
    rows, messages = search(support, str(redeemed.transaction_uuid))
    assert messages == [] and len(rows) == 1
    rows, _ = search(support, "102")
    assert [outcome for outcome, _ in rows] == ["redeemed"]  # the forced redemption's learner
    rows, _ = search(support, "102", ql=False)
    assert len(rows) == 1


def test_query_completion_offers_only_indexed_columns(support, world):
    from enterprise_access.apps.subsidy_access_policy.admin.attempt_search import INDEXED_FIELDS

    response = support.get(LIST_URL + "introspect/")
    assert response.status_code == 200
    fields = response.json()["models"]["subsidy_access_policy.redemptionattempt"]
    assert set(fields) == set(INDEXED_FIELDS)
    assert fields["outcome"]["options"] == list(AttemptOutcome.values)
    assert "content_not_in_catalog" in fields["reason"]["options"]
    suggestions = support.get(LIST_URL + "suggestions/", {"field": "content_key", "search": "Cook"})
    assert suggestions.status_code == 400  # no SELECT DISTINCT over the table


def test_every_indexed_column_leads_an_index(world):
    """The search's promise, checked against the model: each offered column is first in some index."""
    from enterprise_access.apps.subsidy_access_policy.admin.attempt_search import INDEXED_FIELDS
    from enterprise_access.apps.subsidy_access_policy.models import RedemptionAttempt

    meta = RedemptionAttempt._meta
    leading = {index.fields[0] for index in meta.indexes}
    leading |= {f.name for f in meta.fields if f.db_index or f.primary_key or f.unique}
    assert set(INDEXED_FIELDS) <= leading


def test_links_into_the_list_filter_it(support, world):
    """The learner column's link, and the forced-redemption page's "attempts" link, open filtered lists."""
    learner = support.get(LIST_URL, {"lms_user_id": "102"})
    assert learner.status_code == 200 and len(rows_of(learner)) == 1
    record = world.forced["redeemed"]
    forced_page = support.get(reverse("admin:subsidy_access_policy_forcedpolicyredemption_change", args=[record.pk]))
    link = re.search(r'href="([^"]*redemptionattempt/\?[^"]+)"', forced_page.content.decode()).group(1)
    attempts = support.get(unescape(link))
    assert attempts.status_code == 200 and [outcome for outcome, _ in rows_of(attempts)] == ["redeemed"]
