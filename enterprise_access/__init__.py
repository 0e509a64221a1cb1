"""The enterprise-access redemption service."""

try:  # PyMySQL stands in for mysqlclient so a fresh machine needs no C headers.
    import pymysql

    pymysql.install_as_MySQLdb()
except ImportError:  # pragma: no cover - PyMySQL is in the pinned requirements
    pass

# The Celery application is loaded with Django, so ``@shared_task`` functions bind to it (enterprise_access/celery.py).
from .celery import app as celery_app  # noqa: E402

__all__ = ["celery_app"]
