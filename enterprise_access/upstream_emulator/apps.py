"""Django registration of the upstream emulator (no models: its state lives in its own SQLite file)."""
from django.apps import AppConfig


class UpstreamEmulatorConfig(AppConfig):
    name = "enterprise_access.upstream_emulator"
    label = "upstream_emulator"
    verbose_name = "Upstream emulator"
