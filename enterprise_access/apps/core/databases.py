"""Names of the database connections the service uses (see enterprise_access.db_routers)."""

# The same database as ``default`` on a connection of its own, in autocommit: rows that must commit on their own,
# whatever transaction the caller is in (attempt rows, spend reservations, a forced record's run and outcome).
INDEPENDENT_DB_ALIAS = "independent"
