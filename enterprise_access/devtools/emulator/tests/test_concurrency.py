"""Real threads against the real server: the per-ledger lock (429), balance safety, many connections."""
import pytest
import requests

from enterprise_access.devtools.testing import run_concurrently

from . import world

pytestmark = pytest.mark.emulator

LOCK_FAILED = {"detail": "Attempt to lock the Ledger failed, please try again."}


def _redeem_in_threads(api, calls):
    """Run ``api.redeem(*args)`` for each args tuple at the same time, on separate connections."""
    def run(args):
        client = requests.Session()
        client.headers.update(api.session.headers)
        subsidy_uuid, lms_user_id, content_key = args
        return client.post(
            f"{api.url}/subsidy/api/v2/subsidies/{subsidy_uuid}/admin/transactions/",
            json={"lms_user_id": lms_user_id, "content_key": content_key,
                  "subsidy_access_policy_uuid": world.POLICY, "idempotency_key": f"k-{lms_user_id}-{content_key}"},
            timeout=10,
        )

    return run_concurrently(run, [(args,) for args in calls])


def test_overlapping_creates_on_one_subsidy_get_429(api, control):
    # The first create stalls in its enrollment step while it holds the ledger lock.
    control.add_fault("lms", "enroll_learners_in_courses", status=None, delay_ms=600, internal=True, times=1)

    responses = _redeem_in_threads(api, [
        (world.SUBSIDY, world.PAT, world.COOKING_RUN),
        (world.SUBSIDY, world.SAM, world.COOKING_RUN),
    ])

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201, 429]
    refused = next(response for response in responses if response.status_code == 429)
    assert refused.json() == LOCK_FAILED
    assert "Retry-After" not in refused.headers
    assert api.balance(world.SUBSIDY) == 1_000_000 - 19900


def test_creates_on_different_subsidies_do_not_contend(api, control):
    control.add_fault("lms", "enroll_learners_in_courses", status=None, delay_ms=300, internal=True, times=2)

    responses = _redeem_in_threads(api, [
        (world.SUBSIDY, world.PAT, world.COOKING_RUN),
        (world.SUBSIDY_SPARE, world.PAT, world.COOKING_RUN),
    ])

    assert [response.status_code for response in responses] == [201, 201]


def test_concurrent_redeemers_never_overdraw(api):
    # SUBSIDY_LOW (30,000) affords six 5,000 runs; 24 learners race for them, retrying on 429.
    def redeem_until_decided(lms_user_id):
        client = requests.Session()
        client.headers.update(api.session.headers)
        for _ in range(200):
            response = client.post(
                f"{api.url}/subsidy/api/v2/subsidies/{world.SUBSIDY_LOW}/admin/transactions/",
                json={"lms_user_id": lms_user_id, "content_key": world.BAKING_RUN,
                      "subsidy_access_policy_uuid": world.POLICY, "idempotency_key": f"race-{lms_user_id}"},
                timeout=10,
            )
            if response.status_code != 429:
                return response.status_code
        return 429

    outcomes = run_concurrently(redeem_until_decided, [(lms_user_id,) for lms_user_id in range(1000, 1024)])

    assert outcomes.count(201) == 6
    assert outcomes.count(422) == 18
    assert api.balance(world.SUBSIDY_LOW) == 0


def test_two_hundred_concurrent_connections(api):
    def read(index):
        client = requests.Session()
        client.headers.update(api.session.headers)
        return client.get(
            f"{api.url}/subsidy/api/v1/subsidies/{world.SUBSIDY}/can_redeem/",
            params={"lms_user_id": 2000 + index, "content_key": world.COOKING_RUN}, timeout=20,
        ).status_code

    statuses = run_concurrently(read, [(index,) for index in range(200)])

    assert statuses == [200] * 200
