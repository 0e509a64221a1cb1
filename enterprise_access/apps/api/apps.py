from django.apps import AppConfig


def resolve_schema_extensions():
    """
    Resolve every drf-spectacular extension's target class now, in one thread.

    drf-spectacular resolves them lazily, on the first schema request, and not safely across threads: two threads of
    a cold threaded worker could both start resolving one that is not installed (the contrib extension for
    dj_rest_auth, say), and the second then read the first's None as a class name and fail with a 500.
    """
    import drf_spectacular.openapi  # noqa: F401  registers the contrib extensions
    from drf_spectacular.extensions import (
        OpenApiAuthenticationExtension,
        OpenApiFilterExtension,
        OpenApiSerializerExtension,
        OpenApiSerializerFieldExtension,
        OpenApiViewExtension,
    )

    for base in (OpenApiAuthenticationExtension, OpenApiFilterExtension, OpenApiSerializerExtension,
                 OpenApiSerializerFieldExtension, OpenApiViewExtension):
        for extension in base._registry:  # pylint: disable=protected-access
            if isinstance(extension.target_class, str):
                extension._load_class()  # pylint: disable=protected-access


class ApiConfig(AppConfig):
    name = "enterprise_access.apps.api"
    label = "api"
    verbose_name = "API"

    def ready(self):
        from . import schema  # noqa: F401  registers the schema's JWT authentication extension

        resolve_schema_extensions()
