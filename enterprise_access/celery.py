"""
The Celery application: background work (bulk forcing, decision record 0019).

Settings prefixed ``CELERY_`` configure it. The broker is Redis in production and the production-like stack, and
kombu's filesystem transport under ``var/`` on the embedded default, so ``make demo`` needs no server. A worker:

    .venv/bin/celery -A enterprise_access worker --pool solo -l info
"""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enterprise_access.settings.local")

app = Celery("enterprise_access")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
