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
        from planhat_segment.permissions import admin_view_permissions

        from . import page  # the page composes usage and warehouse_sync: import lazily

        # Each POST action needs its own permission on top (page.ACTION_PERMISSIONS).
        integration_page = admin_view_permissions(
            page.integration_page, GET=page.PAGE_PERMISSIONS, POST=page.PAGE_PERMISSIONS
        )
        extra = [
            path(
                "integrations/segment/",
                self.admin_view(integration_page),
                name="segment_integration",
            ),
        ]
        extra += page.extra_urls(self)
        return extra + super().get_urls()

    def get_app_list(self, request, app_label=None):
        app_list = super().get_app_list(request, app_label)
        if app_label not in (None, "integrations"):
            return app_list
        if not request.user.has_perm("integrations.view_integrationsettings"):
            return app_list  # the page answers 403 to them: no link either
        page_entry = {
            "name": "Segment integration page",
            "object_name": "SegmentIntegrationPage",
            "admin_url": reverse("admin:segment_integration"),
            "view_only": not request.user.has_perm("integrations.change_integrationsettings"),
            "perms": {"view": True},
        }
        app = next((a for a in app_list if a["app_label"] == "integrations"), None)
        if app is None:  # no permission on any model of the app, but the page is theirs
            app = {
                "name": "Segment integration",
                "app_label": "integrations",
                "app_url": reverse("admin:app_list", kwargs={"app_label": "integrations"}),
                "has_module_perms": True,
                "models": [],
            }
            app_list.append(app)
            app_list.sort(key=lambda entry: entry["name"].lower())
        app["models"].insert(0, page_entry)
        return app_list


class SegmentAdminConfig(AdminConfig):
    """The admin, on a site that adds the integration page."""

    default_site = "integrations.admin_site.SegmentAdminSite"
