"""
Support staff reading attempts in a real browser at a laptop's size (1366x768): the list answers "why" without
sideways scrolling, and the charts draw the list's filters. Each test writes its screenshot under
``var/screenshots/`` for a person to look at.
"""
import pytest
from django.conf import settings
from django.test import Client

from ..admin_world import build_admin_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases=["default", "independent"])]

SCREENSHOTS = settings.VAR_DIR / "screenshots"
LIST_PATH = "/admin/subsidy_access_policy/redemptionattempt/"
LAPTOP = {"width": 1366, "height": 768}


def log_in(page, live_server, user):
    """Sign ``user`` in by planting a session cookie (Django's own tests cover the login form)."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])


def screenshot(target, name):
    """Save a screenshot of a page or an element as var/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    target.screenshot(path=str(path))
    return path


@pytest.fixture
def world(policy_world):
    return build_admin_world(days=5)


@pytest.fixture
def support_page(page, live_server, world):
    page.set_viewport_size(LAPTOP)
    log_in(page, live_server, world.people.viewer)
    return page


def test_attempt_list_shows_why_without_sideways_scrolling(support_page, live_server):
    page = support_page
    page.goto(f"{live_server.url}{LIST_PATH}")
    screenshot(page, "attempt-list-1366x768")

    assert page.evaluate("document.documentElement.scrollWidth") <= LAPTOP["width"]
    for column in ("outcome_badge", "why", "learner", "content", "policy_name"):
        box = page.locator(f"#result_list th.column-{column}").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= LAPTOP["width"], column

    refused = page.locator("#result_list tbody tr", has=page.locator(".attempt-outcome", has_text="subsidy refused"))
    assert refused.count() == 1
    assert refused.locator("td.field-why").inner_text().replace("\n", "") == "subsidy 422 enrollment_error"
    timeout = page.locator("#result_list tbody tr", has=page.locator("td.field-why", has_text="lms timeout"))
    assert timeout.locator(".attempt-outcome").inner_text() == "upstream down"
    # One line per outcome badge: the short labels do not wrap.
    heights = page.eval_on_selector_all(".attempt-outcome", "els => els.map(e => e.getBoundingClientRect().height)")
    assert heights and max(heights) < 2 * min(heights)


def test_query_search_finds_attempts_by_indexed_columns(support_page, live_server):
    page = support_page
    page.goto(f"{live_server.url}{LIST_PATH}")
    box = page.locator("#searchbar")
    box.fill('outcome = "upstream_unavailable" and error_code in ("timeout", "http_503")')
    box.press("Enter")
    page.wait_for_url("**q=*")
    whys = page.locator("#result_list td.field-why").all_inner_texts()
    assert sorted(text.replace("\n", "") for text in whys) == ["lms timeout", "subsidy 503 http_503"]
    screenshot(page, "attempt-list-query-search")


def test_charts_draw_the_lists_filters(support_page, live_server, world):
    page = support_page
    page.goto(f"{live_server.url}{LIST_PATH}?source=learner_redeem_api")
    page.click("#attempt-charts-link")
    page.wait_for_selector("svg.chart-outcomes-per-day")
    screenshot(page, "attempt-charts-1366x768")
    screenshot(page.locator("#chart-outcomes-per-day"), "attempt-chart-outcomes-per-day")

    assert "source = learner_redeem_api" in page.inner_text(".attempt-summary-scope")
    chart = page.locator("svg.chart-outcomes-per-day")
    box = chart.bounding_box()
    assert box["width"] >= 600 and box["x"] + box["width"] <= LAPTOP["width"]
    # Five days of attempts, each a stacked bar of outcome segments with a tooltip naming day, count and outcome.
    tooltips = chart.locator("rect title").all_text_contents()
    learner_rows = [a for a in world.attempts if a.source == "learner_redeem_api"]
    assert sum(int(text.split(": ")[1].split(" ")[0]) for text in tooltips) == len(learner_rows)
    assert any(text.endswith("subsidy refused") for text in tooltips)
    reasons = page.locator("svg.chart-top-reasons").text_content()
    assert "content_not_in_catalog" in reasons and "policy_spend_limit_reached" in reasons
    assert "enrollment_error" in page.locator("svg.chart-top-errors").text_content()


def test_attempt_page_leads_to_the_policy_as_it_was(support_page, live_server, world):
    page = support_page
    refused = next(a for a in world.attempts if a.outcome == "subsidy_refused")
    page.goto(f"{live_server.url}{LIST_PATH}{refused.pk}/change/")
    assert "subsidy 422 enrollment_error" in page.inner_text("div.field-why")
    assert "pat <pat@demo-co.example>" in page.inner_text("div.field-acting_user")
    screenshot(page, "attempt-change-page")

    page.click("div.field-policy_history_link a")
    page.wait_for_url("**/history/*/")
    assert page.locator("input[name=_save]").count() == 0  # a history row is read-only, and looks it
    assert page.locator("#content-main input[type=text], #content-main select, #content-main textarea").count() == 0
    assert refused.policy.display_name in page.inner_text("#content")
    screenshot(page, "policy-history-row")

    page.goto(f"{live_server.url}/admin/subsidy_access_policy/subsidyaccesspolicy/{refused.policy_uuid}/history/")
    assert "nobody signed in" in page.inner_text("#change-history")
    screenshot(page, "policy-history-list")
