"""The control API: seed, reset, faults, request log, latency, reversals, inspection; process lifecycle."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from enterprise_access.devtools.emulator.testing import EmulatorControl, running_emulator
from enterprise_access.devtools.net import free_port, wait_until_up

from . import world

pytestmark = pytest.mark.emulator

REPO_ROOT = Path(__file__).resolve().parents[4]


def _subsidy_path(subsidy_uuid=world.SUBSIDY):
    return f"/subsidy/api/v1/subsidies/{subsidy_uuid}/"


# --- seed and reset -------------------------------------------------------------------------------

def test_health(control):
    assert control.health()["status"] == "ok"
    assert control.health()["run_token"] is None  # started without one


def test_seed_rejects_malformed_documents(emulator):
    response = requests.post(f"{emulator.url}/_control/seed", json={"subsidies": [{"uuid": "nope"}]}, timeout=5)
    assert response.status_code == 400
    assert "subsidies[0].uuid" in response.json()["detail"]
    assert requests.post(f"{emulator.url}/_control/seed", json={"customers": {}}, timeout=5).status_code == 400
    assert requests.post(f"{emulator.url}/_control/seed", json=[], timeout=5).status_code == 400
    ignored = requests.post(f"{emulator.url}/_control/seed", json={"policies": []}, timeout=5)
    assert ignored.json() == {"seeded": {"customers": 0, "learners": 0, "catalogs": 0, "content": 0, "subsidies": 0},
                              "ignored": ["policies"]}
    assert requests.post(f"{emulator.url}/_control/seed", data="{", timeout=5).status_code == 400


def test_seed_upserts_and_a_new_starting_balance_replaces_the_initial_deposit(api, control):
    subsidy_uuid = "5b5d0000-0000-4000-8000-0000000000f2"
    spec = {"uuid": subsidy_uuid, "enterprise_customer_uuid": world.CUSTOMER, "title": "Upserted",
            "starting_balance": 500, "active_datetime": world.iso(-1), "expiration_datetime": world.iso(1)}
    control.seed({"subsidies": [spec]})
    first_deposit = control.transactions(subsidy_uuid)[0]
    control.seed({"subsidies": [spec]})
    assert control.transactions(subsidy_uuid) == [first_deposit]  # same amount: the same deposit row

    control.seed({"subsidies": [{**spec, "title": "Renamed", "starting_balance": 800}]})

    subsidy = api.subsidy(subsidy_uuid)
    assert (subsidy["title"], subsidy["starting_balance"], subsidy["current_balance"]) == ("Renamed", 800, 800)
    deposits = control.transactions(subsidy_uuid)
    assert [tx["idempotency_key"] for tx in deposits] == [f"ledger-for-subsidy-{subsidy_uuid}-800-initial-deposit"]


def test_reset_returns_to_the_seeded_baseline(api, control):
    api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN)
    control.add_fault("catalog", "never-matches")
    control.set_latency(1)
    assert api.balance(world.SUBSIDY) == 1_000_000 - 19900

    control.reset()

    assert control.faults() == []
    assert control.requests() == []
    assert requests.get(f"{control.base_url}/_control/latency", timeout=5).json() == {"delay_ms": 0}
    assert control.enrollments() == []
    assert [tx["quantity"] for tx in control.transactions(world.SUBSIDY)] == [1_000_000]
    assert api.balance(world.SUBSIDY) == 1_000_000
    assert api.get(f"/lms/enterprise/api/v1/enterprise-customer/{world.CUSTOMER}/").status_code == 200


def test_wipe_persistence_and_restart(tmp_path):
    db_path = tmp_path / "emulator.sqlite3"
    with running_emulator(db_path=str(db_path)) as first:
        first.control.seed({"customers": [{"uuid": world.CUSTOMER, "name": "Kept"}]})
        token = first.control.token()
    with running_emulator(db_path=str(db_path)) as second:
        # Same file: seeded objects and the signing secret survive, so the old token still works.
        response = requests.get(f"{second.lms_url}/enterprise/api/v1/enterprise-customer/{world.CUSTOMER}/",
                                headers={"Authorization": f"JWT {token}"}, timeout=5)
        assert response.json()["name"] == "Kept"
        second.control.wipe()
        response = requests.get(f"{second.lms_url}/enterprise/api/v1/enterprise-customer/{world.CUSTOMER}/",
                                headers={"Authorization": f"JWT {token}"}, timeout=5)
        assert response.status_code == 404


# --- faults ---------------------------------------------------------------------------------------

def test_fault_status_and_raw_body(api, control):
    control.add_fault("subsidy", r"/can_redeem/$", method="GET", status=503, body="upstream down")

    response = api.can_redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN)

    assert response.status_code == 503
    assert response.text == "upstream down"
    assert response.headers["Content-Type"].startswith("text/plain")
    assert api.get(_subsidy_path()).status_code == 200  # the regex did not match the retrieve path


def test_fault_default_and_json_bodies(api, control):
    control.add_fault("subsidy", "admin/transactions", method="POST", status=422, times=1,
                      body={"detail": "injected", "code": "enrollment_error"})
    control.add_fault("catalog", "contains_content_items", status=500, times=1)

    injected = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN)
    assert injected.status_code == 422
    assert injected.json() == {"detail": "injected", "code": "enrollment_error"}
    default = api.get(f"/catalog/api/v2/enterprise-catalogs/{world.CATALOG}/contains_content_items/",
                      params={"course_run_ids": world.COOKING})
    assert default.status_code == 500
    assert default.json() == {"detail": "Emulated fault: HTTP 500"}


def test_fault_method_filter(api, control):
    control.add_fault("subsidy", "admin/transactions", method="POST", status=500)
    assert api.transactions(world.SUBSIDY).status_code == 200
    assert api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN).status_code == 500


def test_fault_times_then_normal_service(api, control):
    control.add_fault("lms", "enterprise-customer", status=502, times=2)
    path = f"/lms/enterprise/api/v1/enterprise-customer/{world.CUSTOMER}/"
    assert [api.get(path).status_code for _ in range(3)] == [502, 502, 200]
    assert control.faults() == []


def test_fault_applies_before_authentication(emulator, control):
    control.add_fault("subsidy", ".*", status=503, times=1)
    assert requests.get(emulator.url + _subsidy_path(), timeout=5).status_code == 503


def test_fault_delay_beyond_the_read_timeout_is_a_timeout(api, control):
    control.add_fault("subsidy", "can_redeem", delay_ms=400, status=None, times=1)
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.get(f"/subsidy/api/v1/subsidies/{world.SUBSIDY}/can_redeem/",
                params={"lms_user_id": world.PAT, "content_key": world.COOKING_RUN}, timeout=0.1)
    # The server still answers (into a closed socket) once the delay is over, and logs it.
    deadline = time.monotonic() + 5
    while not control.requests("subsidy"):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_fault_delay_only_then_serves_normally(api, control):
    control.add_fault("subsidy", "can_redeem", delay_ms=200, status=None, times=1)
    started = time.monotonic()
    response = api.can_redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN)
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.2


def test_fault_status_zero_drops_the_connection(api, control):
    control.add_fault("catalog", ".*", status=0, times=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        api.get(f"/catalog/api/v2/enterprise-catalogs/{world.CATALOG}/contains_content_items/",
                params={"course_run_ids": world.COOKING})
    assert control.requests("catalog")[-1]["status"] == 0
    # The next request is served normally.
    assert api.get(f"/catalog/api/v2/enterprise-catalogs/{world.CATALOG}/contains_content_items/",
                   params={"course_run_ids": world.COOKING}).status_code == 200


def test_oauth_fault_hits_only_the_token_endpoint(api, control):
    control.add_fault("oauth", status=503, times=1)
    control.add_fault("lms", "oauth2", status=500)  # an "lms" fault never matches the token endpoint
    response = requests.post(f"{api.url}/lms/oauth2/access_token",
                             data={"grant_type": "client_credentials", "client_id": "a", "client_secret": "b"},
                             timeout=5)
    assert response.status_code == 503
    assert control.token()  # the oauth fault was used up


def test_invalid_faults_are_400_and_faults_can_be_listed_and_cleared(emulator, control):
    for spec in ({"service": "nope"}, {"service": "lms", "path": "("}, {"service": "lms", "status": 9},
                 {"service": "lms", "times": 0}, {"service": "geag"}):
        assert requests.post(f"{emulator.url}/_control/faults", json=spec, timeout=5).status_code == 400
    created = control.add_fault("lms", "x", method="get", status=418, times=3)
    assert created["method"] == "GET" and created["id"] > 0
    assert control.faults() == [created]
    control.clear_faults()
    assert control.faults() == []


# --- request log and latency ------------------------------------------------------------------------

def test_request_log_records_every_service_call_newest_last(api, control, emulator):
    api.can_redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN)
    api.transactions(world.SUBSIDY, state=["committed", "pending"])
    requests.get(emulator.url + _subsidy_path(), timeout=5)  # 401
    control.token()
    control.health()  # control calls are not logged

    log = control.requests()

    assert [(entry["service"], entry["method"], entry["status"]) for entry in log] == [
        ("subsidy", "GET", 200), ("subsidy", "GET", 200), ("subsidy", "GET", 401), ("oauth", "POST", 200),
    ]
    assert log[0]["path"] == f"/api/v1/subsidies/{world.SUBSIDY}/can_redeem/"
    assert log[0]["query"] == {"lms_user_id": [str(world.PAT)], "content_key": [world.COOKING_RUN]}
    assert log[1]["query"]["state"] == ["committed", "pending"]
    assert [entry["service"] for entry in control.requests("oauth")] == ["oauth"]
    control.clear_requests()
    assert control.requests() == []


def test_base_latency_delays_service_calls_but_not_control_calls(api, control):
    control.set_latency(150)
    started = time.monotonic()
    assert api.get(_subsidy_path()).status_code == 200
    assert time.monotonic() - started >= 0.15
    # A control call waited out a 60 s latency would miss this 5 s read timeout: it must not wait at all.
    control.set_latency(60_000)
    requests.get(f"{control.base_url}/_control/health", timeout=5).raise_for_status()
    assert control.set_latency(0) == {"delay_ms": 0}


# --- reversals and inspection -----------------------------------------------------------------------

def test_reversal_object_and_balance(api, control):
    tx = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN).json()

    reversed_tx = control.reverse(tx["uuid"], metadata={"reason": "unenrolled"})

    reversal = reversed_tx["reversal"]
    assert set(reversal) == {"uuid", "state", "idempotency_key", "quantity", "metadata", "created", "modified"}
    assert reversal["state"] == "committed"
    assert reversal["quantity"] == 19900
    assert reversal["metadata"] == {"reason": "unenrolled"}
    assert reversal["idempotency_key"].startswith(f"unenrollment-reversal-{tx['fulfillment_identifier']}-")
    assert api.balance(world.SUBSIDY) == 1_000_000
    assert api.get(f"/subsidy/api/v1/transactions/{tx['uuid']}/").json()["reversal"] == reversal
    assert control.enrollments()[-1]["active"] is False


def test_reversal_errors(api, control, emulator):
    tx = api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN).json()
    control.reverse(tx["uuid"])
    url = f"{emulator.url}/_control/reversals"
    assert requests.post(url, json={"transaction_uuid": tx["uuid"]}, timeout=5).status_code == 409
    assert requests.post(url, json={"transaction_uuid": world.UNKNOWN_UUID}, timeout=5).status_code == 404
    control.add_fault("lms", "enroll", status=500, internal=True, times=1)
    assert api.redeem(world.SUBSIDY, world.SAM, world.COOKING_RUN).status_code == 422
    failed = control.transactions(world.SUBSIDY)[-1]
    assert failed["state"] == "failed"
    assert requests.post(url, json={"transaction_uuid": failed["uuid"]}, timeout=5).status_code == 409


def test_control_transactions_lists_every_state_oldest_first(api, control):
    api.redeem(world.SUBSIDY, world.PAT, world.COOKING_RUN)
    api.redeem(world.SUBSIDY, world.PAT, world.EXEC_RUN)  # fails: no exec-ed metadata
    api.redeem(world.SUBSIDY_SPARE, world.PAT, world.COOKING_RUN)

    assert [tx["state"] for tx in control.transactions(world.SUBSIDY)] == ["committed", "committed", "failed"]
    everything = control.transactions()
    assert len(everything) >= 5  # every subsidy's deposits too


# --- the management command -----------------------------------------------------------------------

def test_management_command_serves(tmp_path):
    port = free_port()
    # Its output goes to this test's captured output, shown if the command fails to come up.
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_upstream_emulator", "--port", str(port), "--db",
         str(tmp_path / "cmd.sqlite3"), "--run-token", "only-this-run-knows"],
        cwd=REPO_ROOT, env={**os.environ, "DJANGO_SETTINGS_MODULE": "enterprise_access.settings.test"},
    )
    try:
        control = EmulatorControl(f"http://127.0.0.1:{port}")
        wait_until_up(f"{control.base_url}/_control/health", what="run_upstream_emulator command", process=process,
                      timeout=15)
        # The token its starter passed comes back, so the starter can tell the emulator is its own.
        assert control.health() == {"status": "ok", "db": str(tmp_path / "cmd.sqlite3"),
                                    "run_token": "only-this-run-knows"}
        assert control.token()
    finally:
        process.terminate()
        process.wait(timeout=10)