"""Filters of the health score API (django-filter)."""

from __future__ import annotations

import django_filters as filters

from .models import Band, HealthScore


class HealthScoreFilter(filters.FilterSet):
    company = filters.NumberFilter(field_name="company_id", help_text="The company's id.")
    company_external_id = filters.CharFilter(
        field_name="company__external_id", help_text="The company's external id."
    )
    date = filters.DateFilter(field_name="day", help_text="One UTC day, e.g. 2026-03-15.")
    date_after = filters.DateFilter(field_name="day", lookup_expr="gte", help_text="From this day.")
    date_before = filters.DateFilter(
        field_name="day", lookup_expr="lte", help_text="Up to this day."
    )
    band = filters.ChoiceFilter(choices=Band.choices)

    class Meta:
        model = HealthScore
        fields = ("company", "company_external_id", "date", "band")
