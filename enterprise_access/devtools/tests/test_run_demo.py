"""
``run_demo`` (decision 0017): it refuses busy ports before it starts anything, keeps each pair of ports' state
apart, talks only to the processes it started, and claims success only after the printed request has worked.
"""
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from enterprise_access.apps.subsidy_access_policy.constants import AttemptOutcome
from enterprise_access.apps.subsidy_access_policy.models import RedemptionAttempt
from enterprise_access.devtools import demo
from enterprise_access.devtools.emulator.testing import running_emulator
from enterprise_access.devtools.management.commands import run_demo
from enterprise_access.devtools.management.commands.run_demo import Command, DemoPlan
from enterprise_access.devtools.net import free_port, port_problem, silent_listener
from enterprise_access.devtools.tokens import mint_jwt

REPO_ROOT = Path(settings.BASE_DIR)
TRANSACTIONAL = pytest.mark.django_db(transaction=True, databases=["default", "independent"])
SUGGESTION = re.compile(r"Run: make demo PORT=(\d+) EMULATOR_PORT=(\d+)  "
                        r"\(or: python manage\.py run_demo --port \1 --emulator-port \2\)")


@pytest.fixture
def nothing_may_start(monkeypatch):
    """Fails the test if run_demo starts or runs any child process; yields the list of attempts."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise AssertionError(f"run_demo started a process: {args}")

    monkeypatch.setattr(run_demo.subprocess, "Popen", refuse)
    monkeypatch.setattr(run_demo.subprocess, "run", refuse)
    return attempts


@pytest.fixture
def listener():
    """A socket listening on a free port, as another demo's server would be: yields (port, socket)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1], sock


def _received(sock):
    """
    What each client that connected to the listening ``sock`` sent (bytes per connection).

    On loopback a connection is in the accept queue before the client's connect returns, so after the command has
    returned, everything it connected is already there: no waiting for stragglers.
    """
    sock.setblocking(False)
    received = []
    while True:
        try:
            connection, _ = sock.accept()
        except BlockingIOError:
            return received
        with connection:
            connection.settimeout(5)  # the client has closed: recv returns what it sent, then b""
            chunks = []
            while chunk := connection.recv(4096):
                chunks.append(chunk)
            received.append(b"".join(chunks))


# ----- the port check: before anything starts ----------------------------------------------------------------


def test_a_listening_service_port_is_refused_by_name_and_nothing_is_started_or_sent(
        listener, nothing_may_start, tmp_path):
    busy, sock = listener
    emulator_port = free_port()
    state = tmp_path / "state"

    with pytest.raises(CommandError) as refused:
        call_command("run_demo", port=busy, emulator_port=emulator_port, state_dir=str(state))

    message = str(refused.value)
    assert message.startswith(f"Port {busy} (the service) on 127.0.0.1 is in use: something is listening on it "
                              f"(another demo?).\nNothing was started.\nRun: make demo PORT=")
    assert f"Port {emulator_port}" not in message  # only the busy port is named
    port, other = map(int, SUGGESTION.search(message).groups())
    assert (port - busy, other - emulator_port) in {(k, k) for k in range(100, 5001, 100)}
    assert port_problem(port) is None and port_problem(other) is None
    assert nothing_may_start == []
    assert not state.exists()  # no database, no demo.json
    # The check connected (that is how it saw the listener) and sent nothing: no HTTP request reached it.
    assert _received(sock) == [b""]


def test_a_listening_emulator_port_is_refused_the_same_way(nothing_may_start, tmp_path):
    with silent_listener() as busy:
        port = free_port()
        with pytest.raises(CommandError, match=rf"^Port {busy} \(the upstream emulator\) on 127\.0\.0\.1 is in use: "
                                               r"something is listening on it \(another demo\?\)\.\n"
                                               r"Nothing was started\.\nRun: make demo PORT=\d+ EMULATOR_PORT=\d+"):
            call_command("run_demo", port=port, emulator_port=busy, state_dir=str(tmp_path / "state"))
    assert nothing_may_start == []
    assert not (tmp_path / "state").exists()


def test_both_busy_ports_are_named(listener, nothing_may_start, tmp_path):
    busy, _ = listener
    with silent_listener() as busy_emulator:
        with pytest.raises(CommandError) as refused:
            call_command("run_demo", port=busy, emulator_port=busy_emulator, state_dir=str(tmp_path / "state"))
    lines = str(refused.value).splitlines()
    assert lines[0] == (f"Port {busy} (the service) on 127.0.0.1 is in use: something is listening on it "
                        f"(another demo?).")
    assert lines[1] == (f"Port {busy_emulator} (the upstream emulator) on 127.0.0.1 is in use: something is "
                        f"listening on it (another demo?).")
    assert lines[2] == "Nothing was started."
    assert SUGGESTION.fullmatch(lines[3])


def test_a_port_held_without_listening_is_refused(nothing_may_start, tmp_path):
    """Nothing answers there, but the servers could not bind it: the bind probe finds that."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        held = holder.getsockname()[1]
        with pytest.raises(CommandError, match=rf"^Port {held} \(the upstream emulator\) on 127\.0\.0\.1 is in use: "
                                               r"another socket holds it \(another demo\?\)\."):
            call_command("run_demo", port=free_port(), emulator_port=held, state_dir=str(tmp_path / "state"))
    assert nothing_may_start == []


@pytest.mark.parametrize(("port", "emulator_port", "message"), [
    (18000, 18000, "The service and the upstream emulator need two different ports; both are 18000. Run: make demo"),
    (0, 18270, "--port (PORT) must be a TCP port between 1 and 65535, not 0."),
    (18000, 70000, "--emulator-port (EMULATOR_PORT) must be a TCP port between 1 and 65535, not 70000."),
])
def test_ports_out_of_range_or_equal_are_refused(port, emulator_port, message, nothing_may_start, tmp_path):
    with pytest.raises(CommandError) as refused:
        call_command("run_demo", port=port, emulator_port=emulator_port, state_dir=str(tmp_path / "state"))
    assert str(refused.value).startswith(message)
    assert nothing_may_start == []


def test_equal_ports_are_told_a_free_pair_not_a_busy_default(listener, monkeypatch, nothing_may_start, tmp_path):
    # The default pair is taken (another demo): the advice must not send the user there.
    busy, _ = listener
    monkeypatch.setattr(run_demo, "DEFAULT_PORT", busy)
    monkeypatch.setattr(run_demo, "DEFAULT_EMULATOR_PORT", free_port())
    same = free_port()
    with pytest.raises(CommandError) as refused:
        call_command("run_demo", port=same, emulator_port=same, state_dir=str(tmp_path / "state"))
    port, emulator_port = map(int, SUGGESTION.search(str(refused.value)).groups())
    assert port != busy and port_problem(port) is None and port_problem(emulator_port) is None
    assert nothing_may_start == []


def test_the_makefile_passes_the_ports_through():
    env = {key: value for key, value in os.environ.items()
           if key not in ("PORT", "EMULATOR_PORT", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")}

    def run_demo_line(*arguments):
        printed = subprocess.run(["make", "--no-print-directory", "-n", "demo", *arguments], cwd=REPO_ROOT, env=env,
                                 capture_output=True, text=True, check=True).stdout
        return [line for line in printed.splitlines() if "manage.py run_demo" in line]

    assert run_demo_line("PORT=18100", "EMULATOR_PORT=18370") == [
        ".venv/bin/python manage.py run_demo --port 18100 --emulator-port 18370"]
    assert run_demo_line() == [".venv/bin/python manage.py run_demo --port 18000 --emulator-port 18270"]


# ----- where each demo keeps its state -------------------------------------------------------------------------


def test_the_default_ports_keep_the_readme_paths_and_other_ports_get_their_own():
    default = DemoPlan.for_ports(18000, 18270, var_dir="/repo/var")
    other = DemoPlan.for_ports(18100, 18370, var_dir="/repo/var")
    assert (default.database, default.emulator_database, default.identifiers) == (
        Path("/repo/var/enterprise_access.sqlite3"), Path("/repo/var/upstream_emulator.sqlite3"),
        Path("/repo/var/demo.json"))
    assert (other.database, other.emulator_database, other.identifiers) == (
        Path("/repo/var/demo-18100-18370/enterprise_access.sqlite3"),
        Path("/repo/var/demo-18100-18370/upstream_emulator.sqlite3"), Path("/repo/var/demo-18100-18370/demo.json"))
    assert other.service_url == "http://127.0.0.1:18100"
    assert other.emulator_url == "http://127.0.0.1:18370"
    assert other.redeem_url("p") == "http://127.0.0.1:18100/api/v1/policy-redemption/p/redeem/"


def test_each_demo_has_its_own_broker_folder_and_a_worker_and_reconciler_beside_the_service():
    default = DemoPlan.for_ports(18000, 18270, var_dir="/repo/var")
    other = DemoPlan.for_ports(18100, 18370, var_dir="/repo/var")
    assert default.broker_dir == Path("/repo/var/celery")
    assert other.broker_dir == Path("/repo/var/demo-18100-18370/celery")
    assert run_demo.worker_command()[1:6] == ["-m", "celery", "-A", "enterprise_access", "worker"]
    assert run_demo.reconciler_command()[2:] == ["reconcile_redemptions", "--every", "60", "--json"]


@TRANSACTIONAL
@pytest.mark.skipif(settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3",
                    reason="the child runs the demo's settings, on the SQLite test database's file")
def test_the_reconciler_child_runs_a_pass(upstream, tmp_path):
    """The reconciler's command line is one reconcile_redemptions accepts: one pass of it prints its summary."""
    result = subprocess.run(
        [*run_demo.reconciler_command(), "--passes", "1"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "enterprise_access.settings.local",
             "LOCAL_SQLITE_PATH": str(settings.DATABASES["default"]["NAME"]), "EMULATOR_URL": upstream.url})
    assert result.returncode == 0, result.stderr
    assert "reservations_errors" in json.loads(result.stdout.strip().splitlines()[-1])


# ----- only the emulator this run started --------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator_child(tmp_path_factory):
    """
    A real ``run_upstream_emulator`` child started with run_demo's command line: (process, plan).

    Its token starts with "-", which argparse would take for an option if it were passed as a separate word.
    """
    state = tmp_path_factory.mktemp("demo-state")
    plan = DemoPlan(port=free_port(), emulator_port=free_port(), state_dir=state)
    process = subprocess.Popen(
        run_demo.emulator_command(plan, "-this-run"), cwd=REPO_ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "enterprise_access.settings.test"}, stdout=subprocess.DEVNULL)
    try:
        yield process, plan
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_emulator_it_started_is_recognised_by_its_token(emulator_child):
    process, plan = emulator_child
    Command()._verify_emulator(plan, process, "-this-run")


def test_an_emulator_that_does_not_know_this_runs_token_is_refused(emulator_child):
    process, plan = emulator_child
    with pytest.raises(CommandError, match=rf"^Something answers at {plan.emulator_url}, but it is not the emulator "
                                           r"this demo started \(it does not know this run's token\); nothing was "
                                           r"seeded\.$"):
        Command()._verify_emulator(plan, process, "another-run")


def test_a_port_taken_by_another_process_fails_the_start_without_a_request(tmp_path):
    """The child cannot bind the port someone else holds, and exits: run_demo says so and sends nothing there."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(8)
        plan = DemoPlan(port=free_port(), emulator_port=other.getsockname()[1], state_dir=tmp_path)
        # Stands in for the emulator child (a Django start takes seconds): it binds the port, as the emulator would.
        process = subprocess.Popen(
            [sys.executable, "-c", f"import socket; socket.socket().bind(('127.0.0.1', {plan.emulator_port}))"],
            stderr=subprocess.DEVNULL)
        try:
            with pytest.raises(CommandError, match=rf"^The upstream emulator exited with code 1 before listening on "
                                                   rf"127\.0\.0\.1:{plan.emulator_port}"):
                Command()._verify_emulator(plan, process, "this-run")
        finally:
            process.wait(timeout=10)
        assert _received(other) == []  # not even its health check was sent


# ----- the self-check and the printed learner ----------------------------------------------------------------


@pytest.fixture
def demo_world(upstream, live_server, tmp_path):
    """The demo world seeded into the test database, the service live, its clients on the session emulator."""
    call_command("seed_demo", json=True, skip_emulator=True, stdout=open(os.devnull, "w"))
    world = {
        "policies": dict(demo.POLICY_UUIDS), "subsidies": dict(demo.SUBSIDY_UUIDS),
        "content": {"ordinary": list(demo.ORDINARY_RUNS)},
        "learners": [{"lms_user_id": lr["lms_user_id"], "email": lr["email"]} for lr in demo.LEARNERS],
    }
    port = int(live_server.url.rsplit(":", 1)[1])
    emulator_port = int(upstream.url.rsplit(":", 1)[1])
    return world, DemoPlan(port=port, emulator_port=emulator_port, state_dir=tmp_path)


@pytest.mark.emulator
@TRANSACTIONAL
def test_the_self_check_redeems_through_the_service_finds_it_in_its_emulator_and_reverses_it(demo_world, upstream):
    world, plan = demo_world
    learner = demo.self_check_learner(1)

    checked = Command()._self_check(plan, world, learner)

    subsidy = world["subsidies"]["per_learner_enrollment"]
    [transaction] = [tx for tx in upstream.control.transactions(subsidy) if tx["lms_user_id"] == learner["lms_user_id"]]
    assert checked == {"learner": learner, "content_key": demo.ORDINARY_RUNS[0],
                       "transaction_uuid": transaction["uuid"]}
    assert transaction["state"] == "committed"
    assert transaction["reversal"]["state"] == "committed"  # it spent nothing
    attempt = RedemptionAttempt.objects.get(lms_user_id=learner["lms_user_id"])
    assert (attempt.outcome, str(attempt.transaction_uuid)) == (AttemptOutcome.REDEEMED, transaction["uuid"])
    # Reversed, so the next run's check (another learner, or this one again) can redeem once more.
    assert Command()._self_check(plan, world, learner)["transaction_uuid"] != transaction["uuid"]


@pytest.mark.emulator
@TRANSACTIONAL
def test_the_self_check_refuses_a_service_that_writes_to_another_emulator(demo_world, upstream):
    """A service wired to some other emulator redeems fine there; that is not this run's demo, so it is refused."""
    world, _ = demo_world
    learner = demo.self_check_learner(2)
    upstream.control.seed(demo.linked_learners_seed_document([learner]))  # the learner exists where it redeems
    with running_emulator() as ours:
        ours.control.seed(demo.emulator_seed_document())
        plan = DemoPlan(port=demo_world[1].port, emulator_port=int(ours.url.rsplit(":", 1)[1]),
                        state_dir=demo_world[1].state_dir)
        with pytest.raises(CommandError, match=r"redeemed, but transaction [0-9a-f-]+ is not in the emulator this "
                                               r"demo started: the service answering is not this run's\."):
            Command()._self_check(plan, world, learner)
        # Nothing was redeemed in this run's emulator; the transaction is in the other one.
        assert [tx for tx in ours.control.transactions() if tx["lms_user_id"] == learner["lms_user_id"]] == []
        assert [tx["state"] for tx in upstream.control.transactions()
                if tx["lms_user_id"] == learner["lms_user_id"]] == ["committed"]


@pytest.mark.emulator
@TRANSACTIONAL
def test_the_printed_learner_and_course_are_ones_the_service_can_redeem_now(demo_world):
    world, plan = demo_world
    policy = world["policies"]["per_learner_enrollment"]
    learner, content_key, token = Command()._redeemable_pair(plan, world)
    assert (learner["lms_user_id"], content_key) == (101, demo.ORDINARY_RUNS[0])

    def redeem(lms_user_id, key, jwt):
        return requests.post(plan.redeem_url(policy), json={"lms_user_id": lms_user_id, "content_key": key},
                             headers={"Authorization": f"JWT {jwt}"}, timeout=30)

    # The printed token and body redeem; after that, the next course is printed, then the next learner.
    assert redeem(101, content_key, token).status_code == 200
    learner, content_key, token = Command()._redeemable_pair(plan, world)
    assert (learner["lms_user_id"], content_key) == (101, demo.ORDINARY_RUNS[1])
    for key in demo.ORDINARY_RUNS[1:]:
        assert redeem(101, key, mint_jwt(lms_user_id=101, roles=[f"enterprise_learner:{demo.CUSTOMER_UUID}"])
                      ).status_code == 200
    learner, content_key, _ = Command()._redeemable_pair(plan, world)
    assert (learner["lms_user_id"], content_key) == (102, demo.ORDINARY_RUNS[0])


def test_suggestions_skip_a_pair_with_a_busy_port(listener):
    busy, _ = listener
    plan = DemoPlan(port=busy - 100, emulator_port=free_port(), state_dir=Path("/unused"))
    port, emulator_port = run_demo.suggest_ports(plan)
    assert port - plan.port == emulator_port - plan.emulator_port >= 200  # not busy's pair
    assert port_problem(port) is None and port_problem(emulator_port) is None


@pytest.mark.emulator
def test_seed_demo_migrate_prepares_a_fresh_database_and_keeps_stdout_one_json_document(upstream, tmp_path):
    """What run_demo's seeding child does: a database of its own, migrated, identifiers on stdout."""
    database = tmp_path / "demo.sqlite3"
    result = subprocess.run(
        [sys.executable, "manage.py", "seed_demo", "--json", "--migrate", "--emulator-url", upstream.url,
         "--service-url", "http://127.0.0.1:18100"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": run_demo.CHILD_SETTINGS, "LOCAL_SQLITE_PATH": str(database)})
    assert result.returncode == 0, result.stderr
    world = json.loads(result.stdout)
    assert (world["service_url"], world["emulator_url"]) == ("http://127.0.0.1:18100", upstream.url)
    assert "Applying subsidy_access_policy.0001_initial... OK" in result.stderr
    with sqlite3.connect(database) as db:
        policies = {row[0] for row in db.execute("SELECT uuid FROM subsidy_access_policy_subsidyaccesspolicy")}
    assert {uuid.replace("-", "") for uuid in world["policies"].values()} <= policies


def test_stopping_a_child_works_even_when_it_ignores_sigint():
    """``make demo &`` starts everything with SIGINT ignored; the children must still stop, not be killed later."""
    child = subprocess.Popen([sys.executable, "-c", "import signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                              "print('ready', flush=True); sys.stdin.read()"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "ready\n"
        run_demo._stop(child)
        assert child.returncode == -signal.SIGTERM  # stopped by the first signal, not SIGKILLed after the wait
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
