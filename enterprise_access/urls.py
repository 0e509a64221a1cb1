"""URL routes of the service."""
from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path
from django.views.defaults import page_not_found
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView


def not_found(request, exception=None):
    """API clients get JSON for an unknown URL under /api/; people get Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": f"No API endpoint at {request.path}. See /api/docs/ for the endpoints."},
                            status=404)
    return page_not_found(request, exception)


handler404 = not_found


def health(request):
    """Liveness probe: answers without touching the database or upstream services."""
    return JsonResponse({"status": "OK"})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/", health, name="health"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("enterprise_access.apps.api.urls")),
]
