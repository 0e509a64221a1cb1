"""
Fault phases: ``"before"`` (the default) answers instead of the service; ``"after"`` lets the
service handle the request and commit its writes, then delays, replaces or drops the answer.
"""
import time

import pytest
import requests

from . import world

pytestmark = pytest.mark.emulator

CREATE_PATH = "admin/transactions/$"


def _committed_redemptions(control):
    return [tx for tx in control.transactions(world.SUBSIDY) if tx["lms_user_id"] is not None]


def _last_create_status(control):
    return [row["status"] for row in control.requests("subsidy") if row["method"] == "POST"][-1]


def _wait_for_log_entry(control, service):
    """A delayed answer is logged when it is written: wait for it, so no later test sees it arrive."""
    deadline = time.monotonic() + 10
    while not control.requests(service):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_after_drop_commits_the_transaction_then_drops_the_connection(api, control):
    control.add_fault("subsidy", CREATE_PATH, method="POST", status=0, phase="after", times=1)

    with pytest.raises(requests.exceptions.ConnectionError):
        api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN, key="k-dropped")

    [tx] = _committed_redemptions(control)
    assert (tx["state"], tx["idempotency_key"], tx["quantity"]) == ("committed", "k-dropped", -19900)
    assert _last_create_status(control) == 0
    assert control.enrollments()[0]["active"] is True
    # The client's retry finds the learner's committed redemption: 200, the same transaction.
    retry = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN, key="k-dropped")
    assert (retry.status_code, retry.json()["uuid"]) == (200, tx["uuid"])


@pytest.mark.parametrize("status, body", [(503, None), (500, "<h1>Server Error (500)</h1>")])
def test_after_status_replaces_the_answer_of_a_committed_create(api, control, status, body):
    control.add_fault("subsidy", CREATE_PATH, method="POST", status=status, body=body, phase="after", times=1)

    response = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN)

    assert response.status_code == status
    if body is None:
        assert response.json() == {"detail": f"Emulated fault: HTTP {status}"}
    else:
        assert response.text == body
    assert [tx["state"] for tx in _committed_redemptions(control)] == ["committed"]
    assert api.balance(world.SUBSIDY) == 1_000_000 - 19900
    assert _last_create_status(control) == status


def test_before_status_answers_instead_of_the_service(api, control):
    control.add_fault("subsidy", CREATE_PATH, method="POST", status=503, times=1)

    assert api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN).status_code == 503
    assert _committed_redemptions(control) == []


def test_after_delay_is_a_timeout_on_a_write_that_already_committed(api, control):
    control.add_fault("subsidy", CREATE_PATH, method="POST", status=None, delay_ms=2500, phase="after", times=1)

    body = {"lms_user_id": world.PAT, "content_key": world.COOKING_RUN, "subsidy_access_policy_uuid": world.POLICY}
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.post(f"/subsidy/api/v2/subsidies/{world.SUBSIDY}/admin/transactions/", json=body, timeout=(5, 1))

    # The write is on the ledger while the answer is still being held back.
    assert [tx["state"] for tx in _committed_redemptions(control)] == ["committed"]
    assert control.requests("subsidy") == []
    _wait_for_log_entry(control, "subsidy")
    assert control.requests("subsidy")[-1]["status"] == 201


def test_after_delay_only_then_the_served_answer(api, control):
    control.add_fault("subsidy", "can_redeem", status=None, delay_ms=50, phase="after", times=1)

    response = api.can_redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN)

    assert response.status_code == 200
    assert response.json()["can_redeem"] is True


def test_after_faults_apply_to_reads_too(api, control):
    control.add_fault("catalog", "contains_content_items", status=502, phase="after", times=1)
    path = f"/catalog/api/v2/enterprise-catalogs/{world.CATALOG}/contains_content_items/"

    assert api.get(path, params={"course_run_ids": world.COOKING}).status_code == 502
    assert api.get(path, params={"course_run_ids": world.COOKING}).status_code == 200


def test_phase_defaults_to_before_and_is_validated(emulator, control):
    assert control.add_fault("lms", "x")["phase"] == "before"
    assert control.add_fault("lms", "x", phase="after")["phase"] == "after"
    url = f"{emulator.url}/_control/faults"
    bad_phase = requests.post(url, json={"service": "lms", "phase": "during"}, timeout=5)
    assert bad_phase.status_code == 400 and "phase must be one of" in bad_phase.json()["detail"]
    internal_after = requests.post(url, json={"service": "lms", "internal": True, "phase": "after"}, timeout=5)
    assert internal_after.status_code == 400 and "internal" in internal_after.json()["detail"]
