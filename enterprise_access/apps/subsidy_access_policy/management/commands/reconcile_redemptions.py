"""
``python manage.py reconcile_redemptions``: settle, from the subsidy ledger, what redemption runs left open.

Run it every minute in production (a cron line or a Kubernetes CronJob; see docs/decisions/0011). It is
idempotent and safe beside live traffic and beside another pass: it only reads the ledger and settles by
compare-and-set. It prints what it did, one ``name: count`` per line, and the same as one JSON line with --json.
"""
import json

from django.core.management.base import BaseCommand

from ...reconciliation import reconcile


class Command(BaseCommand):
    help = "Settle open spend reservations, unfinished attempts and claimed forced redemptions from the ledger."

    def add_arguments(self, parser):
        parser.add_argument(
            "--takeover-after", type=float, default=None, metavar="SECONDS",
            help="Treat a run as gone this long after it reserved (default: RECONCILE_TAKEOVER_SECONDS). Lower it "
                 "only when no redemption can still be running, e.g. after every worker has stopped.",
        )
        parser.add_argument("--json", action="store_true", help="Print the summary as one JSON object.")

    def handle(self, *args, **options):
        if options["takeover_after"] is not None and options["takeover_after"] < 0:
            self.stderr.write("--takeover-after must be zero or more seconds.")
            raise SystemExit(2)
        summary = reconcile(takeover_seconds=options["takeover_after"])
        keys = ("reservations_examined", "reservations_committed", "reservations_released", "reservations_open",
                "reservations_errors", "attempts_finished", "forced_records_released", "reservations_still_open")
        figures = {key: int(summary.get(key, 0)) for key in keys}
        if options["json"]:
            self.stdout.write(json.dumps(figures))
        else:
            for key, value in figures.items():
                self.stdout.write(f"{key}: {value}")
