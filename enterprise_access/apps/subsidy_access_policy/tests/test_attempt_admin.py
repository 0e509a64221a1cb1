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
