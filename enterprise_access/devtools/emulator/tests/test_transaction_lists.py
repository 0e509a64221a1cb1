"""The v2 admin transaction list and the v1 list: filters, ordering, pagination, aggregates (§2.4, §2.9)."""
import pytest
import requests

from . import world

pytestmark = pytest.mark.emulator

ENVELOPE = {"next", "previous", "count", "num_pages", "current_page", "start", "results"}


@pytest.fixture
def ledger(api, control):
    """Four redemptions on SUBSIDY: Pat x2 (one reversed), Sam x1, one failed for Sam."""
    pat_cooking = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN).json()
    pat_baking = api.redeem(world.SUBSIDY, world.PAT, world.BAKING_RUN, policy=world.POLICY_OTHER).json()
    sam_cooking = api.redeem(world.SUBSIDY, world.SAM, world.COOKING_RUN).json()
    control.add_fault("lms", "enroll_learners_in_courses", status=500, internal=True, times=1)
    assert api.redeem(world.SUBSIDY, world.SAM, world.BAKING_RUN).status_code == 422
    control.reverse(pat_baking["uuid"])
    return {"pat_cooking": pat_cooking, "pat_baking": pat_baking, "sam_cooking": sam_cooking}


def test_unfiltered_list_includes_the_initial_deposit(api):
    body = api.transactions(world.SUBSIDY).json()

    assert set(body) == ENVELOPE
    assert body["count"] == 1
    deposit = body["results"][0]
    assert deposit["state"] == "committed"
    assert deposit["quantity"] == 1_000_000
    assert deposit["idempotency_key"] == f"ledger-for-subsidy-{world.SUBSIDY}-1000000-initial-deposit"
    assert deposit["lms_user_id"] is None and deposit["content_key"] is None
    assert deposit["subsidy_access_policy_uuid"] is None


def test_state_filter_is_repeatable_and_defaults_exclude_nothing(api, ledger):
    everything = api.transactions(world.SUBSIDY).json()
    assert everything["count"] == 5  # deposit + 3 committed + 1 failed

    default_client_states = api.transactions(world.SUBSIDY, state=["committed", "pending", "created"]).json()
    assert default_client_states["count"] == 4
    assert all(tx["state"] != "failed" for tx in default_client_states["results"])

    failed = api.transactions(world.SUBSIDY, state="failed").json()
    assert [tx["lms_user_id"] for tx in failed["results"]] == [world.SAM]


def test_invalid_state_is_400(api):
    response = api.transactions(world.SUBSIDY, state=["committed", "bogus"])
    assert response.status_code == 400
    assert response.json() == {"state": ["Select a valid choice. bogus is not one of the available choices."]}


def test_filters_by_learner_content_and_policy(api, ledger):
    by_learner = api.transactions(world.SUBSIDY, lms_user_id=world.PAT).json()
    assert {tx["uuid"] for tx in by_learner["results"]} == {ledger["pat_cooking"]["uuid"], ledger["pat_baking"]["uuid"]}

    by_content = api.transactions(world.SUBSIDY, content_key=world.COOKING_RUN, state="committed").json()
    assert {tx["lms_user_id"] for tx in by_content["results"]} == {world.PAT, world.SAM}

    by_policy = api.transactions(world.SUBSIDY, subsidy_access_policy_uuid=world.POLICY_OTHER).json()
    assert [tx["uuid"] for tx in by_policy["results"]] == [ledger["pat_baking"]["uuid"]]

    combined = api.transactions(world.SUBSIDY, lms_user_id=world.PAT, content_key=world.COOKING_RUN,
                                subsidy_access_policy_uuid=world.POLICY).json()
    assert [tx["uuid"] for tx in combined["results"]] == [ledger["pat_cooking"]["uuid"]]

    bad = api.transactions(world.SUBSIDY, lms_user_id="x", subsidy_access_policy_uuid="y")
    assert bad.status_code == 400
    assert set(bad.json()) == {"lms_user_id", "subsidy_access_policy_uuid"}


def test_search_matches_email_and_title(api, ledger):
    by_email = api.transactions(world.SUBSIDY, search="SAM@example").json()
    assert {tx["lms_user_id"] for tx in by_email["results"]} == {world.SAM}

    by_title = api.transactions(world.SUBSIDY, search="baking").json()
    assert {tx["content_key"] for tx in by_title["results"]} == {world.BAKING_RUN}


def test_aggregates_sum_the_whole_filtered_set_net_of_reversals(api, ledger):
    body = api.transactions(world.SUBSIDY, state=["committed", "pending", "created"], include_aggregates="True",
                            page_size=1).json()

    assert body["aggregates"] == {
        "unit": "usd_cents",
        "remaining_subsidy_balance": 1_000_000 - 2 * 19900,
        "total_quantity": 1_000_000 - 2 * 19900,  # Pat's reversed baking nets to zero; not just page 1
    }
    policy = api.transactions(world.SUBSIDY, subsidy_access_policy_uuid=world.POLICY,
                              state=["committed", "pending", "created"], include_aggregates="true").json()
    assert policy["aggregates"]["total_quantity"] == -2 * 19900
    assert "aggregates" not in api.transactions(world.SUBSIDY, include_aggregates="False").json()
    assert "aggregates" not in api.transactions(world.SUBSIDY, include_aggregates="1").json()
    assert "aggregates" not in api.transactions(world.SUBSIDY).json()


def test_aggregates_ignore_no_state_unless_asked(api, ledger):
    # Without a state filter the failed row's quantity counts in total_quantity, not in the balance.
    body = api.transactions(world.SUBSIDY, lms_user_id=world.SAM, include_aggregates="TRUE").json()
    assert body["aggregates"]["total_quantity"] == -19900 - 5000
    assert body["aggregates"]["remaining_subsidy_balance"] == 1_000_000 - 2 * 19900


def test_ordering(api, ledger):
    newest_first = [tx["uuid"] for tx in api.transactions(world.SUBSIDY).json()["results"]]
    oldest_first = [tx["uuid"] for tx in api.transactions(world.SUBSIDY, ordering="created").json()["results"]]
    assert newest_first == list(reversed(oldest_first))
    by_quantity = [tx["quantity"] for tx in api.transactions(world.SUBSIDY, ordering="quantity").json()["results"]]
    assert by_quantity == sorted(by_quantity)
    by_quantity_desc = [tx["quantity"] for tx in
                        api.transactions(world.SUBSIDY, ordering="-quantity").json()["results"]]
    assert by_quantity_desc == sorted(by_quantity, reverse=True)


def test_pagination_follows_absolute_next_links(api):
    for index in range(12):
        assert api.redeem(world.SUBSIDY_SPARE, 700 + index, world.COOKING_RUN).status_code == 201

    first = api.transactions(world.SUBSIDY_SPARE, state="committed").json()
    assert (first["count"], first["num_pages"], first["current_page"], first["start"]) == (13, 2, 1, 0)
    assert len(first["results"]) == 10
    assert first["previous"] is None
    assert first["next"].startswith(f"{api.url}/subsidy/api/v2/subsidies/{world.SUBSIDY_SPARE}/admin/transactions/?")

    second = api.session.get(first["next"], timeout=5).json()
    assert (second["current_page"], second["start"], len(second["results"])) == (2, 10, 3)
    assert second["next"] is None
    assert "page=" not in second["previous"] and second["previous"].startswith("http://")
    seen = [tx["uuid"] for tx in first["results"] + second["results"]]
    assert len(set(seen)) == 13

    small = api.transactions(world.SUBSIDY_SPARE, page_size=5, page=3).json()
    assert (small["num_pages"], small["start"], len(small["results"])) == (3, 10, 3)
    assert "page=2" in small["previous"]

    assert api.transactions(world.SUBSIDY_SPARE, page=9).status_code == 404
    assert api.transactions(world.SUBSIDY_SPARE, page=9).json() == {"detail": "Invalid page."}


def test_page_size_is_capped_at_100(api):
    # 101 admin deposits plus the initial one make a list longer than the cap.
    for index in range(101):
        api.post(f"/subsidy/api/v2/subsidies/{world.SUBSIDY_SPARE}/admin/deposits/", json={
            "desired_deposit_quantity": 1, "sales_contract_reference_id": f"R{index}",
            "sales_contract_reference_provider": "manual",
        })
    body = api.transactions(world.SUBSIDY_SPARE, page_size=500).json()
    assert body["count"] == 102
    assert len(body["results"]) == 100
    assert body["num_pages"] == 2


def test_unknown_subsidy_list_is_403(api):
    for subsidy_uuid in (world.UNKNOWN_UUID, world.SUBSIDY_DELETED):
        response = api.transactions(subsidy_uuid)
        assert response.status_code == 403
        assert response.json() == {"detail": "Missing: subsidy.can_read_all_transactions"}


def test_v1_list_requires_subsidy_uuid_and_accepts_the_same_filters(api, ledger):
    assert api.get("/subsidy/api/v1/transactions/").status_code == 400
    body = api.get("/subsidy/api/v1/transactions/", params={
        "subsidy_uuid": world.SUBSIDY, "lms_user_id": world.PAT, "include_aggregates": "true",
    }).json()
    assert body["count"] == 2
    assert "aggregates" in body
    # The v1 list filters by the subsidy without resolving it: an unknown one is an empty page.
    unknown = api.get("/subsidy/api/v1/transactions/", params={"subsidy_uuid": world.UNKNOWN_UUID})
    assert (unknown.status_code, unknown.json()["count"]) == (200, 0)


def test_list_calls_need_a_token(emulator):
    response = requests.get(f"{emulator.url}/subsidy/api/v1/transactions/?subsidy_uuid={world.SUBSIDY}", timeout=5)
    assert response.status_code == 401
