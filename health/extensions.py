"""Health's additions to screens other apps own, applied from ``HealthConfig.ready``.

``planhat_segment`` and ``usage`` never import health (DESIGN.md §2), so health extends them
from its side: the company API's serializer, queryset and ordering gain the latest health
figures, and the Trends page gets health's panel through usage's panel registry. (The
company admin is re-registered in ``health/admin/companies.py``.)
"""

from __future__ import annotations

from django.db.models import F
from rest_framework import serializers
from rest_framework.filters import OrderingFilter

HEALTH_FIELDS = (
    "health_score",
    "health_band",
    "last_activity_at",
    "active_endusers_30d",
    "activity_change_30d",
)


def company_serializer_class(base: type[serializers.ModelSerializer]):
    """The company serializer with read-only health fields (from the latest score row)."""
    from .selectors import companies_with_health

    class CompanyWithHealthSerializer(base):
        health_score = serializers.FloatField(
            read_only=True, allow_null=True, help_text="Latest health score, 0–10 (null: none)."
        )
        # A CharField, not a ChoiceField: the score API's `band` already names this choice
        # set in the schema, and one set under two names is a schema warning.
        health_band = serializers.CharField(
            read_only=True,
            allow_null=True,
            help_text="green / amber / red (null: no score).",
        )
        last_activity_at = serializers.DateTimeField(
            read_only=True, allow_null=True, help_text="Time of the latest activity (UTC)."
        )
        active_endusers_30d = serializers.IntegerField(
            read_only=True, help_text="Distinct active endusers over the last 30 complete days."
        )
        activity_change_30d = serializers.FloatField(
            read_only=True,
            allow_null=True,
            help_text="Activity of the last 30 complete days vs the 30 before, in % "
            "(null: no activity in the previous 30 days).",
        )

        class Meta(base.Meta):
            fields = (*base.Meta.fields, *HEALTH_FIELDS)
            read_only_fields = (*base.Meta.read_only_fields, *HEALTH_FIELDS)

        def to_representation(self, instance):
            if not hasattr(instance, "health_score"):
                # A single object read without the list's annotations (e.g. a write's answer).
                annotated = companies_with_health().filter(pk=instance.pk).first()
                for field in HEALTH_FIELDS:
                    setattr(instance, field, getattr(annotated, field, None))
                if instance.active_endusers_30d is None:
                    instance.active_endusers_30d = 0
            return super().to_representation(instance)

    return CompanyWithHealthSerializer


class HealthOrderingFilter(OrderingFilter):
    """DRF's ordering, with companies without a score (null) last in both directions."""

    def filter_queryset(self, request, queryset, view):
        ordering = self.get_ordering(request, queryset, view)
        if not ordering:
            return queryset
        terms = []
        for term in ordering:
            name = term.lstrip("-")
            if name in HEALTH_FIELDS:
                expr = F(name)
                terms.append(
                    expr.desc(nulls_last=True)
                    if term.startswith("-")
                    else expr.asc(nulls_last=True)
                )
            else:
                terms.append(term)
        return queryset.order_by(*terms)


def company_api_extend() -> None:
    """Swap the company viewset's serializer, queryset annotation and ordering fields."""
    from planhat_segment import api

    from .selectors import companies_with_health

    viewset = api.CompanyViewSet
    if getattr(viewset, "_health_extended", False):
        return
    base_get_queryset = viewset.get_queryset

    def get_queryset(self):
        return companies_with_health(base_get_queryset(self))

    viewset.get_queryset = get_queryset
    viewset.serializer_class = company_serializer_class(viewset.serializer_class)
    viewset.ordering_fields = (*viewset.ordering_fields, *HEALTH_FIELDS)
    viewset.filter_backends = tuple(
        HealthOrderingFilter if backend is OrderingFilter else backend
        for backend in viewset.filter_backends
    )
    viewset._health_extended = True


def trends_panel_register() -> None:
    from usage.trends_views import company_trends_panel_register

    from .panels import trends_panel

    company_trends_panel_register(trends_panel)
