"""
Who did what: every policy and forced-redemption change names the acting user (in a request, outside one with
``acting_as`` or the record's ``modified_by``), and admin shows people by username and email.
"""
import re
from html import unescape
from io import StringIO

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.urls import reverse
from simple_history.admin import SimpleHistoryAdmin

from enterprise_access.apps.api.tests.helpers import operator_client
from enterprise_access.apps.core.history import acting_as
from enterprise_access.apps.core.history_admin import ReadOnlyHistoryAdmin
from enterprise_access.apps.subsidy_access_policy.forcing import force_redemption
from enterprise_access.apps.subsidy_access_policy.models import ForcedPolicyRedemption, SubsidyAccessPolicy
from enterprise_access.devtools.testing import build_world_policy

from .admin_world import build_admin_world, person
from .factories import ForcedRedemptionFactory, PerLearnerEnrollmentPolicyFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "independent"])

POLICY_HISTORY = "admin:subsidy_access_policy_subsidyaccesspolicy_history"
# The forced-redemption admin is being rewritten (issue 13, part 2) and takes ReadOnlyHistoryAdmin there; until
# then its history rows still accept a POST that saves the old version back (SIMPLE_HISTORY_REVERT_DISABLED
# only hides the button).
HISTORY_NOT_YET_READ_ONLY = set()


def post_change_form(client, url, **changes):
    """Submit an admin change form as a person would: the page's own values, with ``changes``."""
    form = client.get(url).context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {name: ("" if value is None else value) for name, value in data.items()}
    data.update(changes)
    response = client.post(url, data)
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    return response


def history_text(client, url):
    response = client.get(url)
    assert response.status_code == 200
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode())))


def test_a_policy_changed_in_admin_names_the_staff_member(client):
    policy = PerLearnerEnrollmentPolicyFactory()
    staff = person(superuser=True, username="maria", email="maria@example.org")
    client.force_login(staff)
    change = reverse("admin:subsidy_access_policy_subsidyaccesspolicy_change", args=[policy.pk])
    post_change_form(client, change, display_name="Renamed in admin", enterprise_group_uuids="[]")

    newest = policy.history.order_by("-history_id").first()
    assert newest.display_name == "Renamed in admin" and newest.history_user == staff
    text = history_text(client, reverse(POLICY_HISTORY, args=[policy.pk]))
    assert "maria <maria@example.org>" in text
    assert "nobody signed in" in text  # the factory created it outside any request
    assert "None" not in text


def test_a_policy_changed_through_the_api_names_the_operator(policy_world):
    policy = build_world_policy()
    response = operator_client(lms_user_id=900).patch(f"/api/v1/subsidy-access-policies/{policy.uuid}/",
                                                      {"display_name": "Renamed by API"}, format="json")
    assert response.status_code == 200
    newest = policy.history.order_by("-history_id").first()
    assert newest.display_name == "Renamed by API" and newest.history_user.lms_user_id == 900


def test_forcing_outside_a_request_names_the_staff_member(upstream, policy_world):
    """A run with no request around it (a background task, a command): the record's modified_by is the actor."""
    staff = UserFactory(is_staff=True)
    record = ForcedRedemptionFactory(subsidy_access_policy=build_world_policy(), created_by=staff, modified_by=staff,
                                     lms_user_id=upstream.learner["lms_user_id"], course_run_key=upstream.run,
                                     content_price_cents=upstream.price)
    result = force_redemption(forced_redemption=record, acting_user=staff)
    assert result.succeeded
    rows = list(ForcedPolicyRedemption.history.filter(uuid=record.uuid))
    assert len(rows) >= 2 and {row.history_user for row in rows} == {staff}


def test_acting_as_names_the_user_and_the_reason():
    staff = UserFactory(is_staff=True)
    with acting_as(staff, reason="bulk update of spend limits"):
        policy = PerLearnerEnrollmentPolicyFactory()
        policy.spend_limit = 1
        policy.save()
    rows = list(SubsidyAccessPolicy.history.filter(uuid=policy.uuid))
    assert [(row.history_user, row.history_change_reason) for row in rows] == \
        [(staff, "bulk update of spend limits")] * 2
    PerLearnerEnrollmentPolicyFactory()  # after the block: no one again
    assert SubsidyAccessPolicy.history.order_by("-history_id").first().history_user is None


def test_seed_demo_says_who_wrote_the_demo_world():
    call_command("seed_demo", "--skip-emulator", "--json", stdout=StringIO())
    reasons = set(SubsidyAccessPolicy.history.values_list("history_change_reason", flat=True))
    assert reasons == {"seed_demo: the demo world"}


def test_people_are_shown_by_username_and_email(client, policy_world):
    world = build_admin_world(days=1)
    client.force_login(world.people.superuser)
    record = world.forced["errored"]
    page = history_text(client, reverse("admin:subsidy_access_policy_forcedpolicyredemption_change",
                                        args=[record.pk]))
    assert page.count("staff-forcer <forcer@example.org>") == 2  # created by, modified by
    listing = history_text(client, reverse("admin:subsidy_access_policy_forcedpolicyredemption_changelist"))
    assert "staff-forcer <forcer@example.org>" in listing
    history = history_text(client, reverse("admin:subsidy_access_policy_forcedpolicyredemption_history",
                                           args=[record.pk]))
    assert "staff-forcer <forcer@example.org>" in history
    attempt = next(a for a in world.attempts if a.acting_user_id == world.people.learner.pk)
    attempt_page = history_text(client, reverse("admin:subsidy_access_policy_redemptionattempt_change",
                                                args=[attempt.pk]))
    assert "pat <pat@demo-co.example>" in attempt_page
    assert "lms_user_id=None" not in page + listing + history + attempt_page
    assert str(UserFactory(username="no-mail", email="")) == "no-mail"


def test_history_rows_are_read_only(client, policy_world):
    """Saving an old version back over a record ("revert") is refused on every history-keeping admin."""
    world = build_admin_world(days=1)
    client.force_login(world.people.superuser)
    checked = []
    for model, model_admin in admin.site._registry.items():
        label = f"{model._meta.app_label}.{model._meta.model_name}"
        if not isinstance(model_admin, SimpleHistoryAdmin) or label in HISTORY_NOT_YET_READ_ONLY:
            continue
        assert isinstance(model_admin, ReadOnlyHistoryAdmin), label
        obj = model._default_manager.order_by("pk").first()
        oldest = model.history.filter(**{model._meta.pk.attname: obj.pk}).order_by("history_id").first()
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_simple_history",
                      args=[obj.pk, oldest.history_id])
        page = client.get(url)
        assert page.status_code == 200 and 'name="_save"' not in page.content.decode(), label
        form = page.context["adminform"].form
        data = {name: ("" if form[name].value() is None else form[name].value()) for name in form.fields}
        before = model.history.filter(**{model._meta.pk.attname: obj.pk}).count()
        assert client.post(url, {**data, "_save": "Save"}).status_code == 405, label
        assert model.history.filter(**{model._meta.pk.attname: obj.pk}).count() == before, label
        checked.append(label)
    assert {"subsidy_access_policy.subsidyaccesspolicy", "content_assignments.learnercontentassignment"} <= set(checked)
