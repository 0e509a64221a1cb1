"""
``python manage.py reconcile_redemptions``: settle, from the subsidy ledger, what redemption runs left open.

Run it every minute in production: a cron line or a Kubernetes CronJob, or one long-running process with
``--every 60`` (see docs/decisions/0011). It is idempotent and safe beside live traffic and beside another pass: it
only reads the ledger and settles by compare-and-set. Each pass prints what it did, one ``name: count`` per line,
or one JSON line with --json.
"""
import json
import signal
import time

from django.core.management.base import BaseCommand, CommandError

from ...reconciliation import reconcile

SUMMARY_KEYS = ("reservations_examined", "reservations_committed", "reservations_released",
                "reservations_already_settled", "reservations_open", "reservations_errors", "attempts_finished",
                "forced_records_released", "reservations_still_open")


class Command(BaseCommand):
    help = "Settle open spend reservations, unfinished attempts and claimed forced redemptions from the ledger."

    def add_arguments(self, parser):
        parser.add_argument(
            "--takeover-after", type=float, default=None, metavar="SECONDS",
            help="Treat a run as gone this long after it reserved (default: RECONCILE_TAKEOVER_SECONDS). Lower it "
                 "only when no redemption can still be running, e.g. after every worker has stopped.",
        )
        parser.add_argument("--json", action="store_true", help="Print each pass's summary as one JSON object.")
        parser.add_argument("--every", type=float, default=None, metavar="SECONDS",
                            help="Keep running: a pass every SECONDS until stopped (SIGTERM or Ctrl-C).")
        parser.add_argument("--passes", type=int, default=None, help="With --every: stop after this many passes.")

    def handle(self, *args, **options):
        takeover, every, passes = options["takeover_after"], options["every"], options["passes"]
        if takeover is not None and takeover < 0:
            raise CommandError("--takeover-after must be zero or more seconds.")
        if every is not None and every <= 0:
            raise CommandError("--every must be more than zero seconds.")
        if passes is not None and (passes < 1 or every is None):
            raise CommandError("--passes takes a number of passes of one or more, with --every.")
        stop = {"now": False}
        if every is not None:
            def on_signal(signum, frame):
                stop["now"] = True

            signal.signal(signal.SIGTERM, on_signal)
        done = 0
        while True:
            self._report(reconcile(takeover_seconds=takeover), options["json"])
            done += 1
            if every is None or stop["now"] or (passes is not None and done >= passes):
                return
            deadline = time.monotonic() + every
            try:
                while time.monotonic() < deadline and not stop["now"]:
                    time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
            except KeyboardInterrupt:
                return
            if stop["now"]:
                return

    def _report(self, summary, as_json):
        figures = {key: int(summary.get(key, 0)) for key in SUMMARY_KEYS}
        if as_json:
            self.stdout.write(json.dumps(figures))
        else:
            for key, value in figures.items():
                self.stdout.write(f"{key}: {value}")
        self.stdout.flush()
