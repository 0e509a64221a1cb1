"""
``python manage.py run_upstream_emulator --port 18270 [--host 127.0.0.1] [--db PATH] [--seed FILE] [--run-token T]``

Serves the emulated enterprise-subsidy (``/subsidy``), enterprise-catalog (``/catalog``), LMS
(``/lms``, token endpoint included) and the control API (``/_control``) until interrupted.
"""
import json
import signal
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from enterprise_access.devtools.emulator.seeding import SeedError, normalize_seed
from enterprise_access.devtools.emulator.server import make_server

# The repository's var/ directory, wherever the command is started from.
DEFAULT_DB = Path(__file__).resolve().parents[4] / "var" / "upstream_emulator.sqlite3"


class Command(BaseCommand):
    help = "Run the local upstream emulator (enterprise-subsidy, enterprise-catalog, LMS) over HTTP."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=18270)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--db", default=str(DEFAULT_DB), help=f"its own SQLite file (default {DEFAULT_DB})")
        parser.add_argument("--seed", help="a JSON seed document to upsert into the baseline before serving")
        parser.add_argument("--verbose-requests", action="store_true", help="log every request to stderr")
        parser.add_argument("--run-token", help="a nonce GET /_control/health echoes, so whoever started this "
                                                 "emulator can tell it is the one answering (run_demo passes one)")

    def handle(self, *args, **options):
        db_path = options["db"]
        if db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        try:
            server = make_server(options["host"], options["port"], db_path, verbose=options["verbose_requests"],
                                 run_token=options["run_token"])
        except OSError as exc:
            raise CommandError(f"cannot listen on {options['host']}:{options['port']}: {exc}") from exc
        if options["seed"]:
            try:
                document = json.loads(Path(options["seed"]).read_text())
                counts = server.emulator.store.upsert_seed(normalize_seed(document))
            except (OSError, ValueError, SeedError) as exc:
                server.server_close()
                raise CommandError(f"cannot seed from {options['seed']}: {exc}") from exc
            self.stdout.write(f"Seeded {counts}")
        url = server.url
        self.stdout.write(
            f"Upstream emulator on {url} (db {db_path})\n"
            f"  ENTERPRISE_SUBSIDY_URL={url}/subsidy\n"
            f"  ENTERPRISE_CATALOG_URL={url}/catalog\n"
            f"  LMS_URL={url}/lms  (token endpoint {url}/lms/oauth2/access_token)\n"
            f"  control API {url}/_control"
        )
        self.stdout.flush()
        # Stop cleanly on SIGTERM too (the database is closed, its WAL checkpointed).
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            self.stdout.write("Stopping the upstream emulator.")
        finally:
            server.server_close()
            server.emulator.close()


def _interrupt(signum, frame):
    raise KeyboardInterrupt()
