"""
Shared set-up for the in-process benchmarks: a throwaway database, a live emulator on a free port, the demo
world seeded into both, and Django configured against them. Not a test module.
"""
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def start(learners=0, database_url=None, redis_url=None, fresh=True):
    """Start an emulator, configure Django (test settings on a fresh DB), migrate and seed. Returns (emulator, world)."""
    from enterprise_access.devtools.emulator.testing import running_emulator

    workdir = Path(tempfile.mkdtemp(prefix="ea-bench-"))
    emulator_cm = running_emulator(db_path=str(workdir / "upstream.sqlite3"))
    emulator = emulator_cm.__enter__()
    os.environ["DJANGO_SETTINGS_MODULE"] = "enterprise_access.settings.test"
    if database_url:
        if fresh:
            _create_mysql_database(database_url)
        os.environ["DATABASE_URL"] = database_url
    else:
        os.environ.pop("DATABASE_URL", None)
    if redis_url:
        os.environ["REDIS_URL"] = redis_url
    import django

    django.setup()
    from django.conf import settings

    if not database_url:
        settings.DATABASES["default"]["NAME"] = str(workdir / "bench.sqlite3")
        settings.DATABASES["independent"]["NAME"] = str(workdir / "bench.sqlite3")
    for alias in ("default", "independent"):  # keep connections across requests, as production does
        settings.DATABASES[alias]["CONN_MAX_AGE"] = 60
        settings.DATABASES[alias]["CONN_HEALTH_CHECKS"] = True
    settings.ENTERPRISE_SUBSIDY_URL = f"{emulator.url}/subsidy"
    settings.ENTERPRISE_CATALOG_URL = f"{emulator.url}/catalog"
    settings.LMS_URL = f"{emulator.url}/lms"
    settings.OAUTH2_PROVIDER_URL = f"{emulator.url}/lms/oauth2"
    settings.UPSTREAM_READ_TIMEOUT = 10
    settings.ALLOWED_HOSTS = ["*"]
    settings.DEBUG = False

    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    call_command("createcachetable", verbosity=0)
    from io import StringIO
    import json

    out = StringIO()
    call_command("seed_demo", json=True, learners=learners, emulator_url=emulator.url, stdout=out)
    return emulator, emulator_cm, json.loads(out.getvalue())


def _create_mysql_database(url):
    import dj_database_url
    import pymysql

    config = dj_database_url.parse(url)
    connection = pymysql.connect(host=config["HOST"] or "127.0.0.1", port=int(config["PORT"] or 3306),
                                 user=config["USER"], password=config["PASSWORD"] or "")
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{config['NAME']}`")
        cursor.execute(f"CREATE DATABASE `{config['NAME']}` CHARACTER SET utf8mb4")
    connection.close()


def percentile(values, fraction):
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]
