"""
Helpers the whole test suite shares (the emulator's own are in ``emulator/testing.py``).

- ``build_world_policy(kind, **overrides)``: a policy of any type on the seeded demo world's customer, and on the
  subsidy and catalog the demo gives that type. Tests reach it through the ``policy_world`` fixture
  (``enterprise_access/conftest.py``), which also points the service at the live emulator.
- ``run_concurrently(fn, args_list)``: call ``fn`` from one thread per argument tuple, all released at once.
"""
import threading
import time

from django.db import connections

from . import demo

POLICY_KINDS = ("per_learner_enrollment", "per_learner_spend", "assigned")


def build_world_policy(kind: str = "per_learner_enrollment", **overrides):
    """
    Create a policy of ``kind`` wired to the demo world: ``build_world_policy("assigned", spend_limit=10_000)``.

    The customer, subsidy and catalog default to the demo world's for that kind; any model field can be
    overridden (``subsidy_uuid=...`` for a subsidy seeded by the test). Factory defaults fill in the rest.
    """
    from enterprise_access.apps.subsidy_access_policy.tests.factories import (
        AssignedPolicyFactory,
        PerLearnerEnrollmentPolicyFactory,
        PerLearnerSpendPolicyFactory,
    )

    factories = {"per_learner_enrollment": PerLearnerEnrollmentPolicyFactory,
                 "per_learner_spend": PerLearnerSpendPolicyFactory, "assigned": AssignedPolicyFactory}
    if kind not in factories:
        raise ValueError(f"Unknown policy kind {kind!r}; choose one of {', '.join(POLICY_KINDS)}.")
    fields = {"enterprise_customer_uuid": demo.CUSTOMER_UUID, "subsidy_uuid": demo.SUBSIDY_UUIDS[kind],
              "catalog_uuid": demo.CATALOG_UUIDS[kind], **overrides}
    return factories[kind](**fields)


def run_concurrently(fn, args_list, *, timeout: float = 60):
    """
    Call ``fn(*args)`` for every tuple in ``args_list``, each in its own thread, all released together.

    The threads wait at one barrier so the calls really overlap. Each thread closes its own database connections
    when it is done (Django opens one per thread). Returns the results in the order of ``args_list``; if any call
    raised, re-raises the first such exception (by input order) once every thread has finished. A thread still
    running after ``timeout`` seconds fails the call with ``TimeoutError``.
    """
    args_list = [tuple(args) for args in args_list]
    barrier = threading.Barrier(len(args_list))
    results, errors = [None] * len(args_list), [None] * len(args_list)

    def call(index, args):
        try:
            barrier.wait(timeout)
            results[index] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 (handed back to the caller's thread below)
            errors[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=call, args=(index, args), name=f"run-concurrently-{index}", daemon=True)
               for index, args in enumerate(args_list)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [thread.name for thread in threads if thread.is_alive()]
    if stuck:
        raise TimeoutError(f"{len(stuck)} of {len(threads)} concurrent calls still running after {timeout:g}s")
    for error in errors:
        if error is not None:
            raise error
    return results
