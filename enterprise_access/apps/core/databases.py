"""The database connections the service uses (see enterprise_access.db_routers), and locking a row on any of them."""
from django.db import connections

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
