"""
``python manage.py run_demo``: the whole service on one machine (what ``make demo`` runs).

Starts the upstream emulator (127.0.0.1:18270), seeds the demo world, starts the service (127.0.0.1:18000), and
prints the admin login and a ready-to-paste ``curl`` that redeems for a demo learner. Ctrl-C stops both
processes; running it again needs no cleanup.
"""
import json
import os
import signal
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from enterprise_access.devtools.net import wait_until_up
from enterprise_access.devtools.tokens import mint_jwt

MANAGE = str(Path(settings.BASE_DIR) / "manage.py")


def _stop(process):
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


class Command(BaseCommand):
    help = "Run the emulator and the service with the demo world; Ctrl-C stops both."

    def add_arguments(self, parser):
        parser.add_argument("--emulator-port", type=int, default=18270)
        parser.add_argument("--port", type=int, default=18000)
        parser.add_argument("--learners", type=int, default=0, help="Extra demo learners (for load tests).")

    def handle(self, *args, **options):
        # A terminal's Ctrl-C is SIGINT; a supervisor or `timeout` sends SIGTERM: stop both children either way.
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        emulator_url = f"http://127.0.0.1:{options['emulator_port']}"
        service_url = f"http://127.0.0.1:{options['port']}"
        env = {**os.environ, "EMULATOR_URL": emulator_url, "PYTHONUNBUFFERED": "1"}
        emulator = service = None
        try:
            emulator = subprocess.Popen([sys.executable, MANAGE, "run_upstream_emulator",
                                         "--port", str(options["emulator_port"])], env=env)
            wait_until_up(f"{emulator_url}/_control/requests", what="upstream emulator", process=emulator,
                          error=CommandError)
            out = StringIO()
            call_command("seed_demo", json=True, learners=options["learners"], emulator_url=emulator_url,
                         service_url=service_url, stdout=out)
            world = json.loads(out.getvalue())
            service = subprocess.Popen([sys.executable, MANAGE, "runserver", f"127.0.0.1:{options['port']}",
                                        "--noreload"], env=env)
            wait_until_up(f"{service_url}/health/", what="service", process=service, error=CommandError)
            self._print_welcome(world, service_url, emulator_url)
            while True:
                for process, what in ((emulator, "upstream emulator"), (service, "service")):
                    if process.poll() is not None:
                        raise CommandError(f"The {what} stopped (exit code {process.returncode}).")
                time.sleep(0.5)
        except KeyboardInterrupt:
            self.stdout.write("\nStopping the service and the emulator.")
        finally:
            _stop(service)
            _stop(emulator)

    def _print_welcome(self, world, service_url, emulator_url):
        learner = world["learners"][0]
        token = mint_jwt(lms_user_id=learner["lms_user_id"], email=learner["email"],
                         roles=[f"enterprise_learner:{world['enterprise_customer_uuid']}"])
        policy = world["policies"]["per_learner_enrollment"]
        body = json.dumps({"lms_user_id": learner["lms_user_id"], "content_key": world["content"]["ordinary"][0]})
        self.stdout.write(self.style.SUCCESS("\nThe demo is running.") + f"""

  Django admin:      {service_url}/admin/   (user {world['admin']['username']!r}, password {world['admin']['password']!r},
                     a local demo account: never use it anywhere else)
  API docs:          {service_url}/api/docs/
  Upstream emulator: {emulator_url}  (control API at {emulator_url}/_control/)
  Demo identifiers:  {Path(settings.BASE_DIR) / 'var' / 'demo.json'}

Redeem a course for demo learner {learner['lms_user_id']} ({learner['email']}):

curl -sS -X POST {service_url}/api/v1/policy-redemption/{policy}/redeem/ \\
  -H 'Content-Type: application/json' \\
  -H 'Authorization: JWT {token}' \\
  -d '{body}'

Press Ctrl-C to stop.
""")
        (Path(settings.BASE_DIR) / "var").mkdir(exist_ok=True)
        (Path(settings.BASE_DIR) / "var" / "demo.json").write_text(json.dumps(world, indent=2))
        self.stdout.flush()
