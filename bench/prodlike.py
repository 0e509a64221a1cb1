"""
The production-like stack on this machine: the upstream emulator (its own SQLite under var/), MariaDB, Redis and
gunicorn on the ``production`` settings with 4 worker processes of 32 threads each (``gthread``: decision 0011),
the reconciler (``reconcile_redemptions --every 60``) and a Celery worker on the Redis broker (decision 0019).

    .venv/bin/python bench/prodlike.py [--learners 500] [--fresh]        # what `make prodlike` runs

Foreground; Ctrl-C (or SIGTERM) stops gunicorn and the emulator. ``bench/redeem_load.py`` imports
``start_stack`` to run its own throwaway copy (another database, Redis db and ports).

Everything listens on 127.0.0.1 only. The JWT settings are the dev key pair's public half
(``settings/dev_jwt_keys.py``); tokens for it are minted with ``mint_token`` below, in this process, because
the production settings install no development tooling (no ``mint_jwt``, no ``seed_demo``) by design.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from enterprise_access.devtools.net import wait_until_up  # noqa: E402 (after the path is set; no Django set-up needed)

PY = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")

MYSQL_HOST, MYSQL_PORT, MYSQL_USER = "127.0.0.1", 3306, "root"
OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET = "enterprise-access-prodlike", "prodlike-secret"


def _dev_keys():
    from enterprise_access.settings import dev_jwt_keys  # plain module: no Django set-up needed

    return dev_jwt_keys


def service_env(*, database_url, redis_url, emulator_url, threads=32, extra=None):
    """The environment the production settings read, pointed at this machine's stack."""
    keys = _dev_keys()
    env = dict(os.environ)
    env.update(extra or {})
    env.update({
        "DJANGO_SETTINGS_MODULE": "enterprise_access.settings.production",
        "SECRET_KEY": "prodlike-only-not-a-secret-" + "x" * 40,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "ENTERPRISE_SUBSIDY_URL": f"{emulator_url}/subsidy",
        "ENTERPRISE_CATALOG_URL": f"{emulator_url}/catalog",
        "LMS_URL": f"{emulator_url}/lms",
        "BACKEND_SERVICE_EDX_OAUTH2_KEY": OAUTH_CLIENT_ID,
        "BACKEND_SERVICE_EDX_OAUTH2_SECRET": OAUTH_CLIENT_SECRET,
        "JWT_ISSUER": keys.DEV_JWT_ISSUER,
        "JWT_AUDIENCE": keys.DEV_JWT_AUDIENCE,
        "JWT_PUBLIC_SIGNING_JWK_SET": keys.DEV_JWT_PUBLIC_JWK_SET,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # One pooled keep-alive connection per thread and upstream configuration (decision 0011).
        "UPSTREAM_POOL_MAXSIZE": str(threads),
        "PYTHONUNBUFFERED": "1",
    })
    return env


CELERY_CONCURRENCY = 2


def celery_worker_command(concurrency=CELERY_CONCURRENCY):
    """A Celery worker on the production settings' broker (REDIS_URL): background jobs such as bulk forcing."""
    return [PY, "-m", "celery", "-A", "enterprise_access", "worker", "--concurrency", str(concurrency),
            "--without-gossip", "--without-mingle", "-l", "info"]


def mint_token(lms_user_id, roles, lifetime_seconds=7200):
    """An LMS-style access token signed with the dev private key, minted here: production settings cannot mint."""
    from enterprise_access.devtools.tokens import build_claims, sign_claims

    keys = _dev_keys()
    issuer = {"ISSUER": keys.DEV_JWT_ISSUER, "AUDIENCE": keys.DEV_JWT_AUDIENCE}
    claims = build_claims(lms_user_id=lms_user_id, roles=roles, lifetime_seconds=lifetime_seconds, issuer=issuer)
    return sign_claims(claims, private_key_pem=keys.DEV_JWT_PRIVATE_KEY_PEM)


def mysql_connect(database=None):
    import pymysql

    return pymysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user=MYSQL_USER, password="", database=database,
                           autocommit=True, connect_timeout=5)


def ensure_connection_capacity(needed, say=print):
    """
    Threads keep their database connections (CONN_MAX_AGE), two each (the independent one): size MariaDB's
    max_connections for the stack, as a deployment sizes its database for its workers. A runtime setting only.
    """
    connection = mysql_connect()
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@GLOBAL.max_connections")
        current = int(cursor.fetchone()[0])
        if current < needed:
            cursor.execute(f"SET GLOBAL max_connections = {int(needed)}")
            say(f"- MariaDB max_connections {current} -> {needed}")
    connection.close()


def worker_pids(gunicorn_pid):
    """The pids of gunicorn's worker processes (children of its master), from /proc."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == gunicorn_pid:
                pids.append(int(entry.name))
    return sorted(pids)


def ensure_database(name, drop=False):
    connection = mysql_connect()
    with connection.cursor() as cursor:
        if drop:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")
    connection.close()


class Stack:
    """Emulator + gunicorn child processes; ``stop()`` ends exactly those (by pid / process group)."""

    def __init__(self, *, db_name, redis_db, emulator_port, service_port, workers, log_dir, threads=32,
                 env_extra=None):
        self.db_name = db_name
        self.database_url = f"mysql://{MYSQL_USER}@{MYSQL_HOST}:{MYSQL_PORT}/{db_name}"
        self.redis_url = f"redis://127.0.0.1:6379/{redis_db}"
        self.emulator_url = f"http://127.0.0.1:{emulator_port}"
        self.service_url = f"http://127.0.0.1:{service_port}"
        self.emulator_port, self.service_port, self.workers = emulator_port, service_port, workers
        self.threads = threads
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.env = service_env(database_url=self.database_url, redis_url=self.redis_url,
                               emulator_url=self.emulator_url, threads=threads, extra=env_extra)
        self.procs = []
        self.world = None

    def _spawn(self, name, argv, env):
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (kept open for the child's life)
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append((name, proc))
        return proc

    def _run(self, argv, what):
        result = subprocess.run(argv, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise RuntimeError(f"{what} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def _manage(self, *args):
        return self._run([PY, "manage.py", *args], f"manage.py {' '.join(args)}")

    def reconcile(self, *args):
        """``manage.py reconcile_redemptions --json`` against this stack; its summary."""
        return json.loads(self._manage("reconcile_redemptions", "--json", *args).strip().splitlines()[-1])

    def _seed_demo(self, *args):
        """
        ``seed_demo`` against the production settings' database. Those settings do not install the devtools app,
        so ``manage.py seed_demo`` does not exist there: run the command's class directly, from outside.
        """
        script = ("import sys, django; django.setup(); from django.core.management import call_command; "
                  "from enterprise_access.devtools.management.commands.seed_demo import Command; "
                  "call_command(Command(), *sys.argv[1:])")
        return self._run([PY, "-c", script, *args], f"seed_demo {' '.join(args)}")

    def start(self, *, learners, fresh, emulator_db, say=print):
        say(f"- MariaDB database {self.db_name} ({'recreated' if fresh else 'created if missing'})")
        ensure_database(self.db_name, drop=fresh)
        if fresh:
            import redis

            redis.Redis.from_url(self.redis_url).flushdb()  # only this stack's own Redis db index
            for suffix in ("", "-wal", "-shm"):
                Path(str(emulator_db) + suffix).unlink(missing_ok=True)
        say(f"- emulator on {self.emulator_url} (db {emulator_db})")
        emulator_env = dict(os.environ, DJANGO_SETTINGS_MODULE="enterprise_access.settings.local")
        emulator = self._spawn("emulator", [PY, "manage.py", "run_upstream_emulator", "--host", "127.0.0.1",
                                            "--port", str(self.emulator_port), "--db", str(emulator_db)],
                               emulator_env)
        wait_until_up(f"{self.emulator_url}/_control/health", what="emulator", process=emulator, timeout=60)
        say("- migrate (production settings)")
        self._manage("migrate", "--noinput", "-v", "0")
        say(f"- seed_demo --learners {learners}")
        self.world = json.loads(self._seed_demo("--json", "--learners", str(learners), "--emulator-url",
                                                self.emulator_url, "--service-url", self.service_url))
        ensure_connection_capacity(self.workers * self.threads * 2 + 100, say)
        say(f"- gunicorn, {self.workers} workers x {self.threads} threads (gthread), on {self.service_url}")
        self.gunicorn = gunicorn = self._spawn("gunicorn", [
            GUNICORN, "enterprise_access.wsgi", "-k", "gthread", "-w", str(self.workers),
            "--threads", str(self.threads), "--worker-connections", str(2 * self.threads),
            "-b", f"127.0.0.1:{self.service_port}",
            "--timeout", "120", "--backlog", "2048", "--graceful-timeout", "10",
        ], self.env)
        wait_until_up(f"{self.service_url}/api/schema/", what="gunicorn", process=gunicorn, timeout=90)
        say("- reconcile_redemptions, a pass every minute (decision 0011)")
        self._spawn("reconcile", [PY, "manage.py", "reconcile_redemptions", "--every", "60", "--json"], self.env)
        say(f"- Celery worker, {CELERY_CONCURRENCY} processes, broker {self.redis_url} (decision 0019)")
        self.celery = self._spawn("celery", celery_worker_command(), self.env)
        return self

    def stop(self):
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)  # the child's own session: it and its workers
                except ProcessLookupError:
                    pass
        for name, proc in reversed(self.procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self.procs = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start_stack(*, db_name, redis_db, emulator_port, service_port, learners, fresh, workers=4, threads=32,
                log_dir=None, env_extra=None, say=print):
    log_dir = Path(log_dir or ROOT / "var" / db_name)
    stack = Stack(db_name=db_name, redis_db=redis_db, emulator_port=emulator_port, service_port=service_port,
                  workers=workers, threads=threads, log_dir=log_dir, env_extra=env_extra)
    try:
        stack.start(learners=learners, fresh=fresh, emulator_db=log_dir / "upstream_emulator.sqlite3", say=say)
    except BaseException:
        stack.stop()
        raise
    return stack


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--learners", type=int, default=500, help="extra demo learners to seed")
    parser.add_argument("--fresh", action="store_true", help="drop the database, Redis db and emulator state first")
    parser.add_argument("--db-name", default="enterprise_access_prodlike")
    parser.add_argument("--redis-db", type=int, default=10)
    parser.add_argument("--emulator-port", type=int, default=18270)
    parser.add_argument("--port", type=int, default=18001)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=32, help="threads per gunicorn worker (gthread)")
    args = parser.parse_args()

    stop = {"now": False}

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    print("Starting the production-like stack:")
    stack = start_stack(db_name=args.db_name, redis_db=args.redis_db, emulator_port=args.emulator_port,
                        service_port=args.port, learners=args.learners, fresh=args.fresh, workers=args.workers,
                        threads=args.threads)
    try:
        world = stack.world
        print(f"""
Production-like stack up (production settings, gunicorn gthread {args.workers} x {args.threads}, MariaDB, Redis):
  service        {stack.service_url}/            (API schema: {stack.service_url}/api/schema/)
  redeem         POST {stack.service_url}/api/v1/policy-redemption/<policy_uuid>/redeem/
  admin          {stack.service_url}/admin/      ({world['admin']['username']} / {world['admin']['password']})
  emulator       {stack.emulator_url}            (control API: {stack.emulator_url}/_control/)
  database       {stack.database_url}
  redis          {stack.redis_url}
  policies       {json.dumps(world['policies'])}
  reconciliation reconcile_redemptions --every 60 (log: reconcile.log)
  celery worker  {CELERY_CONCURRENCY} processes on {stack.redis_url} (log: celery.log)
  logs           {stack.log_dir}/gunicorn.log, emulator.log, reconcile.log, celery.log
A token: .venv/bin/python -c "import sys; sys.path.insert(0, 'bench'); import prodlike; \\
print(prodlike.mint_token(101, ['enterprise_learner:{world['enterprise_customer_uuid']}']))"
Ctrl-C stops everything.""", flush=True)
        while not stop["now"]:
            for name, proc in stack.procs:
                if proc.poll() is not None:
                    print(f"{name} exited with {proc.returncode}; stopping.", flush=True)
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nStopping...", flush=True)
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
