"""
Stream redemption attempts as CSV or JSON lines: the analyst's bulk read of the audit table.

The columns come from the model (``export_columns``), so a field added to ``RedemptionAttempt`` is exported
without touching this module; a field of a type this module cannot format stops the export with a clear error
instead of writing something wrong.

Two ways to produce the same bytes:

- ``_ReferenceWriter`` (any database): keyset-paginated ``values_list`` batches formatted in Python. It *defines*
  the format; SQLite and PostgreSQL use it.
- ``_MySQLPageWriter`` (MySQL and MariaDB): the database formats each row into its finished CSV or JSON line and
  hands over a whole page as one string (``GROUP_CONCAT``), so Python neither parses a result row per attempt
  nor touches a value; pages are formatted on two connections at once (two server threads), so a million rows
  stream at about the speed of the database's own dump. Strings JSON must escape (non-ASCII, control
  characters, backslashes, quotes) come back hex-encoded between NUL markers and are encoded by Python's
  ``json`` module, so both writers agree byte for byte (``test_export_attempts`` checks it on MariaDB).

Both read in short keyset-paginated queries: no statement stays open while a slow reader holds up the output,
and nothing holds more than a few pages. The MySQL writer walks the rows in whichever order reads fastest: by
``started_at`` when the range is a small part of the table (an index range), else in primary-key order (a scan
of the clustered index, which beats one random lookup per row by several times). Rows come in no promised order.
"""
import csv
import io
import json
import queue
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ImproperlyConfigured
from django.db import connections, router
from django.db.models import Q

from .models import RedemptionAttempt

FORMATS = ("csv", "jsonl")
LINE_ENDINGS = {"csv": "\r\n", "jsonl": "\n"}  # csv: what Python's csv module writes; jsonl: one object a line

# The order analysts know; fields added to the model later follow in model order.
LEADING_COLUMNS = (
    "uuid", "started_at", "finished_at", "outcome", "source", "policy_uuid", "enterprise_customer_uuid",
    "lms_user_id", "content_key", "assignment_id", "subsidy_request_uuid", "forced_redemption_id", "request_id",
    "acting_user_id", "policy_history_id", "can_redeem", "reason", "already_redeemed", "transaction_uuid",
    "transaction_state", "fulfillment_identifier", "external_references", "content_price", "error_status",
    "error_code", "error_message", "can_redeem_ms", "subsidy_call_ms", "request_metadata", "error_payload",
)
# policy_id repeats policy_uuid, which (unlike the link) survives the policy's deletion.
LEFT_OUT_COLUMNS = frozenset({"policy_id"})

KIND_BY_INTERNAL_TYPE = {
    "UUIDField": "uuid",
    "DateTimeField": "datetime",
    "BooleanField": "bool",
    "JSONField": "json",
    **dict.fromkeys(("CharField", "TextField", "SlugField"), "text"),
    **dict.fromkeys(("IntegerField", "BigIntegerField", "SmallIntegerField", "PositiveIntegerField",
                     "PositiveBigIntegerField", "PositiveSmallIntegerField", "AutoField", "BigAutoField",
                     "SmallAutoField"), "int"),
}


@dataclass(frozen=True)
class ExportColumn:
    name: str  # the database column, which is also the header / JSON key
    kind: str  # one of KIND_BY_INTERNAL_TYPE's values
    null: bool  # whether the column can be NULL


def export_columns(model=RedemptionAttempt):
    """The exported columns, in order: every concrete field of the attempt model but policy_id."""
    fields = {field.attname: field for field in model._meta.concrete_fields}
    names = [name for name in LEADING_COLUMNS if name in fields]
    names += [name for name in fields if name not in LEADING_COLUMNS and name not in LEFT_OUT_COLUMNS]
    columns = []
    for name in names:
        field = fields[name]
        typed = field.target_field if field.is_relation else field
        kind = KIND_BY_INTERNAL_TYPE.get(typed.get_internal_type())
        if kind is None:
            raise ImproperlyConfigured(
                f"The attempt export does not know how to write {name} ({typed.get_internal_type()}): add its type "
                "to KIND_BY_INTERNAL_TYPE in subsidy_access_policy/attempt_export.py, with a test of its format."
            )
        if field.column != name:
            raise ImproperlyConfigured(f"The attempt export expects column {field.column!r} to be named {name!r}.")
        columns.append(ExportColumn(name, kind, field.null))
    return columns


def header_line(fmt, columns):
    """The CSV header row ('' for JSON lines, which has none)."""
    return ",".join(column.name for column in columns) + LINE_ENDINGS["csv"] if fmt == "csv" else ""


def write_attempts(out, *, since, until=None, fmt="csv", batch_size=5000):
    """
    Write the attempts started in [since, until] to the text stream ``out``; return how many were written.

    ``out`` must not translate newlines (open files with ``newline=""``). Exceptions from ``out`` (a closed pipe,
    a full disk) propagate; the MySQL writer's own connections are closed either way.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}")
    columns = export_columns()
    alias = router.db_for_read(RedemptionAttempt)
    writer_class = _MySQLPageWriter if connections[alias].vendor == "mysql" else _ReferenceWriter
    out.write(header_line(fmt, columns))
    return writer_class(alias, columns, fmt, batch_size).write(out, since, until)


# ---------------------------------------------------------------------------------------------------------------
# The reference: values from the ORM, formatted in Python.
# ---------------------------------------------------------------------------------------------------------------

def _plain(value):
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _iso(value):
    return None if value is None else value.isoformat()


def _json_text(value):
    return None if value is None else json.dumps(value)


# The values Python's csv module would not write as the format wants (it writes str(value), and None as "").
_CSV_CONVERTERS = {"datetime": _iso, "json": _json_text}


def format_rows(batch, columns, fmt):
    """Attempts (values in ``columns`` order, as the ORM returns them) as finished lines."""
    if fmt == "jsonl":
        return "".join(json.dumps(dict(zip((column.name for column in columns), values)), default=_plain) + "\n"
                       for values in batch)
    convert = [(index, _CSV_CONVERTERS[column.kind]) for index, column in enumerate(columns)
               if column.kind in _CSV_CONVERTERS]
    rows = []
    for values in batch:
        values = list(values)
        for index, converter in convert:
            values[index] = converter(values[index])
        rows.append(values)
    text = io.StringIO(newline="")
    csv.writer(text).writerows(rows)  # QUOTE_MINIMAL, lines ending in CR LF
    return text.getvalue()


class _ReferenceWriter:
    def __init__(self, alias, columns, fmt, batch_size):
        self.alias, self.columns, self.fmt, self.batch_size = alias, columns, fmt, batch_size

    def write(self, out, since, until):
        written = 0
        for batch in self._batches(since, until):
            out.write(format_rows(batch, self.columns, self.fmt))
            written += len(batch)
        return written

    def _batches(self, since, until):
        queryset = RedemptionAttempt.objects.using(self.alias).filter(started_at__gte=since)
        if until is not None:
            queryset = queryset.filter(started_at__lte=until)
        names = [column.name for column in self.columns]
        at, key = names.index("started_at"), names.index("uuid")
        queryset = queryset.order_by("started_at", "uuid").values_list(*names)
        last = None
        while True:
            page = queryset
            if last is not None:
                # started_at >= keeps the predicate an index range; the OR only breaks ties on uuid.
                page = page.filter(Q(started_at__gte=last[0]),
                                   Q(started_at__gt=last[0]) | Q(started_at=last[0], uuid__gt=last[1]))
            batch = list(page[:self.batch_size])
            if not batch:
                return
            yield batch
            last = (batch[-1][at], batch[-1][key])


# ---------------------------------------------------------------------------------------------------------------
# MySQL and MariaDB: the database writes the lines.
# ---------------------------------------------------------------------------------------------------------------

# A string JSON can carry as it is: printable ASCII but for the two characters JSON escapes with a backslash.
# Matched on the bytes (CAST AS BINARY) so that no collation folds a non-ASCII character onto an ASCII one.
_JSON_UNSAFE_BYTES = r"[^\x20\x21\x23-\x5b\x5d-\x7e]"
_CSV_QUOTE_BYTES = "[,\"\r\n]"
MARKER = "\x00"

# Reading more than this share of the table by index costs more than scanning all of it (one random
# primary-key lookup per row against a sequential read: about 6x slower on a MariaDB with the default buffer pool).
_INDEX_RANGE_MAX_SHARE = 0.2


class _Literal(str):
    """A piece of fixed text in a line: adjacent ones are sent as one SQL string."""


def _mysql_value(column, fmt, native_uuid, careful, params):
    """
    The pieces (SQL expressions and ``_Literal`` text) that write the column's value in a finished line; literal
    parameters are appended to ``params``.

    In CSV the value may be NULL, which the line's CONCAT_WS writes as an empty field (one function for the
    whole line instead of an IFNULL per column); in JSON lines it is never NULL. ``careful`` is False in the SQL
    for rows whose strings need no quoting or escaping (most rows): those go out as they are, unchecked.
    """
    name, kind, csv = f"`{column.name}`", column.kind, fmt == "csv"

    def finish(text):  # JSON: quoted, and null for NULL
        if csv:
            return [text]
        if kind not in ("uuid", "datetime", "text"):
            return [f"IFNULL({text}, 'null')" if column.null else text]
        if column.null:
            return [f"IFNULL(CONCAT('\"', {text}, '\"'), 'null')"]
        return [_Literal('"'), text, _Literal('"')]

    if kind == "uuid":
        if native_uuid:
            return finish(name)
        dashed = (  # char(32) on MySQL: the hex without dashes
            f"LOWER(CONCAT(SUBSTR({name}, 1, 8), '-', SUBSTR({name}, 9, 4), '-', SUBSTR({name}, 13, 4), '-', "
            f"SUBSTR({name}, 17, 4), '-', SUBSTR({name}, 21, 12)))")
        return finish(dashed)
    if kind == "datetime":
        # isoformat() of an aware UTC datetime: "T", microseconds only when there are some. Django stores UTC,
        # and datetime(6) reads back as "2026-11-02 09:30:00.000000".
        return finish(f"REPLACE(REPLACE(CONCAT({name}, '+00:00'), ' ', 'T'), '.000000+', '+')")
    if kind == "bool":
        yes, no, empty = ("'True'", "'False'", "NULL") if csv else ("'true'", "'false'", "'null'")
        return [f"CASE {name} WHEN 1 THEN {yes} WHEN 0 THEN {no} ELSE {empty} END"]
    if kind == "int":
        return finish(name)
    if kind == "json":
        # Django stores json.dumps(value) with the defaults, which is what the reference writes back out.
        if not csv:
            return finish(name)
        # The ORM reads a stored JSON null as None: an empty field, like NULL.
        params.append(_CSV_QUOTE_BYTES)
        return [f"IF(CAST({name} AS BINARY) = 'null', NULL, IF(CAST({name} AS BINARY) REGEXP %s, "
                f"CONCAT('\"', REPLACE({name}, '\"', '\"\"'), '\"'), {name}))"]
    # text
    if not careful:
        return finish(name)
    if csv:
        params.append(_CSV_QUOTE_BYTES)
        return [f"IF(CAST({name} AS BINARY) REGEXP %s, CONCAT('\"', REPLACE({name}, '\"', '\"\"'), '\"'), {name})"]
    params.append(_JSON_UNSAFE_BYTES)
    marked = f"CONCAT(CHAR(0 USING utf8mb4), HEX(CONVERT({name} USING utf8mb4)), CHAR(0 USING utf8mb4))"  # _unmark
    escaped = f"IF(CAST({name} AS BINARY) REGEXP %s, {marked}, CONCAT('\"', {name}, '\"'))"
    return [f"IFNULL({escaped}, 'null')" if column.null else escaped]


def _mysql_line(columns, fmt, native_uuid):
    """SQL for one finished line (line ending included), and its parameters."""

    def line(careful, params):
        pieces = []
        for index, column in enumerate(columns):
            if fmt == "csv":
                pieces += [_Literal(",")] if index else []
            else:
                pieces.append(_Literal(f'{"{" if index == 0 else ", "}"{column.name}": '))
            pieces += _mysql_value(column, fmt, native_uuid, careful, params)
        pieces += [_Literal("}")] if fmt == "jsonl" else []
        parts = []
        for piece in pieces:
            if isinstance(piece, _Literal) and parts and isinstance(parts[-1], _Literal):
                parts[-1] = _Literal(parts[-1] + piece)
            else:
                parts.append(piece)
        sql = [f"'{part}'" if isinstance(part, _Literal) else part for part in parts]
        sql.append("CHAR(13, 10 USING utf8mb4)" if fmt == "csv" else "CHAR(10 USING utf8mb4)")
        # CONCAT_WS skips NULL arguments: with no separator, a NULL value becomes an empty CSV field.
        return f"CONCAT_WS('', {', '.join(sql)})"

    texts = ", ".join(f"`{column.name}`" for column in columns if column.kind == "text")
    if not texts:
        params = []
        return line(True, params), params
    params = [_CSV_QUOTE_BYTES if fmt == "csv" else _JSON_UNSAFE_BYTES]
    careful_line = line(True, params)
    plain_line = line(False, params)
    # One check of all the row's strings at once; only rows that fail it pay for a check per string.
    return f"IF(CAST(CONCAT_WS('', {texts}) AS BINARY) REGEXP %s, {careful_line}, {plain_line})", params


def _unmark(text):
    """Replace each NUL-delimited hex run (a string's UTF-8 bytes) by the string as json.dumps writes it."""
    pieces = text.split(MARKER)
    for index in range(1, len(pieces), 2):
        pieces[index] = json.dumps(bytes.fromhex(pieces[index]).decode("utf-8"))
    return "".join(pieces)


class _MySQLPageWriter:
    """
    Pages of ``batch_size`` rows, cut by a cheap key-only query on one connection and formatted by the database
    on ``workers`` others at once (formatting is most of the work, and one connection is one server thread),
    written out in page order. At most ``2 * workers`` pages are in memory.
    """

    page_bytes = None  # the longest page sent as one string; None: as long as a packet (max_allowed_packet)

    def __init__(self, alias, columns, fmt, batch_size, order=None, workers=2):
        self.alias, self.columns, self.fmt, self.batch_size = alias, columns, fmt, batch_size
        self.table = RedemptionAttempt._meta.db_table
        self.order = order  # "time" or "storage"; None: whichever reads the range faster
        self.workers = workers

    def write(self, out, since, until):
        # Connections of its own: a failure or an abandoned export never leaves the caller's connection mid-way.
        opened = [connections.create_connection(self.alias) for _ in range(1 + self.workers)]
        idle = queue.SimpleQueue()
        for connection in opened:
            connection.inc_thread_sharing()  # each is used by one thread at a time, handed over through ``idle``
        for connection in opened[1:]:
            with connection.cursor() as cursor:  # a page is one GROUP_CONCAT: let it be as long as a packet
                cursor.execute("SET SESSION group_concat_max_len = " + str(self.page_bytes or "@@max_allowed_packet"))
            idle.put(connection)
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="attempt-export")
        pending = deque()
        try:
            plan = self._plan(opened[0], since, until)
            written = 0
            for lower, upper in self._pages(opened[0], plan):
                pending.append(pool.submit(self._formatted_page, idle, plan, lower, upper))
                if len(pending) >= 2 * self.workers:
                    written += self._write_page(out, pending.popleft().result())
            while pending:
                written += self._write_page(out, pending.popleft().result())
            return written
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True)
            for connection in opened:
                connection.close()

    def _write_page(self, out, page):
        text, count = page
        out.write(_unmark(text) if self.fmt == "jsonl" and MARKER in text else text)
        return count

    def _plan(self, connection, since, until):
        range_sql, range_params = "`started_at` >= %s", [connection.ops.adapt_datetimefield_value(since)]
        if until is not None:
            range_sql += " AND `started_at` <= %s"
            range_params.append(connection.ops.adapt_datetimefield_value(until))
        with connection.cursor() as cursor:
            time_order = self.order == "time" if self.order else self._range_is_narrow(cursor, range_sql, range_params)
        line, line_params = _mysql_line(self.columns, self.fmt, connection.features.has_native_uuid_field)
        return _Plan(
            key=("`started_at`", "`uuid`") if time_order else ("`uuid`",),
            hint="" if time_order else "FORCE INDEX (PRIMARY)",
            range_sql=range_sql, range_params=range_params, line=line, line_params=line_params,
        )

    def _pages(self, connection, plan):
        """(after, up_to) keys of successive pages; None for an open end. The last page has up_to None."""
        lower = None
        with connection.cursor() as cursor:
            while True:
                where, params = plan.where(lower, None)
                cursor.execute(f"SELECT {', '.join(plan.key)} FROM `{self.table}` {plan.hint} WHERE {where} "
                               f"ORDER BY {', '.join(plan.key)} LIMIT 1 OFFSET {self.batch_size - 1}", params)
                upper = cursor.fetchone()
                yield lower, upper
                if upper is None:
                    return
                lower = upper

    def _formatted_page(self, idle, plan, lower, upper):
        connection = idle.get()
        try:
            with connection.cursor() as cursor:
                where, params = plan.where(lower, upper)
                rows = f"FROM `{self.table}` {plan.hint} WHERE {where}"
                cursor.execute(f"SELECT GROUP_CONCAT({plan.line} SEPARATOR ''), COUNT(*), @@group_concat_max_len "
                               f"{rows}", plan.line_params + params)
                text, count, longest = cursor.fetchone()
                # NULL, or cut at group_concat_max_len bytes: longer than the server sends in one packet
                # (max_allowed_packet). Then one row at a time.
                if count and (text is None or len(text) * 4 >= longest and len(text.encode()) >= longest - 4):
                    cursor.execute(f"SELECT {plan.line} {rows}", plan.line_params + params)
                    text = "".join(row[0] for row in cursor.fetchall())
                return text or "", count
        finally:
            idle.put(connection)

    def _range_is_narrow(self, cursor, range_sql, range_params):
        """True when the rows in range are few enough that reading them through the started_at index wins."""
        cursor.execute("SELECT TABLE_ROWS FROM information_schema.TABLES "
                       "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s", [self.table])
        found = cursor.fetchone()
        cap = int(int(found[0] or 0) * _INDEX_RANGE_MAX_SHARE) + 1 if found else 1
        # Counting stops at the cap: deciding never reads more than that share of the started_at index.
        cursor.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM `{self.table}` WHERE {range_sql} LIMIT {cap}) AS probe",
                       range_params)
        return cursor.fetchone()[0] < cap


@dataclass(frozen=True)
class _Plan:
    key: tuple  # the columns pages are cut along: (started_at, uuid) through the index, or the primary key
    hint: str
    range_sql: str
    range_params: list
    line: str
    line_params: list

    def where(self, after, up_to):
        """The rows in range with after < key <= up_to (either end open when None)."""
        clauses, params = [self.range_sql], list(self.range_params)
        for key, op in ((after, ">"), (up_to, "<=")):
            if key is not None:
                clause, more = self._beyond(key, op)
                clauses.append(clause)
                params += more
        return " AND ".join(clauses), params

    def _beyond(self, key, op):
        if len(self.key) == 1:
            return f"`uuid` {op} %s", [key[0]]
        # (started_at, uuid) compared as a pair, written so the started_at part stays an index range.
        at, uuid = key
        if op == ">":
            return "`started_at` >= %s AND (`started_at` > %s OR `uuid` > %s)", [at, at, uuid]
        return "`started_at` <= %s AND (`started_at` < %s OR `uuid` <= %s)", [at, at, uuid]
