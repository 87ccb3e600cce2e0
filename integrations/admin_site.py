"""The admin site, with the Segment integration page added through ``get_urls``.

The home page and the sidebar lead with what a customer-success team uses (companies,
endusers, usage, the integration page, health and alerts when installed); infrastructure
(tombstones, periodic tasks, API keys, the audit log, users) comes last, under one heading.
"View site" leads to the integration page (the site has no public pages).
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.urls import path, reverse

# Apps in the order a CS team reaches for them; apps not named here come after these, and
# the infrastructure group last.
APP_ORDER = ("planhat_segment", "usage", "integrations", "health", "warehouse_sync")
# Models in the order they are used, per app (others follow in Django's alphabetical order).
MODEL_ORDER = {
    "planhat_segment": ("Company", "EndUser", "License", "Asset", "Project"),
    "usage": ("Activity", "MetricValue", "InboxEvent", "UnassignedUsers"),
    "integrations": ("SegmentIntegrationPage", "MetricDefinition"),
    # Open alerts first (wt-alerts puts them in the health app), then scores and settings.
    "health": ("Alert", "HealthScore", "HealthProfile", "AlertRule", "Webhook", "Delivery"),
    "warehouse_sync": ("SyncRun", "FailedObject", "SyncBatch"),
}
# Models that are plumbing rather than daily work: moved under "Infrastructure".
INFRASTRUCTURE_MODELS = {
    ("planhat_segment", "Tombstone"),
    ("authtoken", "TokenProxy"),
    ("admin", "LogEntry"),
}
INFRASTRUCTURE_APPS = {"django_celery_beat", "auth", "authtoken", "admin"}


class SegmentAdminSite(admin.AdminSite):
    site_header = "Planhat · Segment integration"
    site_title = "Planhat Segment"
    index_title = "Workspace"

    def each_context(self, request):
        context = super().each_context(request)
        context["site_url"] = reverse("admin:segment_integration")
        return context

    def get_urls(self):
        from planhat_segment.permissions import admin_view_permissions

        from . import admin_urls, page  # they compose usage and warehouse_sync: import lazily

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
        extra += admin_urls.extra_urls(self)
        return extra + super().get_urls()

    def get_app_list(self, request, app_label=None):
        app_list = super().get_app_list(request, app_label)
        if app_label in (None, "integrations"):
            self._add_integration_page(request, app_list)
        if app_label in (None, "usage"):
            self._add_unassigned_report(request, app_list)
        if app_label is None:
            app_list = self._ordered(app_list)
        return app_list

    def _ordered(self, app_list: list[dict]) -> list[dict]:
        infrastructure: list[dict] = []
        kept = []
        for app in app_list:
            label = app["app_label"]
            if label in INFRASTRUCTURE_APPS:
                infrastructure.extend(app["models"])
                continue
            moved = [m for m in app["models"] if (label, m["object_name"]) in INFRASTRUCTURE_MODELS]
            infrastructure.extend(moved)
            app["models"] = [m for m in app["models"] if m not in moved]
            order = MODEL_ORDER.get(label, ())
            app["models"].sort(
                key=lambda m: (
                    order.index(m["object_name"]) if m["object_name"] in order else len(order)
                )
            )
            if app["models"]:
                kept.append(app)
        kept.sort(
            key=lambda a: (
                APP_ORDER.index(a["app_label"]) if a["app_label"] in APP_ORDER else len(APP_ORDER)
            )
        )
        if infrastructure:
            kept.append(
                {
                    "name": "Infrastructure",
                    "app_label": "infrastructure",
                    # An anchor of the home page: an empty URL would mark this group as the
                    # current one on every page of the sidebar.
                    "app_url": reverse("admin:index") + "#infrastructure",
                    "has_module_perms": True,
                    "models": infrastructure,
                }
            )
        return kept

    def _add_integration_page(self, request, app_list: list[dict]) -> None:
        if not request.user.has_perm("integrations.view_integrationsettings"):
            return  # the page answers 403 to them: no link either
        entry = {
            "name": "Segment integration page",
            "object_name": "SegmentIntegrationPage",
            "admin_url": reverse("admin:segment_integration"),
            "view_only": not request.user.has_perm("integrations.change_integrationsettings"),
            "perms": {"view": True},
        }
        self._app(app_list, "integrations", "Segment integration")["models"].insert(0, entry)

    def _add_unassigned_report(self, request, app_list: list[dict]) -> None:
        if not request.user.has_perm("usage.view_inboxevent"):
            return
        entry = {
            "name": "Unassigned users",
            "object_name": "UnassignedUsers",
            "admin_url": reverse("admin:usage_inboxevent_unassigned"),
            "view_only": not request.user.has_perm("usage.assign_users"),
            "perms": {"view": True},
        }
        self._app(app_list, "usage", "Usage")["models"].append(entry)

    @staticmethod
    def _app(app_list: list[dict], label: str, name: str) -> dict:
        app = next((a for a in app_list if a["app_label"] == label), None)
        if app is None:  # no permission on any model of the app, but the page is theirs
            app = {
                "name": name,
                "app_label": label,
                "app_url": reverse("admin:app_list", kwargs={"app_label": label}),
                "has_module_perms": True,
                "models": [],
            }
            app_list.append(app)
            app_list.sort(key=lambda entry: entry["name"].lower())
        return app


class SegmentAdminConfig(AdminConfig):
    """The admin, on a site that adds the integration page."""

    default_site = "integrations.admin_site.SegmentAdminSite"
