"""
export_redemption_attempts: the exact bytes it writes, rows at page edges, where the columns come from, a reader
that closes the pipe, and a file that must never be left half-written.

Every test runs on the suite's database: SQLite in ``make test`` (the reference writer) and MariaDB in CI (the
writer that lets the database format the lines), so the pinned bytes hold for both.
"""
import io
import os
import re
import resource
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from uuid import UUID, uuid4

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection, models

from enterprise_access.apps.subsidy_access_policy import attempt_export
from enterprise_access.apps.subsidy_access_policy.models import RedemptionAttempt

from .factories import RedemptionAttemptFactory

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "independent"])

ROOT = Path(__file__).resolve().parents[4]
POLICY = UUID("a1b2c3d4-0000-4000-8000-000000000001")
CUSTOMER = UUID("c0ffee00-0000-4000-8000-000000000001")
MESSAGE = ('enterprise-subsidy: 422 {"detail": "déjà inscrit"}\r\nsecond line\ttab \\ back \U0001f393 \x01 '
           '\x7f end')

HEADER = ("uuid,started_at,finished_at,outcome,source,policy_uuid,enterprise_customer_uuid,lms_user_id,content_key,"
          "assignment_id,subsidy_request_uuid,forced_redemption_id,request_id,acting_user_id,policy_history_id,"
          "can_redeem,reason,already_redeemed,transaction_uuid,transaction_state,fulfillment_identifier,"
          "external_references,content_price,error_status,error_code,error_message,can_redeem_ms,subsidy_call_ms,"
          "request_metadata,error_payload,idempotency_key,reconciled_at\r\n")
# What the command wrote for these two rows before it was made fast (checked against the earlier implementation),
# with the two columns RedemptionAttempt gained since (idempotency_key, reconciled_at) after the others.
CSV_ROWS = [
    '0a000000-0000-4000-8000-00000000000a,2026-11-02T09:30:00.250000+00:00,2026-11-02T09:30:01+00:00,'
    'subsidy_refused,forced_redemption,a1b2c3d4-0000-4000-8000-000000000001,c0ffee00-0000-4000-8000-000000000001,'
    '42,"course-v1:CaféU+Crème,""Brûlée""+2026",,5e000000-0000-4000-8000-000000000005,,req-1,,,True,,False,'
    '7a000000-0000-4000-8000-000000000007,committed,,"[""ord-1"", ""ord,2""]",19900,422,enrollment_error,'
    '"enterprise-subsidy: 422 {""detail"": ""déjà inscrit""}\r\nsecond line\ttab \\ back \U0001f393 \x01 \x7f end",'
    '12,,"{""allow_late_enrollment"": true, ""note"": ""\\u00e9""}","{""detail"": [""a"", 1, null, 2.5]}",,\r\n',
    '0b000000-0000-4000-8000-00000000000b,2026-11-02T09:31:00+00:00,,in_progress,learner_redeem_api,'
    'a1b2c3d4-0000-4000-8000-000000000001,c0ffee00-0000-4000-8000-000000000001,43,'
    'course-v1:DemoU+Cooking101+2T2026,,,,,,,,,False,,,,,,,,,,,,,,\r\n',
]
JSONL_ROWS = [
    '{"uuid": "0a000000-0000-4000-8000-00000000000a", "started_at": "2026-11-02T09:30:00.250000+00:00", '
    '"finished_at": "2026-11-02T09:30:01+00:00", "outcome": "subsidy_refused", "source": "forced_redemption", '
    '"policy_uuid": "a1b2c3d4-0000-4000-8000-000000000001", '
    '"enterprise_customer_uuid": "c0ffee00-0000-4000-8000-000000000001", "lms_user_id": 42, '
    '"content_key": "course-v1:Caf\\u00e9U+Cr\\u00e8me,\\"Br\\u00fbl\\u00e9e\\"+2026", "assignment_id": null, '
    '"subsidy_request_uuid": "5e000000-0000-4000-8000-000000000005", "forced_redemption_id": null, '
    '"request_id": "req-1", "acting_user_id": null, "policy_history_id": null, "can_redeem": true, "reason": "", '
    '"already_redeemed": false, "transaction_uuid": "7a000000-0000-4000-8000-000000000007", '
    '"transaction_state": "committed", "fulfillment_identifier": "", "external_references": ["ord-1", "ord,2"], '
    '"content_price": 19900, "error_status": 422, "error_code": "enrollment_error", '
    '"error_message": "enterprise-subsidy: 422 {\\"detail\\": \\"d\\u00e9j\\u00e0 inscrit\\"}\\r\\nsecond line'
    '\\ttab \\\\ back \\ud83c\\udf93 \\u0001 \\u007f end", "can_redeem_ms": 12, "subsidy_call_ms": null, '
    '"request_metadata": {"allow_late_enrollment": true, "note": "\\u00e9"}, '
    '"error_payload": {"detail": ["a", 1, null, 2.5]}, "idempotency_key": "", "reconciled_at": null}\n',
    '{"uuid": "0b000000-0000-4000-8000-00000000000b", "started_at": "2026-11-02T09:31:00+00:00", '
    '"finished_at": null, "outcome": "in_progress", "source": "learner_redeem_api", '
    '"policy_uuid": "a1b2c3d4-0000-4000-8000-000000000001", '
    '"enterprise_customer_uuid": "c0ffee00-0000-4000-8000-000000000001", "lms_user_id": 43, '
    '"content_key": "course-v1:DemoU+Cooking101+2T2026", "assignment_id": null, "subsidy_request_uuid": null, '
    '"forced_redemption_id": null, "request_id": "", "acting_user_id": null, "policy_history_id": null, '
    '"can_redeem": null, "reason": "", "already_redeemed": false, "transaction_uuid": null, '
    '"transaction_state": "", "fulfillment_identifier": "", "external_references": null, "content_price": null, '
    '"error_status": null, "error_code": "", "error_message": "", "can_redeem_ms": null, "subsidy_call_ms": null, '
    '"request_metadata": null, "error_payload": null, "idempotency_key": "", "reconciled_at": null}\n',
]


def utc(*parts):
    return datetime(*parts, tzinfo=timezone.utc)


@pytest.fixture
def pinned_rows():
    """Two attempts that exercise every kind of value: quoting, escapes, non-ASCII, NULLs, JSON, microseconds."""
    RedemptionAttemptFactory(
        uuid=UUID("0a000000-0000-4000-8000-00000000000a"), started_at=utc(2026, 11, 2, 9, 30, 0, 250000),
        finished_at=utc(2026, 11, 2, 9, 30, 1), outcome="subsidy_refused", source="forced_redemption",
        policy_uuid=POLICY, enterprise_customer_uuid=CUSTOMER, lms_user_id=42,
        content_key='course-v1:CaféU+Crème,"Brûlée"+2026',
        subsidy_request_uuid=UUID("5e000000-0000-4000-8000-000000000005"), request_id="req-1", can_redeem=True,
        transaction_uuid=UUID("7a000000-0000-4000-8000-000000000007"), transaction_state="committed",
        external_references=["ord-1", "ord,2"], content_price=19900, error_status=422,
        error_code="enrollment_error", error_message=MESSAGE, can_redeem_ms=12,
        request_metadata={"allow_late_enrollment": True, "note": "é"}, error_payload={"detail": ["a", 1, None, 2.5]},
    )
    RedemptionAttemptFactory(
        uuid=UUID("0b000000-0000-4000-8000-00000000000b"), started_at=utc(2026, 11, 2, 9, 31), finished_at=None,
        outcome="in_progress", policy_uuid=POLICY, enterprise_customer_uuid=CUSTOMER, lms_user_id=43,
        can_redeem=None,
    )


def export(tmp_path, **options):
    output = tmp_path / "attempts.out"
    call_command("export_redemption_attempts", output=str(output), stderr=io.StringIO(), **options)
    return output.read_bytes().decode("utf-8")


def rows_of(text, fmt):
    """The rows of an export, without line endings (no order is promised). A CSV row starts with its uuid: a CR LF
    inside a quoted field is not followed by one."""
    if fmt == "jsonl":
        return text.split("\n")[:-1]
    body = text[len(HEADER):] if text.startswith(HEADER) else text
    return re.split(r"\r\n(?=[0-9a-f]{8}-[0-9a-f]{4}-)", body[:-2]) if body else []


# ---- the bytes ---------------------------------------------------------------------------------------------------

def test_csv_bytes_are_the_documented_format(pinned_rows, tmp_path):
    text = export(tmp_path, since="2026-11-02", format="csv")
    assert text.startswith(HEADER) and text.endswith("\r\n")
    assert sorted(rows_of(text, "csv")) == sorted(row[:-2] for row in CSV_ROWS)


def test_jsonl_bytes_are_the_documented_format(pinned_rows, tmp_path):
    text = export(tmp_path, since="2026-11-02", format="jsonl")
    assert sorted(rows_of(text, "jsonl")) == sorted(row[:-1] for row in JSONL_ROWS)


def test_since_and_until_bound_the_rows(tmp_path):
    inside = [RedemptionAttemptFactory(started_at=when).uuid
              for when in (utc(2026, 11, 1), utc(2026, 11, 30, 23, 59, 59, 999999))]
    for when in (utc(2026, 10, 31, 23, 59, 59, 999999), utc(2026, 12, 1)):
        RedemptionAttemptFactory(started_at=when)
    lines = export(tmp_path, since="2026-11-01", until="2026-11-30", format="jsonl").splitlines()
    assert sorted(line[10:46] for line in lines) == sorted(str(uuid) for uuid in inside)


@pytest.mark.parametrize("batch_size", [1, 2, 3, 50])
def test_rows_at_page_edges_come_out_once(tmp_path, batch_size):
    """Rows sharing a started_at across a page edge are neither lost nor doubled."""
    same = utc(2026, 11, 2, 10)
    uuids = {RedemptionAttemptFactory(started_at=same + timedelta(seconds=index // 3)).uuid for index in range(7)}
    lines = export(tmp_path, since="2026-11-02", format="jsonl", batch_size=batch_size).splitlines()
    assert sorted(line[10:46] for line in lines) == sorted(str(uuid) for uuid in uuids)


def test_an_empty_range_writes_only_the_header(tmp_path):
    RedemptionAttemptFactory(started_at=utc(2026, 11, 2))
    assert export(tmp_path, since="2027-01-01", format="csv") == HEADER
    assert export(tmp_path, since="2027-01-01", format="jsonl") == ""


# ---- the database's own formatting (MySQL and MariaDB) agrees with the reference, whichever way it pages ----------

NASTY = ["", ",", '"', '""', "\r", "\n", "\r\n", "\\", "\t", "\x00", "\x1f", "\x7f", "\x80", "é", "€", "\u2028",
         "\U0001f393", "'", "%s", "%%", "a,b\"c\nd", "😀 \\u00e9 \\", "null", "\x00ab\x00"]


@pytest.mark.skipif(connection.vendor != "mysql", reason="the MySQL writer runs only on MySQL and MariaDB")
@pytest.mark.parametrize("fmt", attempt_export.FORMATS)
@pytest.mark.parametrize("order", ["time", "storage"])
def test_mysql_writer_writes_what_the_reference_writes(fmt, order):
    start = utc(2026, 11, 2, 8)
    for index, nasty in enumerate(NASTY):
        RedemptionAttemptFactory(
            started_at=start + timedelta(seconds=index // 2, microseconds=index % 3), content_key=f"k{nasty}",
            error_message=nasty, request_id=nasty[:64], reason=nasty, transaction_state=nasty[:16],
            error_payload={"m": nasty} if index % 2 else None, external_references=[nasty] if index % 3 else None,
            can_redeem=(None, True, False)[index % 3], finished_at=None if index % 4 else start,
        )
    columns, since = attempt_export.export_columns(), utc(2026, 11, 1)
    expected = io.StringIO()
    attempt_export._ReferenceWriter("independent", columns, fmt, 1000).write(expected, since, None)
    for batch_size, page_bytes in ((4, None), (1000, None), (1000, 300)):  # 300 bytes: pages fall back to rows
        written = io.StringIO()
        writer = attempt_export._MySQLPageWriter("independent", columns, fmt, batch_size, order=order)
        writer.page_bytes = page_bytes
        assert writer.write(written, since, None) == len(NASTY)
        assert sorted(rows_of(written.getvalue(), fmt)) == sorted(rows_of(expected.getvalue(), fmt))


# ---- where the columns come from ----------------------------------------------------------------------------------

def fake_model(*extra_fields):
    """Stands in for RedemptionAttempt after someone adds fields to it."""
    fields = [*RedemptionAttempt._meta.concrete_fields, *extra_fields]
    return SimpleNamespace(_meta=SimpleNamespace(concrete_fields=fields))


def named(field, name):
    field.set_attributes_from_name(name)
    return field


def test_columns_are_the_models_fields_in_the_known_order():
    names = [column.name for column in attempt_export.export_columns()]
    assert names == HEADER.strip().split(",")
    model_fields = {field.attname for field in RedemptionAttempt._meta.concrete_fields}
    assert set(names) == model_fields - {"policy_id"}


def test_a_field_added_to_the_model_is_exported_after_the_known_ones():
    model = fake_model(named(models.CharField(max_length=20, blank=True), "channel"),
                       named(models.IntegerField(null=True), "retry_count"))
    columns = attempt_export.export_columns(model)
    assert [(column.name, column.kind, column.null) for column in columns[-2:]] == \
        [("channel", "text", False), ("retry_count", "int", True)]


def test_a_field_the_export_cannot_format_stops_it_with_a_pointer():
    model = fake_model(named(models.DecimalField(max_digits=8, decimal_places=2, null=True), "refund"))
    with pytest.raises(ImproperlyConfigured, match="refund.*DecimalField.*KIND_BY_INTERNAL_TYPE"):
        attempt_export.export_columns(model)


# ---- bad input ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("options, message", [
    ({"since": "yesterday"}, "Not a date or datetime: 'yesterday'"),
    ({"since": "2026-13-01"}, "Not a date or datetime: '2026-13-01'"),
    ({"since": "2026-11-02", "until": "2026-11-01"}, "--until is before --since"),
    ({"since": "2026-11-02", "batch_size": 0}, "--batch-size must be at least 1"),
    ({"since": "2026-11-02", "output": "/nonexistent-folder/attempts.csv"}, "Cannot write beside"),
])
def test_bad_input_is_refused_with_what_to_fix(options, message):
    with pytest.raises(CommandError, match=message):
        call_command("export_redemption_attempts", stderr=io.StringIO(), **options)


# ---- the process as an analyst runs it --------------------------------------------------------------------------

def subprocess_env():
    """The environment for ``manage.py`` to reach this test database."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        url = f"sqlite:///{settings['NAME']}"
    else:
        credentials = settings["USER"] + (f":{settings['PASSWORD']}" if settings["PASSWORD"] else "")
        url = f"mysql://{credentials}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 3306}/{settings['NAME']}"
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "enterprise_access.settings.test", "DATABASE_URL": url}


def many_attempts(count):
    """Enough rows that the output outgrows a pipe's buffer (64 KiB) many times over."""
    start = utc(2026, 11, 2)
    RedemptionAttempt.objects.bulk_create(
        RedemptionAttemptFactory.build(started_at=start + timedelta(seconds=index), uuid=uuid4(),
                                       error_message="enterprise-subsidy: timeout " * 4)
        for index in range(count)
    )


@pytest.mark.parametrize("fmt", attempt_export.FORMATS)
def test_a_reader_that_stops_early_ends_the_export_quietly(fmt):
    many_attempts(500)
    command = f"{sys.executable} manage.py export_redemption_attempts --since 2026-11-01 --format {fmt} | head -1"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=ROOT, env=subprocess_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr and "Exception" not in done.stderr
    first = done.stdout.splitlines()
    assert len(first) == 1 and (first[0] == HEADER.strip() if fmt == "csv" else first[0].startswith('{"uuid": "'))


def limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))


def test_a_failed_export_leaves_no_file_and_an_existing_one_untouched(tmp_path):
    """The disk fills up mid-way (a file-size limit of 64 KiB, which Python reports as an error on write)."""
    many_attempts(500)
    fresh, existing = tmp_path / "new.csv", tmp_path / "old.csv"
    existing.write_text("yesterday's export\n")
    for target in (fresh, existing):
        done = subprocess.run(
            [sys.executable, "manage.py", "export_redemption_attempts", "--since", "2026-11-01",
             "--output", str(target)],
            cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=120, preexec_fn=limit_file_size,
        )
        assert done.returncode == 1
        assert f"The export failed, so {target} was not written" in done.stderr
        assert "File too large" in done.stderr and "Traceback" not in done.stderr
    assert not fresh.exists()
    assert existing.read_text() == "yesterday's export\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["old.csv"]  # no partial file beside them


def test_a_finished_export_replaces_the_file_whole(pinned_rows, tmp_path):
    target = tmp_path / "attempts.jsonl"
    target.write_text("yesterday's export\n")
    done = subprocess.run(
        [sys.executable, "manage.py", "export_redemption_attempts", "--since", "2026-11-02", "--format", "jsonl",
         "--output", str(target)], cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Exported 2 redemption attempts." in done.stderr
    assert sorted(rows_of(target.read_bytes().decode("utf-8"), "jsonl")) == \
        sorted(row[:-1] for row in JSONL_ROWS)
    assert [path.name for path in tmp_path.iterdir()] == ["attempts.jsonl"]


def test_a_database_without_the_attempts_table_is_refused_before_anything_is_written(tmp_path):
    # A new user runs the export against the wrong database (e.g. a demo on other ports keeps its own): an empty file
    # is not migrated. The command says so, and prints no header first.
    empty = tmp_path / "empty.sqlite3"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "enterprise_access.settings.test", "DATABASE_URL": f"sqlite:///{empty}"}
    done = subprocess.run([sys.executable, "manage.py", "export_redemption_attempts", "--since", "2026-11-01"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stdout == ""
    assert "has no subsidy_access_policy_redemptionattempt table" in done.stderr
    assert "LOCAL_SQLITE_PATH" in done.stderr and "Traceback" not in done.stderr
