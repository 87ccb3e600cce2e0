"""Profiles and their factors, edited in one page; validation in plain words."""

from __future__ import annotations

from django.contrib import admin, messages

from ..models import HealthFactor, HealthProfile
from ..services import health_profile_delete, health_profile_save, health_recompute_queue
from .scores import RecomputeButtonMixin


class HealthFactorInline(admin.StackedInline):
    model = HealthFactor
    extra = 0
    fieldsets = (
        (None, {"fields": (("order", "name", "weight"), ("figure", "window_days"))}),
        ("Figure parameters", {"fields": (("action", "weighted"), ("metric", "currency"))}),
        (
            "Condition",
            {
                "fields": (
                    "condition",
                    ("threshold", "impact"),
                    ("range_min", "range_max"),
                    ("impact_at_min", "impact_at_max"),
                )
            },
        ),
    )


@admin.register(HealthProfile)
class HealthProfileAdmin(RecomputeButtonMixin, admin.ModelAdmin):
    list_display = (
        "name",
        "order",
        "is_default",
        "filter_text",
        "bands",
        "factor_count",
        "updated_at",
    )
    list_editable = ("order",)
    inlines = (HealthFactorInline,)
    fieldsets = (
        (None, {"fields": ("name", "description", "order", "is_default")}),
        (
            "Filter (ignored on the default profile)",
            {"fields": ("min_mrr", ("custom_field", "custom_value"))},
        ),
        ("Money", {"fields": ("currency", "currency_rates")}),
        ("Bands", {"fields": (("green_min", "amber_min"),)}),
    )
    change_list_template = "health/admin/recompute_change_list.html"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("factors")

    @admin.display(description="Filter")
    def filter_text(self, obj: HealthProfile) -> str:
        if obj.is_default:
            return "every other company"
        parts = []
        if obj.min_mrr is not None:
            parts.append(f"MRR ≥ {obj.min_mrr:,} {obj.currency}")
        if obj.custom_field:
            parts.append(f"{obj.custom_field} = {obj.custom_value!r}")
        return " and ".join(parts) or "— (matches nothing: add a filter)"

    @admin.display(description="Bands")
    def bands(self, obj: HealthProfile) -> str:
        return f"green ≥ {obj.green_min:g}, amber ≥ {obj.amber_min:g}"

    @admin.display(description="Factors")
    def factor_count(self, obj: HealthProfile) -> int:
        return len(obj.factors.all())

    def save_model(self, request, obj, form, change) -> None:
        # The service keeps one default profile (this one replaces the previous default).
        health_profile_save(profile=obj)

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        # Factors are saved by the inline formsets after the profile: re-score once after.
        health_recompute_queue()
        messages.info(request, "Health scores are being recomputed with the changed profile.")

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.is_default:
            return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request, obj) -> None:
        health_profile_delete(profile=obj)

    def delete_queryset(self, request, queryset) -> None:
        for profile in queryset:  # a handful of profiles at most
            health_profile_delete(profile=profile)
