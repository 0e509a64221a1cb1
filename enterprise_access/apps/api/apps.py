from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "enterprise_access.apps.api"
    label = "api"
    verbose_name = "API"

    def ready(self):
        from . import schema  # noqa: F401  registers the schema's JWT authentication extension
