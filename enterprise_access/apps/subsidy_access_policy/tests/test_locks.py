"""The policy lock holds across real processes and is released on every path."""
import subprocess
import sys
import textwrap
import time

import pytest
from django.conf import settings

from enterprise_access.apps.subsidy_access_policy.locks import PolicyLockBusy, policy_lock

POLICY = "a1b2c3d4-0000-4000-8000-000000000002"


def test_second_holder_waits_then_gets_busy():
    with policy_lock(POLICY):
        started = time.monotonic()
        with pytest.raises(PolicyLockBusy):
            with policy_lock(POLICY, wait_seconds=0.2):
                pass
        assert time.monotonic() - started >= 0.2


def test_released_on_exception():
    with pytest.raises(RuntimeError):
        with policy_lock(POLICY):
            raise RuntimeError("boom")
    with policy_lock(POLICY, wait_seconds=0):
        pass


def test_waiter_gets_the_lock_once_released():
    import threading

    got = []
    holder_in = threading.Event()

    def hold():
        with policy_lock(POLICY):
            holder_in.set()
            time.sleep(0.3)

    thread = threading.Thread(target=hold)
    thread.start()
    holder_in.wait(5)
    with policy_lock(POLICY, wait_seconds=3):
        got.append(True)
    thread.join()
    assert got == [True]


HOLDER = textwrap.dedent("""
    import os, sys, time, django
    os.environ["DJANGO_SETTINGS_MODULE"] = "enterprise_access.settings.local"
    django.setup()
    from enterprise_access.apps.subsidy_access_policy.locks import policy_lock, PolicyLockBusy
    mode = sys.argv[1]
    if mode == "hold":
        with policy_lock("%s"):
            print("HELD", flush=True)
            sys.stdin.readline()  # hold until the test says so
        print("RELEASED", flush=True)
    else:
        print("WAITING", flush=True)
        started = time.monotonic()
        try:
            with policy_lock("%s", wait_seconds=float(sys.argv[2])):
                print("ACQUIRED %%.2f" %% (time.monotonic() - started), flush=True)
        except PolicyLockBusy:
            print("BUSY", flush=True)
""" % (POLICY, POLICY))


def _env(tmp_path):
    return {"LOCAL_SQLITE_PATH": str(tmp_path / "lock.sqlite3"), "PATH": "/usr/bin:/bin"}


def _spawn(tmp_path, *args):
    return subprocess.Popen([sys.executable, "-c", HOLDER, *args], cwd=settings.BASE_DIR, env=_env(tmp_path),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_lock_holds_across_two_processes_on_the_embedded_default(tmp_path):
    """Processes sharing the local SQLite database cache: while one holds the lock, another is kept out."""
    for command in (["migrate", "--noinput", "-v0"], ["createcachetable", "-v0"]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=settings.BASE_DIR, check=True,
                       env=_env(tmp_path), timeout=120)
    holder = _spawn(tmp_path, "hold")
    assert holder.stdout.readline().strip() == "HELD", holder.stderr.read()
    refused = _spawn(tmp_path, "try", "0.5")
    assert refused.communicate(timeout=60)[0].split() == ["WAITING", "BUSY"]

    admitted = _spawn(tmp_path, "try", "30")
    assert admitted.stdout.readline().strip() == "WAITING"
    time.sleep(1.0)  # it is now waiting on the lock the other process holds
    holder.communicate("release\n", timeout=60)
    out = admitted.communicate(timeout=60)[0].strip()
    assert out.startswith("ACQUIRED"), out
    assert float(out.split()[1]) >= 0.9  # it got in only once the holder let go
