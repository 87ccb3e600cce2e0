"""API shapes of the integration's settings and metric definitions. Writes go through services.

Secrets (the write key, the shared secret) are write-only: reads say whether they are set,
and show the write key's last four characters so an admin can tell which key is in use.
Only with ``context["show_secrets"]`` (those who may manage the integration) do reads hold
the tenant token and the write key's last characters; others get the token masked.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from rest_framework import serializers

from .models import IntegrationSettings, MetricDefinition
from .selectors import masked, previous_browser_key_valid_until, previous_token_valid_until


class IntegrationSettingsSerializer(serializers.ModelSerializer):
    write_key = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=255,
        help_text="The Segment source's write key (write-only; an empty string clears it).",
    )
    shared_secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=255,
        help_text="Optional: when set, /dock/segment requires a valid X-Signature (write-only).",
    )
    write_key_set = serializers.SerializerMethodField()
    write_key_masked = serializers.SerializerMethodField()
    shared_secret_set = serializers.SerializerMethodField()
    is_on = serializers.BooleanField(read_only=True)
    status_reason = serializers.CharField(read_only=True)
    previous_token_valid_until = serializers.SerializerMethodField()
    previous_browser_key_valid_until = serializers.SerializerMethodField()
    public_base_url = serializers.SerializerMethodField()
    token_rotation_grace_hours = serializers.SerializerMethodField()

    class Meta:
        model = IntegrationSettings
        fields = (
            "user_tracking_enabled",
            "company_metrics_enabled",
            "warehouse_enabled",
            "create_endusers",
            "match_by_email_domain",
            "unassigned_wait_hours",
            "region",
            "custom_base_url",
            "synced_models",
            "write_key",
            "write_key_set",
            "write_key_masked",
            "shared_secret",
            "shared_secret_set",
            "tenant_token",
            "previous_token_valid_until",
            "browser_key",
            "previous_browser_key_valid_until",
            "token_rotation_grace_hours",
            "is_on",
            "status_reason",
            "public_base_url",
            "updated_at",
        )
        read_only_fields = ("tenant_token", "browser_key", "updated_at")

    def to_representation(self, instance: IntegrationSettings) -> dict:
        data = super().to_representation(instance)
        if not self.context.get("show_secrets", False):
            data["tenant_token"] = masked(instance.tenant_token)
            data["browser_key"] = masked(instance.browser_key)
            data["write_key_masked"] = ""
        return data

    def get_write_key_set(self, obj: IntegrationSettings) -> bool:
        return bool(obj.write_key)

    def get_write_key_masked(self, obj: IntegrationSettings) -> str:
        return masked(obj.write_key)

    def get_shared_secret_set(self, obj: IntegrationSettings) -> bool:
        return bool(obj.shared_secret)

    def get_previous_token_valid_until(self, obj: IntegrationSettings) -> datetime | None:
        """Until when the rotated-out token still works; null when none does."""
        return previous_token_valid_until(integration=obj)

    def get_previous_browser_key_valid_until(self, obj: IntegrationSettings) -> datetime | None:
        """Until when the rotated-out browser key still works; null when none does."""
        return previous_browser_key_valid_until(integration=obj)

    def get_public_base_url(self, obj: IntegrationSettings) -> str:
        return settings.PUBLIC_BASE_URL

    def get_token_rotation_grace_hours(self, obj: IntegrationSettings) -> int:
        return settings.TOKEN_ROTATION_GRACE_HOURS


class TokenRotationSerializer(serializers.Serializer):
    tenant_token = serializers.CharField(help_text="The new token: put it into Segment.")
    previous_token_valid_until = serializers.DateTimeField(
        help_text="Until when the old token keeps working."
    )


class BrowserKeyRotationSerializer(serializers.Serializer):
    browser_key = serializers.CharField(help_text="The new key: put it into your site's snippet.")
    previous_browser_key_valid_until = serializers.DateTimeField(
        help_text="Until when the old key keeps working."
    )


class MetricDefinitionSerializer(serializers.ModelSerializer):
    class Meta:
        model = MetricDefinition
        fields = ("id", "key", "label", "description", "source", "created_at", "archived_at")
        # Metrics made here (or on the page) are Segment's; dimension data makes its own.
        read_only_fields = ("id", "source", "created_at", "archived_at")
        # The key's format and uniqueness are checked by the model's full_clean in the
        # services, so the API and the admin give the same messages.
        extra_kwargs = {"key": {"validators": []}}
