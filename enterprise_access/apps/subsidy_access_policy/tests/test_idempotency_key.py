"""The idempotency key follows the upstream consumer's recipe, so retries reuse it and failures version it."""
from enterprise_access.apps.subsidy_access_policy.models import idempotency_key

SUBSIDY = "5e0c0000-0000-4000-8000-0000000000aa"
POLICY = "a1b2c3d4-0000-4000-8000-000000000002"
RUN = "course-v1:DemoU+Cooking101+2T2026"


def key(existing):
    return idempotency_key(subsidy_uuid=SUBSIDY, policy_uuid=POLICY, lms_user_id=4242, content_key=RUN,
                           existing_transactions=existing)


def test_matches_the_contract_example_without_history():
    assert key([]) == f"ledger-for-subsidy-{SUBSIDY}-c7397913ae86db2deb308f929cb69cb2"


def test_a_failed_transaction_versions_the_key_as_in_the_contract_example():
    failed = {"uuid": "f0e1d2c3-0000-4000-8000-00000000000f", "state": "failed", "reversal": None}
    assert key([failed]) == f"ledger-for-subsidy-{SUBSIDY}-aa33f62b98c30e42da8a021f3655f6f3"


def test_retries_reuse_the_key_while_an_attempt_is_live():
    for state in ("created", "pending", "committed"):
        assert key([{"uuid": "11111111-0000-4000-8000-000000000001", "state": state, "reversal": None}]) == key([])


def test_a_reversal_versions_the_key():
    reversed_tx = {"uuid": "22222222-0000-4000-8000-000000000002", "state": "committed",
                   "reversal": {"uuid": "33333333-0000-4000-8000-000000000003", "state": "committed"}}
    assert key([reversed_tx]) != key([])
    pending_reversal = dict(reversed_tx, reversal={"uuid": "3", "state": "pending"})
    assert key([pending_reversal]) == key([])


def test_each_failure_gives_a_new_key():
    first = {"uuid": "44444444-0000-4000-8000-000000000004", "state": "failed"}
    second = {"uuid": "55555555-0000-4000-8000-000000000005", "state": "failed"}
    assert len({key([]), key([first]), key([first, second])}) == 3


def test_metadata_and_price_do_not_enter_the_key():
    assert key([{"uuid": "x", "state": "committed", "metadata": {"allow_late_enrollment": True}, "quantity": -1}]) \
        == key([])
