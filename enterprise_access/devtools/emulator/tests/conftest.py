"""
One emulator per test session, served from a thread on a free port and seeded with ``world.SEED``;
every test starts from the seeded baseline (``reset``). No test touches the service's database.
"""
import uuid

import pytest
import requests

from enterprise_access.devtools.emulator.testing import running_emulator

from . import world

TIMEOUT = 10


class Api:
    """An authenticated client of the emulated services; paths include the service prefix."""

    def __init__(self, url, token):
        self.url = url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"JWT {token}"

    def get(self, path, **kwargs):
        kwargs.setdefault("timeout", TIMEOUT)
        return self.session.get(self.url + path, **kwargs)

    def post(self, path, **kwargs):
        kwargs.setdefault("timeout", TIMEOUT)
        return self.session.post(self.url + path, **kwargs)

    def redeem(self, subsidy_uuid, lms_user_id, content_key, *, policy=world.POLICY, key="fresh", metadata=None,
               **extra):
        """POST a create-transaction; ``key="fresh"`` sends a unique idempotency key, None sends none."""
        body = {"subsidy_uuid": subsidy_uuid, "lms_user_id": lms_user_id, "content_key": content_key,
                "subsidy_access_policy_uuid": policy, "metadata": metadata, **extra}
        if key == "fresh":
            key = f"test-{uuid.uuid4()}"
        if key is not None:
            body["idempotency_key"] = key
        return self.post(f"/subsidy/api/v2/subsidies/{subsidy_uuid}/admin/transactions/", json=body)

    def subsidy(self, subsidy_uuid):
        response = self.get(f"/subsidy/api/v1/subsidies/{subsidy_uuid}/")
        assert response.status_code == 200, response.text
        return response.json()

    def balance(self, subsidy_uuid):
        return self.subsidy(subsidy_uuid)["current_balance"]

    def can_redeem(self, subsidy_uuid, lms_user_id, content_key):
        return self.get(f"/subsidy/api/v1/subsidies/{subsidy_uuid}/can_redeem/",
                        params={"lms_user_id": lms_user_id, "content_key": content_key})

    def transactions(self, subsidy_uuid, **params):
        return self.get(f"/subsidy/api/v2/subsidies/{subsidy_uuid}/admin/transactions/", params=params)


@pytest.fixture(scope="session")
def emulator():
    with running_emulator() as running:
        running.control.seed(world.SEED)
        yield running


@pytest.fixture(scope="session")
def control(emulator):
    return emulator.control


@pytest.fixture(scope="session")
def token(control):
    return control.token()


@pytest.fixture(autouse=True)
def _baseline(control):
    control.reset()
    yield


@pytest.fixture
def api(emulator, token):
    return Api(emulator.url, token)
