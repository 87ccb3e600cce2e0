"""Score history (read-only) and the "Recompute health scores" button."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from planhat_segment.permissions import admin_view_permissions

from ..models import HealthScore
from ..services import health_recompute_queue

RECOMPUTE_PERMISSION = "health.recompute_healthscore"
BAND_COLOURS = {"green": "#1f8a4c", "amber": "#d48a00", "red": "#c0392b"}


def band_badge(score: float | None, band: str | None):
    """The score in a coloured pill (grey "no score" when there is none)."""
    if score is None:
        return format_html('<span class="health-badge" style="color:{}">no score</span>', "#777")
    return format_html(
        '<span class="health-badge" data-band="{}" style="display:inline-block;min-width:2.6em;'
        'text-align:center;padding:1px 6px;border-radius:9px;color:#fff;background:{}">'
        "{}</span>",
        band or "",
        BAND_COLOURS.get(band or "", "#777"),
        f"{score:.1f}",
    )


class RecomputeButtonMixin:
    """A "Recompute health scores" button on the change list (POST, permission-checked)."""

    def get_urls(self):
        opts = self.model._meta
        name = f"{opts.app_label}_{opts.model_name}_recompute"
        return [
            path(
                "recompute/",
                self.admin_site.admin_view(
                    admin_view_permissions(self.recompute_view, POST=(RECOMPUTE_PERMISSION,))
                ),
                name=name,
            ),
            *super().get_urls(),
        ]

    def recompute_view(self, request: HttpRequest):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm(RECOMPUTE_PERMISSION):
            raise PermissionDenied
        health_recompute_queue()
        messages.success(
            request,
            "Recomputing every company's health score on a worker (queue default); "
            "refresh in a moment.",
        )
        opts = self.model._meta
        return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))

    def changelist_view(self, request, extra_context=None):
        extra_context = dict(extra_context or {})
        opts = self.model._meta
        extra_context["recompute_url"] = reverse(
            f"admin:{opts.app_label}_{opts.model_name}_recompute"
        )
        extra_context["can_recompute"] = request.user.has_perm(RECOMPUTE_PERMISSION)
        return super().changelist_view(request, extra_context=extra_context)


@admin.register(HealthScore)
class HealthScoreAdmin(RecomputeButtonMixin, admin.ModelAdmin):
    list_display = (
        "day",
        "company",
        "health",
        "profile",
        "active_endusers_30d",
        "activity_change_30d",
        "last_activity_at",
    )
    list_filter = ("band", "day", "profile")
    search_fields = ("company__name", "=company__external_id")
    list_select_related = ("company", "profile")
    date_hierarchy = "day"
    change_list_template = "health/admin/recompute_change_list.html"
    readonly_fields = (
        "company",
        "day",
        "score",
        "band",
        "profile",
        "breakdown_pretty",
        "last_activity_at",
        "active_endusers_30d",
        "activity_change_30d",
        "mrr",
        "mrr_currency",
        "computed_at",
        "traits_changed_at",
    )
    exclude = ("breakdown",)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        match = getattr(request, "resolver_match", None)
        if match and match.url_name and match.url_name.endswith("_changelist"):
            qs = qs.defer("breakdown")
        return qs

    @admin.display(description="Health", ordering="score")
    def health(self, obj: HealthScore):
        return band_badge(obj.score, obj.band)

    @admin.display(description="Breakdown")
    def breakdown_pretty(self, obj: HealthScore):
        return format_html("<pre>{}</pre>", json.dumps(obj.breakdown, indent=2))

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
