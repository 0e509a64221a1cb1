"""
Connections: one pooled keep-alive session per process and configuration, against the live emulator (it counts
the TCP connections it accepts). A read that loses its connection is asked again; a write never is by the client.
"""
import pytest

from enterprise_access.apps import api_client
from enterprise_access.apps.api_client.exceptions import UpstreamUnavailableError
from enterprise_access.devtools import demo
from enterprise_access.devtools.testing import run_concurrently

pytestmark = pytest.mark.emulator


def test_clients_share_one_session_per_configuration(upstream, settings):
    sessions = {id(client._current_session()) for client in (
        api_client.get_subsidy_client(), api_client.get_catalog_client(), api_client.get_lms_client())}
    assert len(sessions) == 1
    settings.BACKEND_SERVICE_EDX_OAUTH2_KEY = "another-client"
    assert id(api_client.get_subsidy_client()._current_session()) not in sessions


def test_warm_calls_reuse_pooled_connections_across_clients_and_threads(upstream):
    client = api_client.get_subsidy_client()
    client.retrieve_subsidy(demo.SUBSIDY_UUIDS["assigned"])  # warm: token and one connection
    upstream.control.clear_stats()
    for _ in range(5):
        api_client.get_subsidy_client().retrieve_subsidy(demo.SUBSIDY_UUIDS["assigned"])
        api_client.get_lms_client().get_enterprise_user(demo.CUSTOMER_UUID, demo.LEARNERS[0]["lms_user_id"])
    assert upstream.control.stats()["connections_opened"] == 0

    # Threads at once need more connections than one, but never more than threads, and they stay pooled.
    run_concurrently(lambda _: api_client.get_subsidy_client().retrieve_subsidy(demo.SUBSIDY_UUIDS["assigned"]),
                     [(n,) for n in range(4)])
    opened = upstream.control.stats()["connections_opened"]
    assert opened <= 4
    upstream.control.clear_stats()
    for _ in range(4):
        api_client.get_subsidy_client().retrieve_subsidy(demo.SUBSIDY_UUIDS["assigned"])
    assert upstream.control.stats()["connections_opened"] == 0


def test_a_read_whose_connection_drops_is_asked_again(upstream):
    upstream.control.add_fault("subsidy", method="GET", path=r"^/api/v1/subsidies/", status=0, times=1)
    subsidy = api_client.get_subsidy_client().retrieve_subsidy(demo.SUBSIDY_UUIDS["assigned"])
    assert subsidy["uuid"] == demo.SUBSIDY_UUIDS["assigned"]


def test_a_write_whose_connection_drops_is_not_sent_again_by_the_client(upstream):
    upstream.control.add_fault("subsidy", method="POST", path=r"/admin/transactions/", status=0)
    with pytest.raises(UpstreamUnavailableError) as raised:
        api_client.get_subsidy_client().create_transaction(
            demo.SUBSIDY_UUIDS["assigned"], lms_user_id=101, content_key=demo.ORDINARY_RUNS[0],
            subsidy_access_policy_uuid="a1b2c3d4-0000-4000-8000-000000000003", idempotency_key="k-1")
    assert raised.value.request_sent is True  # it left: the subsidy may have written it
    posts = [r for r in upstream.control.requests(service="subsidy") if r["method"] == "POST"]
    assert len(posts) == 1
