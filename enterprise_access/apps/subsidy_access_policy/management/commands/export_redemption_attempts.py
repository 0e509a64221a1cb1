"""
Export redemption attempts as CSV or JSON lines, in constant memory, whatever the table's size.

The rows and their format come from ``subsidy_access_policy.attempt_export``; this command deals with the
command line and with where the bytes go: a file appears only once it is complete, and a reader that stops
early (``| head``) ends the export quietly.
"""
import io
import os
import tempfile
from functools import partial
from datetime import datetime, time, timezone as dt_timezone
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connections, router
from django.utils.dateparse import parse_date, parse_datetime

from ...attempt_export import FORMATS, write_attempts
from ...models import RedemptionAttempt


def parse_when(value, *, end_of_day=False):
    """Accept 2026-11-01 or a full ISO datetime; naive values are UTC."""
    try:
        # A bare date first: parse_datetime reads "2026-11-30" as its midnight, which would cut --until's day off.
        day = parse_date(value)
        parsed = datetime.combine(day, time.max if end_of_day else time.min) if day else parse_datetime(value)
    except ValueError:  # well formed, but no such day or time (2026-13-01)
        parsed = None
    if parsed is None:
        raise CommandError(f"Not a date or datetime: {value!r}. Use YYYY-MM-DD or ISO 8601.")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt_timezone.utc)
    return parsed


def _default_file_mode():
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


class Command(BaseCommand):
    help = (
        "Export redemption attempts started in [--since, --until] as CSV or JSON lines (UTF-8), in no particular "
        "order. With --output, the file appears only when the export is complete: on an error nothing is left "
        "behind and an existing file is untouched. On standard output, a reader that stops early (| head) ends "
        "the export quietly with exit status 0."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", required=True, help="Start date or datetime (inclusive).")
        parser.add_argument("--until", help="End date (inclusive, to the end of that day) or datetime.")
        parser.add_argument("--format", choices=FORMATS, default="csv")
        parser.add_argument("--output", help="File to write; standard output if omitted.")
        parser.add_argument("--batch-size", type=int, default=5000, help="Rows read per query (default 5000).")

    def handle(self, *args, **options):
        since = parse_when(options["since"])
        until = parse_when(options["until"], end_of_day=True) if options["until"] else None
        if until is not None and until < since:
            raise CommandError("--until is before --since.")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        self._check_database()
        export = dict(since=since, until=until, fmt=options["format"], batch_size=options["batch_size"])
        try:
            if options["output"]:
                written = self._to_file(Path(options["output"]), export)
            else:
                written = write_attempts(_Unended(self.stdout), **export)
                self.stdout.flush()
        except BrokenPipeError:
            self._quiet_after_closed_pipe()
            return
        self.stderr.write(f"Exported {written} redemption attempts.")

    def _check_database(self):
        """Refuse before writing anything when the database holds no attempts table (not migrated, or the wrong one)."""
        alias = router.db_for_read(RedemptionAttempt)
        table = RedemptionAttempt._meta.db_table
        if table not in connections[alias].introspection.table_names():
            name = connections[alias].settings_dict.get("NAME")
            raise CommandError(
                f"The database {name!r} has no {table} table: it is not migrated, or not the service's database. "
                "For a demo on other ports, point LOCAL_SQLITE_PATH at the demo's database "
                "(var/demo-<port>-<emulator port>/enterprise_access.sqlite3).")

    def _to_file(self, target, export):
        if target.exists() and not target.is_file():  # a FIFO or /dev/stdout: nothing to put in place
            with open(target, "w", newline="", encoding="utf-8") as out:
                return write_attempts(out, **export)
        try:
            handle, unfinished = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
        except OSError as exc:
            raise CommandError(f"Cannot write beside {target}: {exc}") from exc
        try:
            with open(handle, "w", newline="", encoding="utf-8") as out:
                written = write_attempts(out, **export)
            os.chmod(unfinished, _default_file_mode())
            os.replace(unfinished, target)
            return written
        except BaseException as exc:
            os.unlink(unfinished)
            if isinstance(exc, Exception):
                raise CommandError(f"The export failed, so {target} was not written: {exc}") from exc
            raise

    def _quiet_after_closed_pipe(self):
        # What is still buffered for the closed pipe would fail again when Python flushes standard output at
        # exit, with a traceback; send it nowhere instead.
        try:
            descriptor = self.stdout.fileno()
        except (AttributeError, io.UnsupportedOperation):
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, descriptor)
        os.close(devnull)


class _Unended:
    """Django's stdout wrapper, writing text as given (it would end every write with a newline)."""

    def __init__(self, wrapper):
        self.write = partial(wrapper.write, ending="")
