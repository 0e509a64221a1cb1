"""Registers the development commands; the app has no models."""
from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    name = "enterprise_access.devtools"
    label = "devtools"
    verbose_name = "Development tooling"
