"""The admin site, with the Segment integration page added through ``get_urls``."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.urls import path, reverse


class SegmentAdminSite(admin.AdminSite):
    site_header = "Planhat · Segment integration"
    site_title = "Planhat Segment"
    index_title = "Workspace"

    def get_urls(self):
        from . import page  # the page composes usage and warehouse_sync: import lazily

        extra = [
            path(
                "integrations/segment/",
                self.admin_view(page.integration_page),
                name="segment_integration",
            ),
        ]
        extra += page.extra_urls(self)
        return extra + super().get_urls()

    def get_app_list(self, request, app_label=None):
        app_list = super().get_app_list(request, app_label)
        if app_label in (None, "integrations"):
            for app in app_list:
                if app["app_label"] == "integrations":
                    app["models"].insert(
                        0,
                        {
                            "name": "Segment integration page",
                            "object_name": "SegmentIntegrationPage",
                            "admin_url": reverse("admin:segment_integration"),
                            "view_only": True,
                            "perms": {"view": True},
                        },
                    )
        return app_list


class SegmentAdminConfig(AdminConfig):
    """The admin, on a site that adds the integration page."""

    default_site = "integrations.admin_site.SegmentAdminSite"
