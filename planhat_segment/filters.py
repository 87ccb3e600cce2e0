"""Query filters of the workspace API (django-filter)."""

from __future__ import annotations

import django_filters as filters

from .models import Asset, Company, EndUser, License, Project


class WorkspaceObjectFilter(filters.FilterSet):
    external_id = filters.CharFilter(help_text="Exact external id.")
    updated_since = filters.IsoDateTimeFilter(
        field_name="updated_at",
        lookup_expr="gte",
        help_text="Objects changed at or after this ISO 8601 time, e.g. 2026-01-31T00:00:00Z.",
    )


class CompanyFilter(WorkspaceObjectFilter):
    class Meta:
        model = Company
        fields = ("external_id",)


class CompanyOwnedFilter(WorkspaceObjectFilter):
    company = filters.NumberFilter(field_name="company_id", help_text="The company's id.")
    company_external_id = filters.CharFilter(
        field_name="company__external_id", help_text="The company's external id."
    )


class EndUserFilter(CompanyOwnedFilter):
    email = filters.CharFilter(method="filter_email", help_text="Email, case-insensitive.")
    source = filters.ChoiceFilter(choices=EndUser.Source.choices)

    class Meta:
        model = EndUser
        fields = ("external_id",)

    def filter_email(self, queryset, name, value):
        # The lower-case copy is indexed (unique); iexact on email would scan.
        return queryset.filter(email_normalized=value.strip().lower())


class AssetFilter(CompanyOwnedFilter):
    class Meta:
        model = Asset
        fields = ("external_id",)


class ProjectFilter(CompanyOwnedFilter):
    class Meta:
        model = Project
        fields = ("external_id",)


class LicenseFilter(CompanyOwnedFilter):
    status = filters.ChoiceFilter(choices=License.Status.choices)
    currency = filters.CharFilter(method="filter_currency", help_text="ISO 4217 code, e.g. USD.")

    class Meta:
        model = License
        fields = ("external_id",)

    def filter_currency(self, queryset, name, value):
        return queryset.filter(currency=value.strip().upper())
