"""
``python manage.py run_demo [--port 18000] [--emulator-port 18270] [--learners N] [--state-dir DIR]``: the whole
service on one machine (what ``make demo`` runs; ``make demo PORT=… EMULATOR_PORT=…`` passes the ports).

It says "The demo is running." only when that is true of the processes it started, and stops at the first thing
that is not as expected (decision 0017):

1. Both ports on 127.0.0.1 are checked before anything is started or written; a busy one is refused by name, with
   a free pair of ports to use instead.
2. The upstream emulator starts with a token made for this run. It is spoken to only once this run's child holds the
   listening socket, and seeded only once its health check echoes the token.
3. The demo's own database is migrated and seeded: ``var/enterprise_access.sqlite3`` (and the emulator's
   ``var/upstream_emulator.sqlite3``) on the default ports, ``var/demo-<port>-<emulator port>/`` on any other pair.
4. The service starts, pointed at that emulator and that database, and is spoken to once its child holds the port.
5. Self-check: the printed request is made once for a throwaway learner; the transaction must appear in this run's
   emulator (so the service is this run's, wired to this run's emulator), and is then reversed.
6. The printed learner and course are ones the service says can be redeemed now.
7. Beside the service run, as in production, a Celery worker (background jobs such as bulk forcing, on kombu's
   filesystem broker in the demo's own folder: no broker server) and ``reconcile_redemptions --every 60`` (the
   reconciler that settles uncertain redemptions, decision 0011); see decision 0019.

Ctrl-C stops every process it started; running it again needs no cleanup.
"""
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from enterprise_access.devtools import demo
from enterprise_access.devtools.net import port_problem, wait_until_listening
from enterprise_access.devtools.tokens import mint_jwt

MANAGE = str(Path(settings.BASE_DIR) / "manage.py")
HOST = "127.0.0.1"
DEFAULT_PORT = 18000
DEFAULT_EMULATOR_PORT = 18270
# The children always run the local settings: LOCAL_SQLITE_PATH and EMULATOR_URL mean something only there.
CHILD_SETTINGS = "enterprise_access.settings.local"
STARTUP_TIMEOUT = 60  # seconds for a child to listen; Django takes a few seconds to start on a busy machine
REQUEST_TIMEOUT = 60
# How far apart the suggested ports are from the requested ones, and how many steps to try.
SUGGESTION_STEP, SUGGESTION_TRIES = 100, 50


@dataclass(frozen=True)
class DemoPlan:
    """The ports a demo listens on and where it keeps its state (two databases and ``demo.json``)."""

    port: int
    emulator_port: int
    state_dir: Path

    @classmethod
    def for_ports(cls, port, emulator_port, *, var_dir, state_dir=None):
        """
        The default ports keep the paths the README names (``var/``); any other pair gets a directory of its own.

        A running demo holds both its ports, so no other running demo can have the same pair, and so none can be
        writing to the same files.
        """
        if state_dir is None:
            default = (port, emulator_port) == (DEFAULT_PORT, DEFAULT_EMULATOR_PORT)
            state_dir = Path(var_dir) if default else Path(var_dir) / f"demo-{port}-{emulator_port}"
        return cls(port, emulator_port, Path(state_dir))

    @property
    def service_url(self):
        return f"http://{HOST}:{self.port}"

    @property
    def emulator_url(self):
        return f"http://{HOST}:{self.emulator_port}"

    @property
    def database(self):
        return self.state_dir / "enterprise_access.sqlite3"

    @property
    def emulator_database(self):
        return self.state_dir / "upstream_emulator.sqlite3"

    @property
    def identifiers(self):
        return self.state_dir / "demo.json"

    @property
    def broker_dir(self):
        """The Celery worker's filesystem broker: the demo's own, so two demos never take each other's jobs."""
        return self.state_dir / "celery"

    def redeem_url(self, policy_uuid):
        return f"{self.service_url}/api/v1/policy-redemption/{policy_uuid}/redeem/"


def _command_line(port, emulator_port):
    return (f"make demo PORT={port} EMULATOR_PORT={emulator_port}  "
            f"(or: python manage.py run_demo --port {port} --emulator-port {emulator_port})")


def suggest_ports(plan):
    """A pair of ports, each a multiple of ``SUGGESTION_STEP`` above the requested one, both free now; or None."""
    for step in range(SUGGESTION_STEP, SUGGESTION_STEP * (SUGGESTION_TRIES + 1), SUGGESTION_STEP):
        port, emulator_port = plan.port + step, plan.emulator_port + step
        if max(port, emulator_port) > 65535:
            return None
        if port_problem(port, HOST) is None and port_problem(emulator_port, HOST) is None:
            return port, emulator_port
    return None


def check_ports(plan):
    """Refuse (``CommandError``) a port out of range, two equal ports, or a port that is busy or cannot be bound."""
    for name, port in (("--port (PORT)", plan.port), ("--emulator-port (EMULATOR_PORT)", plan.emulator_port)):
        if not 1 <= port <= 65535:
            raise CommandError(f"{name} must be a TCP port between 1 and 65535, not {port}.")
    if plan.port == plan.emulator_port:
        default = replace(plan, port=DEFAULT_PORT, emulator_port=DEFAULT_EMULATOR_PORT)
        free = (default.port, default.emulator_port) if not any(
            port_problem(port, HOST) for port in (default.port, default.emulator_port)) else suggest_ports(default)
        advice = (f"Run: {_command_line(*free)}" if free else
                  "Choose two free ports: make demo PORT=<port> EMULATOR_PORT=<port>")
        raise CommandError(f"The service and the upstream emulator need two different ports; both are {plan.port}. "
                           f"{advice}")
    problems = []
    for what, port in (("the service", plan.port), ("the upstream emulator", plan.emulator_port)):
        problem = port_problem(port, HOST)
        if problem:
            hint = " (another demo?)" if problem.startswith("is in use") else ""
            problems.append(f"Port {port} ({what}) on {HOST} {problem}{hint}.")
    if not problems:
        return
    suggestion = suggest_ports(plan)
    advice = (f"Run: {_command_line(*suggestion)}" if suggestion else
              "Choose two free ports: make demo PORT=<port> EMULATOR_PORT=<port>")
    raise CommandError("\n".join([*problems, "Nothing was started.", advice]))


def emulator_command(plan, run_token):
    """The emulator child's command line. ``--run-token=`` in one word: a token may start with "-"."""
    return [sys.executable, MANAGE, "run_upstream_emulator", "--host", HOST, "--port", str(plan.emulator_port),
            "--db", str(plan.emulator_database), f"--run-token={run_token}"]


def worker_command():
    """The Celery worker child: one process (``solo`` pool), enough for a demo on SQLite."""
    return [sys.executable, "-m", "celery", "-A", "enterprise_access", "worker", "--pool", "solo",
            "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "info"]


def reconciler_command():
    """The reconciler child: a pass every minute, as production runs it (decision 0011), one JSON line a pass."""
    return [sys.executable, MANAGE, "reconcile_redemptions", "--every", "60", "--json"]


def _stop(process):
    """
    SIGTERM, not SIGINT: a demo started in the background (``make demo &``) has SIGINT ignored, and so have its
    children. The emulator closes its database on SIGTERM; Django's server just exits.
    """
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


def _terminate(*_):
    raise KeyboardInterrupt()


def _learner_token(learner):
    return mint_jwt(lms_user_id=learner["lms_user_id"], email=learner["email"],
                    roles=[f"enterprise_learner:{demo.CUSTOMER_UUID}"])


class Command(BaseCommand):
    help = "Run the emulator, the service, a Celery worker and the reconciler with the demo world; Ctrl-C stops them."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="The service's port on 127.0.0.1.")
        parser.add_argument("--emulator-port", type=int, default=DEFAULT_EMULATOR_PORT,
                            help="The upstream emulator's port on 127.0.0.1.")
        parser.add_argument("--learners", type=int, default=0, help="Extra demo learners (for load tests).")
        parser.add_argument("--state-dir", help="Where the databases and demo.json live (default: var/ on the "
                                                "default ports, var/demo-<port>-<emulator port>/ on others).")

    def handle(self, *args, **options):
        plan = DemoPlan.for_ports(options["port"], options["emulator_port"], var_dir=settings.VAR_DIR,
                                  state_dir=options["state_dir"])
        if options["learners"] < 0:
            raise CommandError("--learners must be zero or more.")
        check_ports(plan)  # before anything is started or written
        # A terminal's Ctrl-C is SIGINT; a supervisor or `timeout` sends SIGTERM: stop both children either way.
        previous_sigterm = signal.signal(signal.SIGTERM, _terminate)
        run_token = secrets.token_hex(16)
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": CHILD_SETTINGS, "PYTHONUNBUFFERED": "1",
               "EMULATOR_URL": plan.emulator_url, "LOCAL_SQLITE_PATH": str(plan.database),
               "CELERY_BROKER_DIR": str(plan.broker_dir)}
        emulator = service = worker = reconciler = None
        try:
            plan.state_dir.mkdir(parents=True, exist_ok=True)
            emulator = subprocess.Popen(emulator_command(plan, run_token), env=env)
            self._verify_emulator(plan, emulator, run_token)
            world = self._seed(plan, env, options["learners"])
            self._alive(emulator, "upstream emulator")
            service = subprocess.Popen([sys.executable, MANAGE, "runserver", f"{HOST}:{plan.port}", "--noreload"],
                                       env=env)
            self._verify_service(plan, service)
            worker = subprocess.Popen(worker_command(), env=env, cwd=settings.BASE_DIR)
            # A JSON line a minute would bury the welcome: the passes go to a log beside the demo's databases.
            with open(plan.state_dir / "reconcile.log", "a", encoding="utf-8") as reconcile_log:
                reconciler = subprocess.Popen(reconciler_command(), env=env, cwd=settings.BASE_DIR,
                                              stdout=reconcile_log)
            checked = self._self_check(plan, world, demo.self_check_learner(secrets.randbelow(99_999_999)))
            learner, content_key, token = self._redeemable_pair(plan, world)
            # Both answered as this run's; they must still be the processes this run started.
            children = ((emulator, "upstream emulator"), (service, "service"), (worker, "Celery worker"),
                        (reconciler, "reconciler"))
            for process, what in children:
                self._alive(process, what)
            plan.identifiers.write_text(json.dumps(world, indent=2))
            self._print_welcome(plan, world, learner, content_key, token, checked)
            while True:
                for process, what in children:
                    if process.poll() is not None:
                        raise CommandError(f"The {what} stopped (exit code {process.returncode}).")
                time.sleep(0.5)
        except KeyboardInterrupt:
            self.stdout.write("\nStopping the service, the worker, the reconciler and the emulator.")
        finally:
            # A second Ctrl-C, or `timeout` signalling the whole process group, must not cut the shutdown short.
            previous_sigint = signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            try:
                _stop(reconciler)
                _stop(worker)
                _stop(service)
                _stop(emulator)
            finally:
                signal.signal(signal.SIGINT, previous_sigint)
                signal.signal(signal.SIGTERM, previous_sigterm)

    # ----- each step checks what it depends on ------------------------------------------------------------------

    @staticmethod
    def _alive(process, what):
        if process.poll() is not None:
            raise CommandError(f"The {what} this demo started has exited (code {process.returncode}); see above.")

    def _verify_emulator(self, plan, emulator, run_token):
        """The emulator on the port is the child we started: it holds the socket, and it knows this run's token."""
        wait_until_listening(emulator, plan.emulator_port, what="upstream emulator", host=HOST,
                             timeout=STARTUP_TIMEOUT, error=CommandError)
        try:
            health = requests.get(f"{plan.emulator_url}/_control/health", timeout=REQUEST_TIMEOUT).json()
        except (requests.RequestException, ValueError) as exc:
            raise CommandError(f"The upstream emulator at {plan.emulator_url} did not answer its health check "
                               f"({exc}); nothing was seeded.") from exc
        answered = health.get("run_token") if isinstance(health, dict) else None
        if not isinstance(answered, str) or not secrets.compare_digest(answered, run_token):
            raise CommandError(f"Something answers at {plan.emulator_url}, but it is not the emulator this demo "
                               f"started (it does not know this run's token); nothing was seeded.")

    def _seed(self, plan, env, learners):
        """Migrate and seed this demo's own database and emulator, in a child run on that database."""
        result = subprocess.run(
            [sys.executable, MANAGE, "seed_demo", "--json", "--migrate", "--learners", str(learners),
             "--emulator-url", plan.emulator_url, "--service-url", plan.service_url],
            env=env, stdout=subprocess.PIPE, text=True, check=False)
        if result.returncode != 0:
            raise CommandError(f"Seeding the demo failed (exit code {result.returncode}); see above.")
        return json.loads(result.stdout)

    def _verify_service(self, plan, service):
        wait_until_listening(service, plan.port, what="service", host=HOST, timeout=STARTUP_TIMEOUT,
                             error=CommandError)
        try:
            response = requests.get(f"{plan.service_url}/health/", timeout=REQUEST_TIMEOUT)
        except requests.RequestException as exc:
            raise CommandError(f"The service at {plan.service_url} did not answer /health/ ({exc}).") from exc
        if response.status_code != 200:
            raise CommandError(f"The service at {plan.service_url} answered /health/ with {response.status_code}.")

    def _self_check(self, plan, world, learner):
        """
        Make the printed request once, for ``learner`` (a throwaway one), and prove where it went.

        The transaction must be in *this run's* emulator (verified by its token), which a service started by anyone
        else could not have written; it is then reversed, so the check spends nothing and the learner can go again.
        """
        policy_uuid = world["policies"]["per_learner_enrollment"]
        subsidy_uuid = world["subsidies"]["per_learner_enrollment"]
        content_key = world["content"]["ordinary"][0]
        try:
            seeded = requests.post(f"{plan.emulator_url}/_control/seed",
                                   json=demo.linked_learners_seed_document([learner]), timeout=REQUEST_TIMEOUT)
            if seeded.status_code != 200:
                raise CommandError(f"The emulator refused the self-check learner: {seeded.status_code} "
                                   f"{seeded.text[:500]}")
            redeemed = requests.post(
                plan.redeem_url(policy_uuid), timeout=REQUEST_TIMEOUT,
                headers={"Authorization": f"JWT {_learner_token(learner)}"},
                # A learner may send only exec-ed details as metadata: the throwaway learner marks the self-check.
                json={"lms_user_id": learner["lms_user_id"], "content_key": content_key})
            if redeemed.status_code != 200:
                raise CommandError(f"The self-check redemption answered {redeemed.status_code}: "
                                   f"{redeemed.text[:1000]}\nThe demo does not work, so it stops here.")
            transaction_uuid = redeemed.json().get("uuid")
            ledger = requests.get(f"{plan.emulator_url}/_control/transactions", params={"subsidy_uuid": subsidy_uuid},
                                  timeout=REQUEST_TIMEOUT).json()
            if not any(tx.get("uuid") == transaction_uuid and tx.get("state") == "committed" for tx in ledger):
                raise CommandError(f"The service at {plan.service_url} redeemed, but transaction {transaction_uuid} "
                                   f"is not in the emulator this demo started: the service answering is not this "
                                   f"run's.")
            reversed_ = requests.post(f"{plan.emulator_url}/_control/reversals",
                                      json={"transaction_uuid": transaction_uuid}, timeout=REQUEST_TIMEOUT)
            if reversed_.status_code != 201:
                raise CommandError(f"Reversing the self-check transaction {transaction_uuid} failed: "
                                   f"{reversed_.status_code} {reversed_.text[:500]}")
        except (requests.RequestException, ValueError) as exc:
            raise CommandError(f"The self-check redemption could not be made ({exc}).") from exc
        return {"learner": learner, "content_key": content_key, "transaction_uuid": transaction_uuid}

    def _redeemable_pair(self, plan, world):
        """The first demo learner and ordinary course the printed curl can redeem now, as the service says."""
        policy_uuid = world["policies"]["per_learner_enrollment"]
        url = f"{plan.service_url}/api/v1/policy-redemption/enterprise-customer/{demo.CUSTOMER_UUID}/can-redeem/"
        for learner in world["learners"][:len(demo.LEARNERS)]:
            token = _learner_token(learner)
            try:
                response = requests.get(url, params=[("content_key", key) for key in world["content"]["ordinary"]],
                                        headers={"Authorization": f"JWT {token}"}, timeout=REQUEST_TIMEOUT)
                entries = response.json()
            except (requests.RequestException, ValueError) as exc:
                raise CommandError(f"can-redeem could not be asked ({exc}).") from exc
            if response.status_code != 200:
                raise CommandError(f"can-redeem answered {response.status_code}: {response.text[:1000]}")
            for entry in entries:
                refused = {uuid for reason in entry["reasons"] for uuid in reason["policy_uuids"]}
                if entry["can_redeem"] and policy_uuid not in refused:
                    return learner, entry["content_key"], token
        raise CommandError(f"Every demo learner has already redeemed every demo course in {plan.database}. Delete "
                           f"{plan.database} and {plan.emulator_database} to start afresh, or run on other ports.")

    def _print_welcome(self, plan, world, learner, content_key, token, checked):
        policy = world["policies"]["per_learner_enrollment"]
        body = json.dumps({"lms_user_id": learner["lms_user_id"], "content_key": content_key})
        self.stdout.write(self.style.SUCCESS("\nThe demo is running.") + f"""

  Django admin:      {plan.service_url}/admin/   (user {world['admin']['username']!r}, password \
{world['admin']['password']!r},
                     a local demo account: never use it anywhere else)
  API docs:          {plan.service_url}/api/docs/
  Upstream emulator: {plan.emulator_url}  (control API at {plan.emulator_url}/_control/)
  Ports:             service {plan.port}, emulator {plan.emulator_port}  (others: make demo PORT=… EMULATOR_PORT=…)
  Database:          {plan.database}
  Emulator database: {plan.emulator_database}
  Celery worker:     background jobs (bulk forcing), broker folder {plan.broker_dir}
  Reconciler:        reconcile_redemptions --every 60 (settles uncertain redemptions, as production does;
                     a JSON line a pass in {plan.state_dir / 'reconcile.log'})
  Demo identifiers:  {plan.identifiers}
  Self-check:        redeemed {checked['content_key']} for throwaway learner {checked['learner']['lms_user_id']}
                     through this service, found transaction {checked['transaction_uuid']}
                     in this emulator, and reversed it.

Management commands against this demo (export_redemption_attempts, reconcile_redemptions, mint_jwt, ...):
  LOCAL_SQLITE_PATH={plan.database} EMULATOR_URL={plan.emulator_url} \\
    .venv/bin/python manage.py <command>

The learner token below is valid for one hour; a new one:
  .venv/bin/python manage.py mint_jwt --lms-user-id {learner['lms_user_id']} --roles enterprise_learner:{demo.CUSTOMER_UUID}

Redeem a course for demo learner {learner['lms_user_id']} ({learner['email']}):

curl -sS -X POST {plan.redeem_url(policy)} \\
  -H 'Content-Type: application/json' \\
  -H 'Authorization: JWT {token}' \\
  -d '{body}'

Press Ctrl-C to stop.
""")
        self.stdout.flush()
