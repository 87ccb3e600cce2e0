"""Admin of metric definitions. The integration's settings have their own page (page.py),
so IntegrationSettings is deliberately not registered as a change list here."""

from __future__ import annotations

from django.contrib import admin

from planhat_segment.permissions import OwnAppDeletion

from .models import MetricDefinition


@admin.register(MetricDefinition)
class MetricDefinitionAdmin(OwnAppDeletion, admin.ModelAdmin):
    """Deleting a definition deletes its recorded values (integration admins only)."""

    list_display = ("key", "label", "source", "description", "created_at")
    list_filter = ("source",)
    search_fields = ("key", "label", "description")
    # Where values come from is a fact about the metric, not a setting.
    readonly_fields = ("source", "created_at")
