"""
Stream redemption attempts to CSV or JSON lines, in constant memory, whatever the table's size.

Rows are read in keyset-paginated batches ordered by (started_at, uuid): each batch is one indexed range
query, and nothing holds more than one batch. (A plain queryset iterator would buffer the whole result on
MySQL, whose drivers read result sets client-side.)
"""
import csv
import json
import sys
from datetime import datetime, time, timezone as dt_timezone

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils.dateparse import parse_date, parse_datetime

from ...models import RedemptionAttempt

COLUMNS = [
    "uuid", "started_at", "finished_at", "outcome", "source", "policy_uuid", "enterprise_customer_uuid",
    "lms_user_id", "content_key", "assignment_id", "subsidy_request_uuid", "forced_redemption_id", "request_id",
    "acting_user_id", "policy_history_id", "can_redeem", "reason", "already_redeemed", "transaction_uuid",
    "transaction_state", "fulfillment_identifier", "external_references", "content_price", "error_status",
    "error_code", "error_message", "can_redeem_ms", "subsidy_call_ms", "request_metadata", "error_payload",
]
JSON_COLUMNS = {"external_references", "request_metadata", "error_payload"}


def parse_when(value, *, end_of_day=False):
    """Accept 2026-11-01 or a full ISO datetime; naive values are UTC."""
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"Not a date or datetime: {value!r}. Use YYYY-MM-DD or ISO 8601.")
        parsed = datetime.combine(day, time.max if end_of_day else time.min)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt_timezone.utc)
    return parsed


def _plain(value):
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def iter_attempt_batches(since, until, batch_size):
    queryset = RedemptionAttempt.objects.filter(started_at__gte=since)
    if until is not None:
        queryset = queryset.filter(started_at__lte=until)
    queryset = queryset.order_by("started_at", "uuid").values_list(*COLUMNS)
    last = None
    while True:
        page = queryset
        if last is not None:
            page = page.filter(Q(started_at__gt=last[0]) | Q(started_at=last[0], uuid__gt=last[1]))
        batch = list(page[:batch_size])
        if not batch:
            return
        yield batch
        last = (batch[-1][1], batch[-1][0])


class Command(BaseCommand):
    help = "Export redemption attempts started in [--since, --until] as CSV or JSON lines."

    def add_arguments(self, parser):
        parser.add_argument("--since", required=True, help="Start date or datetime (inclusive).")
        parser.add_argument("--until", help="End date (inclusive, to the end of that day) or datetime.")
        parser.add_argument("--format", choices=["csv", "jsonl"], default="csv")
        parser.add_argument("--output", help="File to write; standard output if omitted.")
        parser.add_argument("--batch-size", type=int, default=2000)

    def handle(self, *args, **options):
        since = parse_when(options["since"])
        until = parse_when(options["until"], end_of_day=True) if options["until"] else None
        if until is not None and until < since:
            raise CommandError("--until is before --since.")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        out = open(options["output"], "w", newline="", encoding="utf-8") if options["output"] else sys.stdout
        written = 0
        try:
            if options["format"] == "csv":
                writer = csv.writer(out)
                writer.writerow(COLUMNS)
            for batch in iter_attempt_batches(since, until, options["batch_size"]):
                for row in batch:
                    if options["format"] == "csv":
                        writer.writerow([json.dumps(v) if k in JSON_COLUMNS and v is not None else _plain(v)
                                         for k, v in zip(COLUMNS, row)])
                    else:
                        out.write(json.dumps(dict(zip(COLUMNS, row)), default=_plain) + "\n")
                written += len(batch)
        finally:
            if options["output"]:
                out.close()
        self.stderr.write(f"Exported {written} redemption attempts.")
