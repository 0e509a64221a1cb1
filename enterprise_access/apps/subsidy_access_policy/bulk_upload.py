"""
Bulk upload of forced redemptions: a CSV of learners and course runs for one policy (decision record 0019).

``read_upload`` turns the file into rows, refusing a file that is not a small UTF-8 CSV with the expected header;
``validate_rows`` checks every row against the upstream services and the database and says, per row, what is wrong;
``save_upload`` writes one waiting ``ForcedPolicyRedemption`` per row, all or none, and only if every row is valid.
Nothing here spends: the records are forced later by the "Force redemption" action.

The file: a header, then one row per redemption.

- ``lms_user_id`` or ``email``: the learner (a column of each may be present; fill exactly one per row);
- ``course_run_key``: the run, e.g. ``course-v1:Org+Course+Run``;
- ``price`` (optional): USD cents, a whole number. Assigned policies need it (the assignment's price, within the
  subsidy's 80-120 % of the catalog price); other policies pay the catalog price and must leave it empty.
"""
import csv
import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connections, transaction
from opaque_keys import InvalidKeyError
from opaque_keys.edx.keys import CourseKey
from simple_history.utils import bulk_create_with_history

from enterprise_access.apps.api_client import UpstreamAPIError, get_catalog_client, get_lms_client

from . import constants as c
from .models import ForcedPolicyRedemption

LEARNER_COLUMNS = ("lms_user_id", "email")
COLUMNS = (*LEARNER_COLUMNS, "course_run_key", "price")
MAX_LMS_USER_ID = 2_147_483_647
MAX_PRICE_CENTS = 10_000_000  # $100,000: no single course costs more; a bigger number is a typo
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
EXEC_ED_REFUSAL = "force exec-ed content one record at a time: it needs the learner's details"
LOOKUP_THREADS = 8


class UploadRefused(ValueError):
    """The file as a whole cannot be read: the message says what to fix."""


@dataclass
class UploadRow:
    """One line of the file, what it resolved to, and what is wrong with it."""

    line: int
    lms_user_id_text: str = ""
    email: str = ""
    course_run_key: str = ""
    price_text: str = ""
    lms_user_id: int | None = None
    price_cents: int | None = None
    errors: list = field(default_factory=list)

    @property
    def learner(self) -> str:
        return self.email or self.lms_user_id_text

    @property
    def ok(self) -> bool:
        return not self.errors


def read_upload(data: bytes) -> list[UploadRow]:
    """The rows of an uploaded file; ``UploadRefused`` with what to fix when the file itself is unusable."""
    limit = settings.BULK_UPLOAD_MAX_BYTES
    if len(data) > limit:
        raise UploadRefused(f"The file is {len(data):,} bytes; the limit is {limit:,}. Split it into smaller files.")
    if not data.strip():
        raise UploadRefused("The file is empty. Upload a CSV with the header lms_user_id (or email),course_run_key"
                            " and one row per redemption.")
    if b"\x00" in data:
        raise UploadRefused("This is not a CSV text file (it contains binary data). Save the sheet as "
                            "'CSV UTF-8' and upload that.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UploadRefused(f"The file is not UTF-8 text (byte {exc.start + 1} cannot be read). Save it as "
                            "'CSV UTF-8' and upload it again.") from exc
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        lines = list(reader)
    except csv.Error as exc:
        raise UploadRefused(f"The file is not valid CSV (line {reader.line_num}: {exc}).") from exc
    header = [name.strip().lower() for name in lines[0]]
    problems = _header_problems(header)
    if problems:
        raise UploadRefused(" ".join(problems))
    rows = []
    for number, cells in enumerate(lines[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue  # a blank line
        if len(rows) >= settings.BULK_UPLOAD_MAX_ROWS:
            raise UploadRefused(f"The file has more than {settings.BULK_UPLOAD_MAX_ROWS:,} rows; upload at most "
                                f"{settings.BULK_UPLOAD_MAX_ROWS:,} at a time.")
        row = UploadRow(line=number)
        if len(cells) != len(header):
            row.errors.append(f"has {len(cells)} cells; the header has {len(header)}.")
        values = dict(zip(header, (cell.strip() for cell in cells)))
        row.lms_user_id_text = values.get("lms_user_id", "")
        row.email = values.get("email", "")
        row.course_run_key = values.get("course_run_key", "")
        row.price_text = values.get("price", "")
        rows.append(row)
    if not rows:
        raise UploadRefused("The file has a header but no rows.")
    return rows


def _header_problems(header) -> list[str]:
    expected = "lms_user_id or email, course_run_key, and optionally price"
    unknown = [name for name in header if name not in COLUMNS]
    problems = []
    if unknown:
        shown = ", ".join(repr(name[:40]) for name in unknown[:5])
        problems.append(f"Unknown column(s) {shown} in the header; the columns are {expected}.")
    duplicated = sorted({name for name in header if name and header.count(name) > 1})
    if duplicated:
        problems.append(f"Column(s) {', '.join(duplicated)} appear more than once in the header.")
    if not any(name in header for name in LEARNER_COLUMNS):
        problems.append("The header needs a learner column: lms_user_id or email.")
    if "course_run_key" not in header:
        problems.append("The header needs a course_run_key column.")
    if problems:
        problems.insert(0, "The first line must be the header (" + expected + ").")
    return problems


def _looks_like_formula(value: str) -> bool:
    return value.startswith(FORMULA_PREFIXES)


def _check_cells(row: UploadRow, assigned: bool) -> None:
    """Checks of the row's own cells, without asking anyone."""
    if row.lms_user_id_text and row.email:
        row.errors.append("fill lms_user_id or email, not both.")
    elif not row.lms_user_id_text and not row.email:
        row.errors.append("no learner: fill lms_user_id or email.")
    elif row.lms_user_id_text:
        text = row.lms_user_id_text
        row.lms_user_id = _whole_number(
            row, text, digits=text.lstrip("-+"), upper=MAX_LMS_USER_ID,
            out_of_range=f"lms_user_id {text} is out of range: it must be 1 to {MAX_LMS_USER_ID}.",
            formula="lms_user_id looks like a spreadsheet formula; give the number itself.",
            not_a_number=f"lms_user_id {text[:40]!r} is not a whole number.")
    elif _looks_like_formula(row.email):
        row.errors.append("email looks like a spreadsheet formula; give the address itself.")
    elif "@" not in row.email[1:] or len(row.email) > 254 or any(ch.isspace() for ch in row.email):
        row.errors.append(f"email {row.email[:80]!r} is not an email address.")

    key = row.course_run_key
    if not key:
        row.errors.append("course_run_key is empty.")
    elif _looks_like_formula(key):
        row.errors.append("course_run_key looks like a spreadsheet formula; give the run key itself.")
    else:
        try:
            parsed = CourseKey.from_string(key)
        except InvalidKeyError:
            parsed = None
        if parsed is None or not getattr(parsed, "run", None) or len(key) > 255:
            row.errors.append(f"course_run_key {key[:80]!r} is not a course run key (course-v1:Org+Course+Run).")

    text = row.price_text
    if not text:
        if assigned:
            row.errors.append("price is required for an assigned policy: the assignment's price in USD cents.")
        return
    if not assigned:
        row.errors.append("leave price empty: this policy pays the course's catalog price.")
        return
    row.price_cents = _whole_number(
        row, text, digits=text, upper=MAX_PRICE_CENTS,
        out_of_range=f"price {text} is out of range: USD cents from 1 to {MAX_PRICE_CENTS:,}.",
        formula="price looks like a spreadsheet formula; give the number of cents.",
        not_a_number=f"price {text[:40]!r} is not a whole number of USD cents (19900 for $199.00).")


def _whole_number(row, text, *, digits, upper, out_of_range, formula, not_a_number):
    """``text`` as a whole number in 1..``upper`` (ASCII digits only), or None with the matching error on ``row``."""
    if digits.isdigit() and text.isascii():
        value = int(text)
        if 1 <= value <= upper:
            return value
        row.errors.append(out_of_range)
    elif _looks_like_formula(text):
        row.errors.append(formula)
    else:
        row.errors.append(not_a_number)
    return None


def _in_threads(fn, items):
    """``fn`` over ``items`` on a few threads (upstream round trips), each closing its database connections."""
    def call(item):
        try:
            return fn(item)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=LOOKUP_THREADS, thread_name_prefix="bulk-upload") as pool:
        return dict(zip(items, pool.map(call, items)))


def _unavailable(exc) -> str:
    return (f"could not be checked: the {getattr(exc, 'service', 'upstream')} service did not answer as expected "
            "(try the upload again).")


def validate_rows(policy, rows: list[UploadRow]) -> list[UploadRow]:
    """
    Check every row for ``policy``; each row's ``errors`` says what is wrong with it. Reads only.

    The learner must be linked to the policy's customer (and in its groups, if it has any), the run known to the
    catalog, in the policy's catalog and not executive education; a learner and run appear once in the file and
    have no forced redemption under the policy already.
    """
    assigned = bool(policy.assignment_configuration_id)
    for row in rows:
        _check_cells(row, assigned)
    customer = policy.enterprise_customer_uuid
    lms = get_lms_client()

    # Learners: ids in batches, emails one by one.
    ids = sorted({row.lms_user_id for row in rows if row.lms_user_id is not None})
    emails = sorted({row.email.lower() for row in rows if row.email and not row.errors})
    linked, lms_error = {}, None
    try:
        if ids:
            linked.update(lms.linked_learner_ids(customer, ids))
    except UpstreamAPIError as exc:
        lms_error = exc
    by_email = {}
    if emails and lms_error is None:
        def find(email):
            try:
                return lms.find_enterprise_user_by_email(customer, email)
            except UpstreamAPIError as exc:
                return exc
        by_email = _in_threads(find, emails)
    groups = {str(group) for group in policy.enterprise_group_uuids or []}
    for row in rows:
        if row.errors:
            continue
        if lms_error is not None:
            row.errors.append(f"learner {_unavailable(lms_error)}")
            continue
        if row.email:
            record = by_email.get(row.email.lower())
            if isinstance(record, UpstreamAPIError):
                row.errors.append(f"learner {_unavailable(record)}")
                continue
            if record is None:
                row.errors.append(f"no learner with email {row.email} is linked to this policy's enterprise.")
                continue
            row.lms_user_id = record["user"]["id"]
        else:
            record = linked.get(row.lms_user_id)
            if record is None:
                row.errors.append(f"lms_user_id {row.lms_user_id} is not a learner of this policy's enterprise.")
                continue
        if groups and not groups & {str(group) for group in record.get("enterprise_group") or []}:
            row.errors.append(f"learner {row.learner} is not in this policy's enterprise groups.")

    # Runs: each distinct key once.
    keys = sorted({row.course_run_key for row in rows if row.course_run_key and not any(
        "course_run_key" in error for error in row.errors)})
    run_facts = _in_threads(lambda key: _run_facts(policy, key), keys) if keys else {}
    for row in rows:
        facts = run_facts.get(row.course_run_key)
        if facts is None or any("course_run_key" in error for error in row.errors):
            continue
        if facts.get("error"):
            row.errors.append(facts["error"])
            continue
        if facts["exec_ed"]:
            row.errors.append(EXEC_ED_REFUSAL + ".")
            continue
        if assigned and row.price_cents is not None and facts["price"]:
            low, high = (facts["price"] * 8 + 9) // 10, facts["price"] * 12 // 10
            if not low <= row.price_cents <= high:
                row.errors.append(f"price {row.price_cents} is outside 80-120 % of the catalog price "
                                  f"{facts['price']} cents ({low} to {high}); the subsidy would refuse it.")

    _check_duplicates(policy, rows)
    return rows


def _run_facts(policy, key) -> dict:
    """What the catalog and the subsidy say about one run for this policy, or the error to show on its rows."""
    try:
        if get_catalog_client().get_content_metadata(key) is None:
            return {"error": f"the catalog does not know course run {key}."}
        if not policy.catalog_contains(key):
            return {"error": f"course run {key} is not in this policy's catalog."}
        summary = policy.content_metadata(key)
    except UpstreamAPIError as exc:
        return {"error": f"course run {key} {_unavailable(exc)}"}
    if not summary:
        return {"error": f"course run {key} is in none of this enterprise's catalogs."}
    return {"exec_ed": summary.get("source") == c.EXEC_ED_SOURCE, "price": summary.get("content_price")}


def _check_duplicates(policy, rows) -> None:
    """A learner and run once per file, and not already forced (or waiting) under this policy."""
    first_line = {}
    for row in rows:
        if row.lms_user_id is None or not row.course_run_key:
            continue
        pair = (row.lms_user_id, row.course_run_key)
        if pair in first_line:
            row.errors.append(f"duplicate of line {first_line[pair]}: learner {row.lms_user_id} and run "
                              f"{row.course_run_key} appear twice in the file.")
        else:
            first_line[pair] = row.line
    if not first_line:
        return
    existing = {}
    learners = {lms_user_id for lms_user_id, _ in first_line}
    queryset = ForcedPolicyRedemption.objects.filter(subsidy_access_policy=policy, lms_user_id__in=learners)
    for record in queryset.only("uuid", "lms_user_id", "course_run_key", "redeemed_at", "errored_at",
                                "run_started_at"):
        existing.setdefault((record.lms_user_id, record.course_run_key), record)
    for row in rows:
        record = existing.get((row.lms_user_id, row.course_run_key))
        if record is not None and not any(error.startswith("duplicate of line") for error in row.errors):
            advice = "" if record.state == "redeemed" else "; force that one instead"
            row.errors.append(f"forced redemption {record.uuid} ({record.state}) already exists for this learner "
                              f"and run under this policy{advice}.")


def save_upload(*, policy, rows: list[UploadRow], acting_user) -> list[ForcedPolicyRedemption]:
    """One waiting record per row, with its history, in one transaction; refuses (``ValueError``) any bad row."""
    if not rows or any(row.errors for row in rows):
        raise ValueError("Only a file whose every row is valid is saved.")
    records = [
        ForcedPolicyRedemption(subsidy_access_policy=policy, lms_user_id=row.lms_user_id,
                               course_run_key=row.course_run_key, content_price_cents=row.price_cents,
                               wait_to_redeem=True, created_by=acting_user, modified_by=acting_user)
        for row in rows
    ]
    with transaction.atomic():
        bulk_create_with_history(records, ForcedPolicyRedemption, batch_size=500, default_user=acting_user,
                                 default_change_reason="bulk upload")
    return records
