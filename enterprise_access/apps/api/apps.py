from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "enterprise_access.apps.api"
    label = "api"
    verbose_name = "API"
