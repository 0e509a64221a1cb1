"""WSGI entry point (gunicorn enterprise_access.wsgi)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enterprise_access.settings.production")

application = get_wsgi_application()
