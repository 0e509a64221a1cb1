"""
Every admin page opens: a crawl of every model registered with the admin site, as a superuser and as staff
who may only view.

For each registered model (``admin.site._registry``, so a model registered later is crawled without touching this
file): its changelist, every link of the changelist that stays on it (filters, sorting, pages: followed as the
superuser, the same links for anyone who may see the list), a search, the add
page, the admin's own argument-less pages (e.g. the attempt charts), every row's change page and the admin's own
pages of a row (e.g. a forced redemption's confirmation page), and for history-keeping admins every row's history
page and every history row.
The rows come from ``admin_world.build_admin_world``: attempts of every outcome, forced redemptions of every
state, assignments of every state, policies of every type, and people. A model without rows fails the crawl: add
its rows to the admin world.

Every page must answer 200, except the add pages listed in ``ADD_PAGE_REFUSED`` (and every add page for staff
who may only view), which must answer 403, and the own pages listed in ``OWN_PAGE_STATUS``.
"""
import re
from html import unescape

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse
from simple_history.admin import SimpleHistoryAdmin

from enterprise_access.apps.content_assignments.constants import AssignmentState
from enterprise_access.apps.content_assignments.models import LearnerContentAssignment
from enterprise_access.apps.subsidy_access_policy.constants import PolicyType
from enterprise_access.apps.subsidy_access_policy.models import (
    AttemptOutcome,
    ForcedPolicyRedemption,
    RedemptionAttempt,
    SubsidyAccessPolicy,
)

from .admin_world import FORCED_STATES, build_admin_world

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "independent"])

# Add pages nobody may open, and why. Staff who may only view get a 403 from every add page.
ADD_PAGE_REFUSED = {
    "subsidy_access_policy.redemptionattempt": "attempt rows are written by the redemption workflow only",
    "subsidy_access_policy.bulkforcingjob": "jobs are written by the 'Force redemption' action only",
}
# Own pages that staff who may only view may not open (403), and why.
OWN_PAGE_REFUSED_TO_VIEWERS = {
    "upload": "uploading forced redemptions needs the force_redemption permission",
}
# Pages of an admin's own (argument-less URLs besides changelist and add) that answer something else, and why.
OWN_PAGE_STATUS = {
    "djangoql_suggestions": (400, "DjangoQL's completion endpoint needs ?field=<name>"),
}
# Row pages of an admin's own that answer a GET with something else, and why.
OBJECT_PAGE_STATUS = {
    "run_again": (405, "re-running a bulk forcing job is a POST only (the job page's button)"),
}
# Pages of one row that every admin has; an admin's own ones (own_object_pages) are crawled for every row too.
STANDARD_OBJECT_PAGES = {"change", "delete", "history", "simple_history"}
SAME_PAGE_LINK = re.compile(r'href="(\?[^"]*)"')
SEARCH_TERMS = ("101", "course-v1:DemoU", "c0ffee00-0000-4000-8000-000000000001")


def label(model):
    return f"{model._meta.app_label}.{model._meta.model_name}"


def url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def registered():
    return sorted(admin.site._registry.items(), key=lambda item: label(item[0]))


def own_pages(model_admin):
    """(url, expected status, view) of each page an admin adds without arguments (summaries, uploads, completion)."""
    standard = {"changelist", "add"}
    for pattern in model_admin.get_urls():
        name = pattern.name or ""
        view = name.removeprefix(f"{model_admin.opts.app_label}_{model_admin.opts.model_name}_")
        if view in standard or pattern.pattern.regex.groups or not name:
            continue
        yield reverse(f"admin:{name}"), OWN_PAGE_STATUS.get(view, (200, ""))[0], view


def own_object_pages(model_admin):
    """The names of the pages an admin adds for one row (``<app>_<model>_<view>`` taking the row's id)."""
    prefix = f"{model_admin.opts.app_label}_{model_admin.opts.model_name}_"
    for pattern in model_admin.get_urls():
        name = pattern.name or ""
        view = name.removeprefix(prefix)
        if name.startswith(prefix) and view not in STANDARD_OBJECT_PAGES and "object_id" in str(pattern.pattern):
            yield view


def pages(model, model_admin):
    """(url, expected status for a superuser, view) of every page of one model, besides its changelist's links."""
    add_status = 403 if label(model) in ADD_PAGE_REFUSED else 200
    yield url(model, "add"), add_status, "add"
    yield from own_pages(model_admin)
    history_model = getattr(model, "history", None) if isinstance(model_admin, SimpleHistoryAdmin) else None
    extra = list(own_object_pages(model_admin))
    for obj in model._default_manager.all():
        yield url(model, "change", obj.pk), 200, "change"
        for view in extra:
            yield url(model, view, obj.pk), OBJECT_PAGE_STATUS.get(view, (200, ""))[0], view
        if history_model is not None:
            yield url(model, "history", obj.pk), 200, "history"
            for row in history_model.filter(**{model._meta.pk.attname: obj.pk}):
                yield url(model, "simple_history", obj.pk, row.history_id), 200, "simple_history"


@pytest.fixture
def world(policy_world):
    return build_admin_world()


def open_page(client, path, expected, failures):
    response = client.get(path)
    if response.status_code != expected:
        error = getattr(response, "exc_info", None)
        detail = f": {error[0].__name__}: {error[1]}" if error else ""
        failures.append(f"{path} answered {response.status_code}, expected {expected}{detail}")
    return response


def crawl(user):
    """Open every admin page as ``user``; returns the failures, one line each."""
    client = Client(raise_request_exception=False)
    client.force_login(user)
    view_only = not user.is_superuser
    failures = []
    open_page(client, reverse("admin:index"), 200, failures)
    for app_label in sorted({model._meta.app_label for model, _ in registered()}):
        open_page(client, reverse("admin:app_list", args=[app_label]), 200, failures)
    for model, model_admin in registered():
        if not model._default_manager.exists():
            failures.append(f"{label(model)} has no rows to crawl: add some to admin_world.build_admin_world")
        changelist = url(model, "changelist")
        response = open_page(client, changelist, 200, failures)
        if not view_only:  # the same links for everyone who may see the list: follow them once
            links = sorted(set(unescape(link) for link in SAME_PAGE_LINK.findall(response.content.decode())))
            for query in links:
                open_page(client, changelist + query, 200, failures)
        if model_admin.search_fields:
            for term in SEARCH_TERMS:
                open_page(client, f"{changelist}?q={term}", 200, failures)
        for path, status, view in pages(model, model_admin):
            if view_only and (view == "add" or view in OWN_PAGE_REFUSED_TO_VIEWERS):
                status = 403  # staff who may only view may not add, nor upload
            open_page(client, path, status, failures)
    return failures


def test_every_admin_page_opens_for_a_superuser(world):
    failures = crawl(world.people.superuser)
    assert not failures, "\n".join(failures)


def test_every_admin_page_opens_for_view_only_staff(world):
    failures = crawl(world.people.viewer)
    assert not failures, "\n".join(failures)


def test_the_crawl_opens_the_confirmation_page_of_every_forced_record(world):
    """The crawl reaches the admin's own row pages: a forced redemption's confirmation, in every state."""
    crawled = {path for path, _, _ in pages(ForcedPolicyRedemption, admin.site._registry[ForcedPolicyRedemption])}
    records = list(world.forced.values())
    assert {record.state for record in records} == set(FORCED_STATES) and "exec_ed_waiting" in world.forced
    assert all(url(ForcedPolicyRedemption, "redeem", record.pk) in crawled for record in records)


def test_view_only_staff_cannot_post_any_confirmation(world, upstream):
    client = Client(raise_request_exception=False)
    client.force_login(world.people.viewer)
    for record in world.forced.values():
        response = client.post(url(ForcedPolicyRedemption, "redeem", record.pk), {"_redeem": "Yes"})
        assert response.status_code == 403, record.state
    assert not RedemptionAttempt.objects.filter(forced_redemption__isnull=False,
                                                acting_user=world.people.viewer).exists()
    assert not [r for r in upstream.control.requests(service="subsidy") if r["method"] == "POST"]


def test_the_world_has_a_row_of_every_state(world):
    """The crawl is only as good as its rows: every outcome, every forced and assignment state, every policy type."""
    assert set(RedemptionAttempt.objects.values_list("outcome", flat=True)) == set(AttemptOutcome.values)
    assert {record.state for record in ForcedPolicyRedemption.objects.all()} == set(FORCED_STATES)
    assert set(LearnerContentAssignment.objects.values_list("state", flat=True)) == set(AssignmentState.values)
    assert set(SubsidyAccessPolicy.objects.values_list("policy_type", flat=True)) == set(PolicyType.values)
