"""Read-only representations of sync runs for the REST API."""

from __future__ import annotations

from rest_framework import serializers

from .models import SyncModelResult, SyncRun


class SyncModelResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = SyncModelResult
        fields = ["model", "objects_synced", "errors", "error_messages"]


class SyncRunSerializer(serializers.ModelSerializer):
    results = SyncModelResultSerializer(many=True, read_only=True)
    duration_seconds = serializers.SerializerMethodField()

    class Meta:
        model = SyncRun
        fields = [
            "id",
            "started_at",
            "finished_at",
            "duration_seconds",
            "trigger",
            "status",
            "full",
            "synced_models",
            "objects_synced",
            "errors",
            "error",
            "results",
        ]

    def get_duration_seconds(self, obj: SyncRun) -> float | None:
        return obj.duration.total_seconds() if obj.duration else None
