"""The database connections the service uses (see enterprise_access.db_routers), and locking a row on any of them."""
import random
import time

from django.db import OperationalError, connections

# The same database as ``default`` on a connection of its own, in autocommit: rows that must commit on their own,
# whatever transaction the caller is in (attempt rows, spend reservations, a forced record's run and outcome).
INDEPENDENT_DB_ALIAS = "independent"


def lock_row(model, pk, using):
    """
    Inside a transaction on ``using``: lock the row of ``model`` with primary key ``pk`` and return it, read afresh;
    None if there is no such row.

    MariaDB, MySQL and PostgreSQL lock it with ``SELECT ... FOR UPDATE``. SQLite has no row locks and ignores FOR
    UPDATE; there a write as the transaction's first statement takes the database's write lock before anything is
    read, so a read-then-write transaction queues behind another writer instead of failing on a stale snapshot.
    """
    connection = connections[using]
    if connection.vendor == "sqlite":
        table = connection.ops.quote_name(model._meta.db_table)
        column = connection.ops.quote_name(model._meta.pk.column)
        value = model._meta.pk.get_db_prep_value(pk, connection)
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET {column} = {column} WHERE {column} = %s", [value])
        return model._default_manager.using(using).filter(pk=pk).first()
    return model._default_manager.using(using).select_for_update().filter(pk=pk).first()


# Errors a transaction may meet only because another one ran at the same moment: run it again.
# MySQL/MariaDB: 1213 deadlock, 1205 lock wait timeout. PostgreSQL: 40P01 deadlock, 40001 serialization failure.
_RETRYABLE_MYSQL_CODES = (1213, 1205)
_RETRYABLE_PG_CODES = ("40P01", "40001")


def is_transient_conflict(exc) -> bool:
    """True when ``exc`` is a deadlock or lock-wait timeout the database resolved by failing this transaction."""
    cause = getattr(exc, "__cause__", None) or exc
    args = getattr(cause, "args", ())
    if args and args[0] in _RETRYABLE_MYSQL_CODES:
        return True
    return getattr(cause, "pgcode", None) in _RETRYABLE_PG_CODES or getattr(
        getattr(cause, "diag", None), "sqlstate", None) in _RETRYABLE_PG_CODES


def retry_transient_conflicts(fn, *, attempts=4, pause_seconds=0.02):
    """
    Call ``fn()`` (which runs one whole transaction) and call it again when the database failed it only because of
    a concurrent transaction (a deadlock, a lock wait timeout): the standard answer to those errors.
    """
    for attempt in range(attempts):
        try:
            return fn()
        except OperationalError as exc:
            if attempt == attempts - 1 or not is_transient_conflict(exc):
                raise
            time.sleep(pause_seconds * (2 ** attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")  # pragma: no cover
