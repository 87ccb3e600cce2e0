"""The Segment ingest routes, mounted at the site root.

Each matches with and without a trailing slash: an APPEND_SLASH 301 on a POST loses the event.
"""

from django.urls import re_path

from usage.ingest import settings_view, views
from usage.ingest.planhat import views as planhat

urlpatterns = [
    re_path(r"^dock/segment/?$", views.dock_segment, name="ingest-dock-segment"),
    re_path(
        r"^v1/(?P<call>identify|track|group|page|screen|alias|batch|[itgpsab])/?$",
        views.v1_call,
        name="ingest-v1",
    ),
    # analytics.js's settings (the browser key or the tenant token as write key).
    re_path(
        r"^v1/projects/(?P<write_key>[^/]+)/settings/?$",
        settings_view.project_settings,
        name="ingest-v1-settings",
    ),
    # Planhat's open endpoints: the token in the path, or as Authorization: Bearer.
    re_path(
        r"^analytics/bulk(?:/(?P<token>[^/]+))?/?$",
        planhat.analytics_bulk,
        name="ingest-analytics-bulk",
    ),
    re_path(
        r"^analytics/stream/csv(?:/(?P<token>[^/]+))?/?$",
        planhat.analytics_csv,
        name="ingest-analytics-csv",
    ),
    re_path(r"^analytics(?:/(?P<token>[^/]+))?/?$", planhat.analytics, name="ingest-analytics"),
    re_path(
        r"^dimensiondata(?:/(?P<token>[^/]+))?/?$",
        planhat.dimension_data,
        name="ingest-dimensiondata",
    ),
]
