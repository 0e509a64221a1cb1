from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "enterprise_access.apps.core"
    label = "core"
    verbose_name = "Core"

    def ready(self):
        from . import history  # noqa: F401 (connects the receiver that names who changed a historied record)
