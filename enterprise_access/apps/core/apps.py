from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "enterprise_access.apps.core"
    label = "core"
    verbose_name = "Core"
