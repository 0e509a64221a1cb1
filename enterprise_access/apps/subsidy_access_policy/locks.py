"""
The policy lock: one redemption at a time may check and spend a policy's funds.

It lives in the Django cache so that it holds across processes: the database cache on the embedded
default (its rows go through the independent connection, see ``enterprise_access.db_routers``), Redis in
production. Unlike the upstream service, which refuses at once, a redemption waits a bounded time for a
busy policy, so two learners redeeming at the same moment both succeed when funds allow.
"""
import logging
import random
import time
from contextlib import contextmanager
from uuid import uuid4

from django.conf import settings
from django.core.cache import caches

logger = logging.getLogger(__name__)


class PolicyLockBusy(Exception):
    """Another redemption held the policy lock for longer than we were willing to wait."""

    def __init__(self, policy_uuid, waited_seconds):
        self.policy_uuid = policy_uuid
        self.waited_seconds = waited_seconds
        super().__init__(f"Policy {policy_uuid} stayed busy for {waited_seconds:.2f}s.")


def policy_lock_key(policy_uuid) -> str:
    return f"enterprise-access:policy-lock:{policy_uuid}"


class CacheLockBusy(Exception):
    """A cache lock stayed taken for longer than the caller was willing to wait."""

    def __init__(self, key, waited_seconds):
        self.key = key
        self.waited_seconds = waited_seconds
        super().__init__(f"{key} stayed busy for {waited_seconds:.2f}s.")


@contextmanager
def cache_lock(key, *, wait_seconds, timeout_seconds):
    """
    Hold ``key`` in the lock cache while the block runs; released on every path, only by its holder.

    Waits up to ``wait_seconds`` (raising ``CacheLockBusy`` after); ``timeout_seconds`` bounds how long a crashed
    holder keeps others out. Cache errors (e.g. Redis down) propagate: the caller answers "unavailable" rather
    than going ahead unlocked.
    """
    cache = caches[settings.POLICY_LOCK_CACHE_ALIAS]
    token = uuid4().hex
    started = time.monotonic()
    poll = settings.POLICY_LOCK_POLL_SECONDS
    while not cache.add(key, token, timeout_seconds):
        waited = time.monotonic() - started
        if waited >= wait_seconds:
            raise CacheLockBusy(key, waited)
        # Jitter spreads waiters out so they do not all retry in the same instant.
        time.sleep(min(poll * (0.5 + random.random()), max(wait_seconds - waited, 0.001)))
    try:
        yield
    finally:
        try:
            # If our lock expired and someone else took it, leave theirs alone.
            if cache.get(key) == token:
                cache.delete(key)
        except Exception:  # pylint: disable=broad-except
            logger.exception("Could not release lock %s; it expires in %ss.", key, timeout_seconds)


@contextmanager
def policy_lock(policy_uuid, *, wait_seconds=None, timeout_seconds=None):
    """
    Hold the lock for ``policy_uuid`` while the block runs; ``PolicyLockBusy`` after a bounded wait.

    The wait defaults to ``POLICY_LOCK_WAIT_SECONDS`` and the lifetime to ``POLICY_LOCK_TIMEOUT_SECONDS``.
    """
    wait_seconds = settings.POLICY_LOCK_WAIT_SECONDS if wait_seconds is None else wait_seconds
    try:
        with cache_lock(policy_lock_key(policy_uuid), wait_seconds=wait_seconds,
                        timeout_seconds=timeout_seconds or settings.POLICY_LOCK_TIMEOUT_SECONDS):
            yield
    except CacheLockBusy as busy:
        raise PolicyLockBusy(policy_uuid, busy.waited_seconds) from None
