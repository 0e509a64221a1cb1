"""The schema's extensions are resolved when the app loads, not by whichever request thread comes first."""
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiFilterExtension,
    OpenApiSerializerExtension,
    OpenApiSerializerFieldExtension,
    OpenApiViewExtension,
)

from enterprise_access.devtools.testing import run_concurrently


def test_every_schema_extension_is_resolved_once_the_apps_are_ready():
    unresolved = [extension.__name__
                  for base in (OpenApiAuthenticationExtension, OpenApiFilterExtension, OpenApiSerializerExtension,
                               OpenApiSerializerFieldExtension, OpenApiViewExtension)
                  for extension in base._registry if isinstance(extension.target_class, str)]
    assert unresolved == []


def test_concurrent_first_schema_requests_all_answer_200(client, db):
    responses = run_concurrently(lambda _: client.get("/api/schema/"), [(n,) for n in range(6)])
    assert [response.status_code for response in responses] == [200] * 6
