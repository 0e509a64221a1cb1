"""Fixtures shared by the whole suite."""
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core.cache import caches

from enterprise_access.devtools import demo


@pytest.fixture(autouse=True)
def _clear_caches():
    """Every test starts with empty caches: cached upstream reads and tokens must not leak between tests."""
    from enterprise_access.apps.api_client.testing import forget_cached_tokens

    for cache in caches.all():
        cache.clear()
    forget_cached_tokens()
    yield
    for cache in caches.all():
        cache.clear()
    forget_cached_tokens()


@pytest.fixture(scope="session", autouse=True)
def _celery_broker_folder():
    """The test process's filesystem broker (settings/test.py): made for the session, removed after it."""
    from django.conf import settings

    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    folders = [Path(options[key]) for key in ("data_folder_in", "processed_folder", "control_folder") if key in options]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    yield
    root = folders[0].parent if folders else None
    if root is not None and root.name.startswith("celery-test-"):
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    """One live upstream emulator per test process, seeded with the demo world."""
    from enterprise_access.devtools.emulator.testing import running_emulator

    with running_emulator(db_path=str(tmp_path_factory.mktemp("emulator") / "upstream.sqlite3")) as running:
        running.control.seed(demo.emulator_seed_document())
        yield running


@pytest.fixture
def upstream(emulator, settings):
    """
    The service's clients pointed at the live emulator, reset to the seeded demo world.

    Gives the world's identifiers (see ``enterprise_access.devtools.demo``) and ``control`` for faults,
    the request log and seeding more objects.
    """
    emulator.control.reset()
    settings.ENTERPRISE_SUBSIDY_URL = f"{emulator.url}/subsidy"
    settings.ENTERPRISE_CATALOG_URL = f"{emulator.url}/catalog"
    settings.LMS_URL = f"{emulator.url}/lms"
    settings.OAUTH2_PROVIDER_URL = f"{emulator.url}/lms/oauth2"
    yield SimpleNamespace(
        url=emulator.url,
        control=emulator.control,
        customer_uuid=demo.CUSTOMER_UUID,
        subsidy_uuid=demo.SUBSIDY_UUIDS["per_learner_enrollment"],
        subsidy_uuids=demo.SUBSIDY_UUIDS,
        catalog_uuid=demo.CATALOG_UUIDS["per_learner_enrollment"],
        catalog_uuids=demo.CATALOG_UUIDS,
        run=demo.ORDINARY_RUNS[0],
        runs=demo.ORDINARY_RUNS,
        price=demo.PRICES[demo.ORDINARY_RUNS[0]],
        prices=demo.PRICES,
        past_deadline_run=demo.PAST_DEADLINE_RUN,
        exec_ed_run=demo.EXEC_ED_RUN,
        not_in_catalog_run=demo.NOT_IN_CATALOG_RUN,
        learner=demo.LEARNERS[0],
        learners=demo.LEARNERS,
        unlinked_learner=demo.UNLINKED_LEARNER,
    )
    emulator.control.clear_faults()


@pytest.fixture
def policy_world(upstream):
    """
    Builds policies on the seeded demo world, the service pointed at the live emulator:
    ``policy_world()``, ``policy_world("per_learner_spend", per_learner_spend_limit=100)``,
    ``policy_world("assigned", spend_limit=...)``. See ``enterprise_access.devtools.testing.build_world_policy``.
    """
    from enterprise_access.devtools.testing import build_world_policy

    return build_world_policy
