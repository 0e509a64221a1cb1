"""API routes; versions live in their own modules."""
from django.urls import include, path

urlpatterns = [
    path("v1/", include(("enterprise_access.apps.api.v1.urls", "v1"), namespace="v1")),
]
