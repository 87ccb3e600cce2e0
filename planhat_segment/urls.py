"""URLs: the admin, the REST API under /api/, and the Segment ingest routes at the root."""

from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView


def healthz(request):
    return JsonResponse({"ok": True})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/", include("planhat_segment.api_urls")),
    path("api/", include("integrations.api_urls")),
    path("api/", include("usage.api_urls")),
    path("api/", include("warehouse_sync.api_urls")),
    path("api/", include("health.api_urls")),
    path("healthz", healthz, name="healthz"),
    path("", include("usage.urls")),  # /dock/segment and /v1/* (Segment ingest)
]
