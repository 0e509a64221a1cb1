"""
The emulator's own SQLite file: schema, the one shared connection and its lock.

One connection, guarded by one re-entrant lock, serves every handler thread: each read is a short
critical section, and ``write()`` wraps a multi-statement change in ``BEGIN IMMEDIATE`` so that
concurrent writers are serialized. WAL keeps the file readable by an outside ``sqlite3`` shell
while the emulator runs.
"""
import secrets
import sqlite3
import threading
from contextlib import contextmanager

from ..web import stored_datetime, utc_now


SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS customers (uuid TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS learners (lms_user_id INTEGER PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS learner_links (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    lms_user_id INTEGER NOT NULL,
    customer_uuid TEXT NOT NULL,
    position INTEGER NOT NULL,
    created TEXT NOT NULL,
    UNIQUE (lms_user_id, customer_uuid)
);
CREATE TABLE IF NOT EXISTS catalogs (uuid TEXT PRIMARY KEY, customer_uuid TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS courses (course_key TEXT PRIMARY KEY, course_uuid TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (run_key TEXT PRIMARY KEY, run_uuid TEXT NOT NULL, course_key TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS subsidies (
    uuid TEXT PRIMARY KEY, customer_uuid TEXT NOT NULL, doc TEXT NOT NULL, created TEXT NOT NULL, modified TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS transactions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL UNIQUE,
    subsidy_uuid TEXT NOT NULL,
    kind TEXT NOT NULL,              -- deposit | redemption
    seeded INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    lms_user_id INTEGER,
    lms_user_email TEXT,
    content_key TEXT,
    parent_content_key TEXT,
    content_title TEXT,
    course_run_start_date TEXT,
    quantity INTEGER NOT NULL,
    unit TEXT NOT NULL,
    fulfillment_identifier TEXT,
    subsidy_access_policy_uuid TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    external_reference TEXT NOT NULL DEFAULT '[]',
    created TEXT NOT NULL,
    modified TEXT NOT NULL,
    reversal_uuid TEXT,
    reversal_state TEXT,
    reversal_idempotency_key TEXT,
    reversal_quantity INTEGER,
    reversal_metadata TEXT,
    reversal_created TEXT,
    reversal_modified TEXT,
    UNIQUE (subsidy_uuid, idempotency_key)
);
CREATE INDEX IF NOT EXISTS tx_by_learner ON transactions (subsidy_uuid, lms_user_id, content_key);
CREATE TABLE IF NOT EXISTS enrollments (
    fulfillment_uuid TEXT PRIMARY KEY,
    customer_uuid TEXT NOT NULL,
    lms_user_id INTEGER NOT NULL,
    course_run_key TEXT NOT NULL,
    transaction_uuid TEXT,
    force_enrollment INTEGER NOT NULL,
    active INTEGER NOT NULL,
    created TEXT NOT NULL
);
"""

# Columns a caller may set on a transaction.
TRANSACTION_FIELDS = (
    "state", "lms_user_email", "parent_content_key", "content_title", "course_run_start_date",
    "fulfillment_identifier", "external_reference", "metadata", "modified",
)
TRANSACTION_ORDERINGS = {
    "created": "created ASC, seq ASC",
    "-created": "created DESC, seq DESC",
    "quantity": "quantity ASC, seq ASC",
    "-quantity": "quantity DESC, seq DESC",
}


def now_stored():
    """The current time in the sortable storage form."""
    return stored_datetime(utc_now())


class Database:
    """Thread-safe access to the emulator database at ``path`` (``:memory:`` works too)."""

    def __init__(self, path):
        self.path = str(path)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
        self._conn.row_factory = sqlite3.Row
        with self._lock:
            if self.path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(SCHEMA)
            # Files written before metadata was stored as the provider stores it ({} when none).
            self._conn.execute("UPDATE transactions SET metadata = '{}' WHERE metadata = 'null'")

    def close(self):
        with self._lock:
            self._conn.close()

    @contextmanager
    def write(self):
        """A serialized write transaction: everything inside commits together or not at all."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _all(self, sql, args=()):
        with self._lock:
            return [dict(row) for row in self._conn.execute(sql, args).fetchall()]

    def _one(self, sql, args=()):
        with self._lock:
            row = self._conn.execute(sql, args).fetchone()
        return dict(row) if row is not None else None

    # --- meta -------------------------------------------------------------------------------------

    def meta(self, key, default=None):
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return row["value"] if row else default

    def signing_secret(self):
        """The emulator-local JWT secret, created once per database so tokens survive restarts."""
        with self.write() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'jwt_secret'").fetchone()
            if row:
                return row["value"]
            secret = secrets.token_urlsafe(32)
            conn.execute("INSERT INTO meta (key, value) VALUES ('jwt_secret', ?)", (secret,))
            return secret
