"""django-filter sets for the usage API (filtering is the library's job, not hand-written)."""

from __future__ import annotations

import django_filters

from .models import Activity, DropReason, InboxEvent, InboxStatus, MetricValue


class ActivityFilter(django_filters.FilterSet):
    company = django_filters.NumberFilter(field_name="company_id")
    company_external_id = django_filters.CharFilter(field_name="company__external_id")
    enduser = django_filters.NumberFilter(field_name="enduser_id")
    enduser_external_id = django_filters.CharFilter(field_name="enduser__external_id")
    action = django_filters.CharFilter()
    occurred_after = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Activity
        fields: list[str] = []


class MetricValueFilter(django_filters.FilterSet):
    company = django_filters.NumberFilter(field_name="company_id")
    company_external_id = django_filters.CharFilter(field_name="company__external_id")
    enduser = django_filters.NumberFilter(field_name="enduser_id")
    enduser_external_id = django_filters.CharFilter(field_name="enduser__external_id")
    asset = django_filters.NumberFilter(field_name="asset_id")
    asset_external_id = django_filters.CharFilter(field_name="asset__external_id")
    project = django_filters.NumberFilter(field_name="project_id")
    project_external_id = django_filters.CharFilter(field_name="project__external_id")
    model = django_filters.ChoiceFilter(
        choices=[(m, m) for m in ("company", "enduser", "asset", "project")],
        method="filter_model",
        help_text="Only values of this kind of object.",
    )
    metric = django_filters.CharFilter(field_name="metric__key")
    occurred_after = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = MetricValue
        fields: list[str] = []

    def filter_model(self, queryset, name, value):
        return queryset.filter(**{f"{value}__isnull": False})


class InboxEventFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=InboxStatus.choices)
    reason = django_filters.ChoiceFilter(choices=DropReason.choices)
    type = django_filters.CharFilter()
    received_after = django_filters.IsoDateTimeFilter(field_name="received_at", lookup_expr="gte")
    received_before = django_filters.IsoDateTimeFilter(field_name="received_at", lookup_expr="lt")

    class Meta:
        model = InboxEvent
        fields: list[str] = []
