"""The company list with health columns, re-registered from health's side.

``planhat_segment`` registers the Company admin and never imports health; this module
unregisters it and registers a subclass with sortable, filterable columns (health, last
activity, active endusers over 30 days, activity change vs the previous 30 days, MRR),
search by an enduser's email, the health panel on the company page and a recompute action.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import admin, messages
from django.db.models import Q
from django.utils import timezone
from django.utils.html import format_html

from planhat_segment.admin import CompanyAdmin
from planhat_segment.display import when_text
from planhat_segment.models import Company, EndUser
from planhat_segment.permissions import has_permission_method

from ..panels import health_panel
from ..selectors import companies_with_health
from ..services import health_scores_recompute
from .scores import RECOMPUTE_PERMISSION, band_badge


class BandFilter(admin.SimpleListFilter):
    title = "health"
    parameter_name = "health"

    def lookups(self, request, model_admin):
        return (("green", "Green"), ("amber", "Amber"), ("red", "Red"), ("none", "No score"))

    def queryset(self, request, queryset):
        if self.value() == "none":
            return queryset.filter(health_band__isnull=True)
        if self.value():
            return queryset.filter(health_band=self.value())
        return queryset


class LastActivityFilter(admin.SimpleListFilter):
    title = "last activity"
    parameter_name = "last_activity"

    def lookups(self, request, model_admin):
        return (
            ("7", "In the last 7 days"),
            ("30", "8–30 days ago"),
            ("old", "More than 30 days ago"),
            ("never", "Never"),
        )

    def queryset(self, request, queryset):
        now = timezone.now()
        week, month = now - dt.timedelta(days=7), now - dt.timedelta(days=30)
        return {
            "7": lambda: queryset.filter(last_activity_at__gte=week),
            "30": lambda: queryset.filter(last_activity_at__lt=week, last_activity_at__gte=month),
            "old": lambda: queryset.filter(last_activity_at__lt=month),
            "never": lambda: queryset.filter(last_activity_at__isnull=True),
        }.get(self.value() or "", lambda: queryset)()


class ActivityChangeFilter(admin.SimpleListFilter):
    title = "activity vs previous 30 days"
    parameter_name = "activity_change"

    def lookups(self, request, model_admin):
        return (
            ("down50", "Down 50 % or more"),
            ("down20", "Down 20–50 %"),
            ("steady", "Within ±20 %"),
            ("up20", "Up 20 % or more"),
            ("none", "No previous activity"),
        )

    def queryset(self, request, queryset):
        field = "activity_change_30d"
        return {
            "down50": lambda: queryset.filter(**{f"{field}__lte": -50}),
            "down20": lambda: queryset.filter(**{f"{field}__gt": -50, f"{field}__lte": -20}),
            "steady": lambda: queryset.filter(**{f"{field}__gt": -20, f"{field}__lt": 20}),
            "up20": lambda: queryset.filter(**{f"{field}__gte": 20}),
            "none": lambda: queryset.filter(**{f"{field}__isnull": True}),
        }.get(self.value() or "", lambda: queryset)()


class ActiveEndusersFilter(admin.SimpleListFilter):
    title = "active endusers (30 days)"
    parameter_name = "active_endusers"

    def lookups(self, request, model_admin):
        return (("0", "None"), ("1-5", "1–5"), ("6-20", "6–20"), ("21+", "More than 20"))

    def queryset(self, request, queryset):
        field = "active_endusers_30d"
        return {
            "0": lambda: queryset.filter(**{field: 0}),
            "1-5": lambda: queryset.filter(**{f"{field}__gte": 1, f"{field}__lte": 5}),
            "6-20": lambda: queryset.filter(**{f"{field}__gte": 6, f"{field}__lte": 20}),
            "21+": lambda: queryset.filter(**{f"{field}__gte": 21}),
        }.get(self.value() or "", lambda: queryset)()


def _is_changelist(request) -> bool:
    match = getattr(request, "resolver_match", None)
    return bool(match and match.url_name and match.url_name.endswith("_changelist"))


admin.site.unregister(Company)


@admin.register(Company)
class HealthCompanyAdmin(CompanyAdmin):
    list_display = (
        "name",
        "external_id",
        "health",
        "last_activity",
        "active_endusers",
        "activity_change",
        "mrr",
        "enduser_count",
        "license_count",
    )  # "is test" is a filter, not a column: the list fits a laptop's width
    list_filter = (
        BandFilter,
        LastActivityFilter,
        ActivityChangeFilter,
        ActiveEndusersFilter,
        *CompanyAdmin.list_filter,
    )
    change_form_template = "health/admin/company_change_form.html"
    # The company list keeps its own actions (CSV export) next to the recompute.
    actions = (*CompanyAdmin.actions, "recompute_health")
    has_recompute_permission = has_permission_method(RECOMPUTE_PERMISSION)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if _is_changelist(request):
            qs = companies_with_health(qs)
        return qs

    def get_search_results(self, request, queryset, search_term):
        found, duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip().lower()
        if "@" in term:
            # A company is found by one of its endusers' emails (case-insensitive).
            owners = EndUser.objects.filter(email_normalized__contains=term).values("company_id")
            found = queryset.filter(Q(pk__in=found.values("pk")) | Q(pk__in=owners))
        return found, duplicates

    @admin.display(description="Health", ordering="health_score")
    def health(self, obj: Company):
        return band_badge(obj.health_score, obj.health_band)

    @admin.display(description="Last activity", ordering="last_activity_at")
    def last_activity(self, obj: Company):
        if obj.last_activity_at is None:
            return "never"
        # In the reader's time zone, named (display only; health's days stay UTC days).
        return when_text(obj.last_activity_at, seconds=False)

    @admin.display(description="Active endusers (30 d)", ordering="active_endusers_30d")
    def active_endusers(self, obj: Company) -> int:
        return obj.active_endusers_30d

    @admin.display(description="Activity vs prev. 30 d", ordering="activity_change_30d")
    def activity_change(self, obj: Company):
        change = obj.activity_change_30d
        if change is None:
            return "—"
        colour = "#c0392b" if change <= -20 else "#1f8a4c" if change >= 20 else "inherit"
        return format_html('<span style="color:{}">{} %</span>', colour, f"{change:+.1f}")

    @admin.display(description="MRR", ordering="health_mrr")
    def mrr(self, obj: Company) -> str:
        if obj.health_mrr is None:
            return "—"
        return f"{obj.health_mrr:,.2f} {obj.health_mrr_currency}"

    @admin.action(
        description="Recompute health for the selected companies", permissions=["recompute"]
    )
    def recompute_health(self, request, queryset) -> None:
        if not request.user.has_perm(RECOMPUTE_PERMISSION):
            self.message_user(request, "You may not start recomputes.", messages.ERROR)
            return
        summary = health_scores_recompute(company_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, str(summary), messages.SUCCESS)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        company = self.get_object(request, object_id)
        if company is not None:
            extra_context["health_panel"] = health_panel(
                request, company, 90, include_chart_js=True
            )
        return super().change_view(request, object_id, form_url, extra_context=extra_context)
