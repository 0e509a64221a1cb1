"""drf-spectacular extensions: describe the JWT authentication and the request limits in the schema."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension

from .limits import MAX_JSON_DEPTH, max_body_bytes


class JwtAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "enterprise_access.apps.core.authentication.LmsJwtAuthentication"
    name = "JwtAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`JWT <token>` from the LMS (or the edx-jwt-cookie-header-payload/-signature cookie pair).",
        }


TOO_LARGE_SCHEMA = {
    "type": "object",
    "properties": {
        "detail": {"type": "string"},
        "code": {"type": "string", "enum": ["request_too_large"]},
        "max_bytes": {"type": "integer"},
    },
    "required": ["detail", "code", "max_bytes"],
}


def document_body_limit(result, generator, request, public):
    """Postprocessing hook: each operation with a request body answers 413 past the body limit (decision 0014)."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "requestBody" not in operation:
                continue
            operation.setdefault("responses", {})["413"] = {
                "description": f"The body is larger than {max_body_bytes()} bytes. (JSON nested deeper than "
                               f"{MAX_JSON_DEPTH} levels answers 400.)",
                "content": {"application/json": {"schema": TOO_LARGE_SCHEMA}},
            }
    return result
