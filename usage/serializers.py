"""Read-only representations for the usage API."""

from __future__ import annotations

from rest_framework import serializers

from .models import Activity, InboxEvent, MetricValue


class ActivitySerializer(serializers.ModelSerializer):
    company_external_id = serializers.CharField(source="company.external_id", read_only=True)
    enduser_external_id = serializers.CharField(source="enduser.external_id", read_only=True)
    asset_external_id = serializers.CharField(
        source="asset.external_id", read_only=True, default=None
    )
    project_external_id = serializers.CharField(
        source="project.external_id", read_only=True, default=None
    )

    class Meta:
        model = Activity
        fields = [
            "id",
            "company",
            "company_external_id",
            "enduser",
            "enduser_external_id",
            "asset",
            "asset_external_id",
            "project",
            "project_external_id",
            "action",
            "count",
            "occurred_at",
            "received_at",
            "properties",
            "message_id",
        ]
        read_only_fields = fields


class MetricValueSerializer(serializers.ModelSerializer):
    """A value belongs to exactly one of company, enduser, asset, project (others null)."""

    company_external_id = serializers.CharField(
        source="company.external_id", read_only=True, default=None
    )
    enduser_external_id = serializers.CharField(
        source="enduser.external_id", read_only=True, default=None
    )
    asset_external_id = serializers.CharField(
        source="asset.external_id", read_only=True, default=None
    )
    project_external_id = serializers.CharField(
        source="project.external_id", read_only=True, default=None
    )
    metric_key = serializers.CharField(source="metric.key", read_only=True)
    metric_source = serializers.CharField(source="metric.source", read_only=True)

    class Meta:
        model = MetricValue
        fields = [
            "id",
            "company",
            "company_external_id",
            "enduser",
            "enduser_external_id",
            "asset",
            "asset_external_id",
            "project",
            "project_external_id",
            "metric",
            "metric_key",
            "metric_source",
            "value",
            "occurred_at",
            "message_id",
        ]
        read_only_fields = fields


class InboxEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = InboxEvent
        fields = [
            "id",
            "message_id",
            "request_id",
            "type",
            "status",
            "reason",
            "detail",
            "attempts",
            "received_at",
            "occurred_at",
            "processed_at",
            "next_attempt_at",
            "wait_until",
            "user_key",
            "email_key",
            "company_key",
            "enduser",
            "payload",
        ]
        read_only_fields = fields
