"""drf-spectacular extensions: describe the JWT authentication in the schema."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension


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
