"""/api/ routes of the integration: settings, token rotation, metric definitions."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("metric-definitions", api.MetricDefinitionViewSet, basename="metric-definition")

urlpatterns = [
    path("integration/", api.IntegrationSettingsApi.as_view(), name="integration-settings"),
    path(
        "integration/rotate-token/",
        api.TenantTokenRotateApi.as_view(),
        name="integration-rotate-token",
    ),
    path(
        "integration/rotate-browser-key/",
        api.BrowserKeyRotateApi.as_view(),
        name="integration-rotate-browser-key",
    ),
    *router.urls,
]
