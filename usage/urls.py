"""The Segment ingest routes, mounted at the site root.

Each matches with and without a trailing slash: an APPEND_SLASH 301 on a POST loses the event.
"""

from django.urls import re_path

from usage.ingest import views

urlpatterns = [
    re_path(r"^dock/segment/?$", views.dock_segment, name="ingest-dock-segment"),
    re_path(
        r"^v1/(?P<call>identify|track|group|page|screen|alias|batch|[itgpsab])/?$",
        views.v1_call,
        name="ingest-v1",
    ),
]
