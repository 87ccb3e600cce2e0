"""Admin of metric definitions. The integration's settings have their own page (page.py),
so IntegrationSettings is deliberately not registered as a change list here."""

from __future__ import annotations

from django.contrib import admin

from planhat_segment.permissions import OwnAppDeletion

from .models import MetricDefinition


class ArchivedFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "archived"

    def lookups(self, request, model_admin):
        return (("no", "In use"), ("yes", "Removed (archived)"))

    def queryset(self, request, queryset):
        if self.value() in ("no", "yes"):
            return queryset.filter(archived_at__isnull=self.value() == "no")
        return queryset


@admin.register(MetricDefinition)
class MetricDefinitionAdmin(OwnAppDeletion, admin.ModelAdmin):
    """Removing a metric on the integration page archives it (values kept); deleting a
    definition here deletes its recorded values too, and Django's confirmation page lists
    how many (Integration admins only)."""

    list_display = ("key", "label", "source", "description", "created_at", "archived_at")
    list_filter = ("source", ArchivedFilter)
    search_fields = ("key", "label", "description")
    # Where values come from is a fact about the metric, not a setting.
    readonly_fields = ("source", "created_at", "archived_at")
