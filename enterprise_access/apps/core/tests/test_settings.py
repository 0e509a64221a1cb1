"""The production settings refuse to start without their required environment and install no development tooling."""
import json
import os
import subprocess
import sys

from django.conf import settings

REQUIRED = {
    "SECRET_KEY": "x",
    "DATABASE_URL": "mysql://root@127.0.0.1:3306/enterprise_access",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "ENTERPRISE_SUBSIDY_URL": "http://subsidy.invalid",
    "ENTERPRISE_CATALOG_URL": "http://catalog.invalid",
    "LMS_URL": "http://lms.invalid",
    "BACKEND_SERVICE_EDX_OAUTH2_KEY": "key",
    "BACKEND_SERVICE_EDX_OAUTH2_SECRET": "secret",
    "JWT_ISSUER": "http://lms.invalid/oauth2",
    "JWT_AUDIENCE": "enterprise-access",
    "JWT_PUBLIC_SIGNING_JWK_SET": '{"keys": []}',
}


PRINT_LMS_URL = "import django; django.setup(); from django.conf import settings; print(settings.LMS_URL)"


def _load_production_settings(env, script=PRINT_LMS_URL):
    clean = {k: v for k, v in os.environ.items() if k not in REQUIRED}
    clean.update(env)
    clean["DJANGO_SETTINGS_MODULE"] = "enterprise_access.settings.production"
    return subprocess.run(
        [sys.executable, "-c", script], cwd=settings.BASE_DIR, env=clean, capture_output=True, text=True, timeout=60,
    )


def test_production_settings_load_with_everything_set():
    result = _load_production_settings(REQUIRED)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "http://lms.invalid"


def test_each_missing_production_setting_is_named():
    for name in ("DATABASE_URL", "REDIS_URL", "ENTERPRISE_SUBSIDY_URL", "BACKEND_SERVICE_EDX_OAUTH2_SECRET",
                 "JWT_PUBLIC_SIGNING_JWK_SET"):
        env = {k: v for k, v in REQUIRED.items() if k != name}
        result = _load_production_settings(env)
        assert result.returncode != 0
        assert f"The environment variable {name} is required" in result.stderr


DEVELOPMENT_ONLY = ("devtools", "emulator", "demo")


def test_production_settings_install_no_development_only_app():
    script = ("import json, django; django.setup(); from django.apps import apps; "
              "print(json.dumps([app.name for app in apps.get_app_configs()]))")
    result = _load_production_settings(REQUIRED, script)
    assert result.returncode == 0, result.stderr
    installed = json.loads(result.stdout)
    assert "enterprise_access.apps.subsidy_access_policy" in installed  # the service itself is there
    assert [name for name in installed if any(word in name for word in DEVELOPMENT_ONLY)] == []


def test_production_settings_offer_no_development_commands():
    script = ("import json, django; django.setup(); from django.core.management import get_commands; "
              "print(json.dumps(sorted(get_commands())))")
    result = _load_production_settings(REQUIRED, script)
    assert result.returncode == 0, result.stderr
    commands = set(json.loads(result.stdout))
    assert "export_redemption_attempts" in commands  # the service's own commands are there
    assert commands.isdisjoint({"run_upstream_emulator", "seed_demo", "run_demo", "mint_jwt"})


def test_development_settings_do_install_the_devtools(settings):
    from django.core.management import get_commands

    assert "enterprise_access.devtools" in settings.INSTALLED_APPS
    assert get_commands()["mint_jwt"] == "enterprise_access.devtools"


def test_unknown_api_urls_answer_json(client):
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "/api/docs/" in response.json()["detail"]


def test_unknown_pages_outside_the_api_stay_html(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


CACHE_INSIDE_A_WRITE = """
import django; django.setup()
from django.core.cache import cache
from django.core.management import call_command
from django.db import transaction
from django.contrib.auth import get_user_model
call_command("migrate", verbosity=0)
call_command("createcachetable", verbosity=0)
with transaction.atomic():  # as every admin save is
    get_user_model().objects.create(username="writer")
    cache.set("tenancy-read", "c0ffee")
    print(cache.get("tenancy-read"))
"""


def test_the_local_cache_works_inside_an_admin_write_on_sqlite(tmp_path):
    # The demo's cache used to be a database cache on the second alias: inside the admin's write transaction SQLite
    # made it wait for the write lock (20 s), then fail ('database is locked'): admin saves stalled or answered 500.
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "enterprise_access.settings.local",
           "LOCAL_SQLITE_PATH": str(tmp_path / "local.sqlite3")}
    done = subprocess.run([sys.executable, "-c", CACHE_INSIDE_A_WRITE], cwd=settings.BASE_DIR, env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "c0ffee"
