"""Admin of metric definitions. The integration's settings have their own page (page.py),
so IntegrationSettings is deliberately not registered as a change list here."""

from __future__ import annotations

from django.contrib import admin

from planhat_segment.permissions import OwnAppDeletion

from .models import MetricDefinition


@admin.register(MetricDefinition)
class MetricDefinitionAdmin(OwnAppDeletion, admin.ModelAdmin):
    """Deleting a definition deletes its recorded values (integration admins only)."""

    list_display = ("key", "label", "description", "created_at")
    search_fields = ("key", "label", "description")
    readonly_fields = ("created_at",)
