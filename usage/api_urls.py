"""Usage API routes, included under /api/ by the project."""

from django.urls import path

from . import api

urlpatterns = [
    path("activities/", api.ActivityListApi.as_view(), name="api-activities"),
    path("metric-values/", api.MetricValueListApi.as_view(), name="api-metric-values"),
    path("events/", api.InboxEventListApi.as_view(), name="api-events"),
    path(
        "endusers/<int:enduser_id>/forget/",
        api.EnduserForgetApi.as_view(),
        name="api-enduser-forget",
    ),
]
