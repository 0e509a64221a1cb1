"""
Connection statistics (``GET /_control/stats``) and HTTP/1.1 keep-alive: a pooled client must
reuse one TCP connection, whatever the answers it gets.
"""
import pytest
import requests

from enterprise_access.devtools.emulator.testing import EmulatorControl

from . import world

pytestmark = pytest.mark.emulator

ZERO = {"connections_opened": 0, "requests": 0}


def _service_counts(control):
    stats = control.stats()
    return {"connections_opened": stats["connections_opened"], "requests": stats["requests"]}


def test_one_session_keeps_one_connection_alive_across_calls(emulator, control, token):
    tx_path = f"/subsidy/api/v2/subsidies/{world.SUBSIDY}/admin/transactions/"
    body = {"lms_user_id": world.PAT, "content_key": world.COOKING_RUN, "subsidy_access_policy_uuid": world.POLICY,
            "idempotency_key": "k-keepalive"}
    with requests.Session() as session:
        session.headers["Authorization"] = f"JWT {token}"
        created = session.post(emulator.url + tx_path, json=body, timeout=5)  # 201 with a body
        fulfillment = created.json()["fulfillment_identifier"]
        statuses = [created.status_code] + [response.status_code for response in (
            session.post(f"{emulator.url}/lms/enterprise/api/v1/enterprise-subsidy-fulfillment/{fulfillment}"
                         f"/cancel-fulfillment", timeout=5),  # 204, no body at all
            session.get(f"{emulator.url}/subsidy/api/v1/transactions/{world.UNKNOWN_UUID}/", timeout=5),  # 403
            session.get(f"{emulator.url}/subsidy/nothing/", timeout=5),  # Django's HTML 404
            session.get(emulator.url + tx_path, timeout=5),  # 200
        )]

    assert statuses == [201, 204, 403, 404, 200]
    assert _service_counts(control) == {"connections_opened": 1, "requests": 5}


def test_calls_without_a_session_open_a_connection_each(emulator, control):
    for _ in range(3):
        requests.get(f"{emulator.url}/subsidy/api/v1/subsidies/{world.SUBSIDY}/", timeout=5)

    assert _service_counts(control) == {"connections_opened": 3, "requests": 3}


def test_a_dropped_connection_is_replaced_by_a_new_one(emulator, control, token):
    control.add_fault("subsidy", "transactions", status=0, times=1)
    url = f"{emulator.url}/subsidy/api/v1/subsidies/{world.SUBSIDY}/"
    with requests.Session() as session:
        session.headers["Authorization"] = f"JWT {token}"
        assert session.get(url, timeout=5).status_code == 200
        with pytest.raises(requests.exceptions.ConnectionError):
            session.get(f"{emulator.url}/subsidy/api/v1/transactions/{world.UNKNOWN_UUID}/", timeout=5)
        assert session.get(url, timeout=5).status_code == 200

    assert _service_counts(control) == {"connections_opened": 2, "requests": 3}


def test_control_calls_are_not_counted_but_their_connections_are_accepted(emulator, control):
    fresh = EmulatorControl(emulator.url)
    for _ in range(3):
        fresh.health()

    stats = control.stats()
    assert {name: stats[name] for name in ZERO} == ZERO
    # The fresh client's one kept-alive connection; the fixture's client was already connected.
    assert stats["connections_accepted"] == 1


def test_reset_and_delete_zero_the_statistics(emulator, control, api):
    api.get(f"/subsidy/api/v1/subsidies/{world.SUBSIDY}/")
    assert _service_counts(control) == {"connections_opened": 1, "requests": 1}

    assert {name: value for name, value in control.clear_stats().items() if name in ZERO} == ZERO
    api.get(f"/subsidy/api/v1/subsidies/{world.SUBSIDY}/")
    # The api session's connection was counted before the clear: it is not opened again.
    assert _service_counts(control) == {"connections_opened": 0, "requests": 1}

    control.reset()
    assert control.stats() == {"connections_opened": 0, "requests": 0, "connections_accepted": 0}
