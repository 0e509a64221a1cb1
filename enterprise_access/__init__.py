"""The enterprise-access redemption service."""

try:  # PyMySQL stands in for mysqlclient so a fresh machine needs no C headers.
    import pymysql

    pymysql.install_as_MySQLdb()
except ImportError:  # pragma: no cover - PyMySQL is in the pinned requirements
    pass
