"""API shapes of alert rules, alerts and webhooks. Writes go through ``health.alerts``.

Field names are fixed by the issue (operators' scripts rely on them): rules take and return
the metric by its key, webhooks never return their secret.
"""

from __future__ import annotations

from rest_framework import serializers

from integrations.models import MetricDefinition

from .models import Band
from .models_alerts import (
    ALL_PARAMETERS,
    Alert,
    AlertRule,
    Delivery,
    Operator,
    RuleKind,
    Webhook,
)


class AlertRuleSerializer(serializers.ModelSerializer):
    # Choices are checked by the service too, with messages naming the kind's parameters;
    # here they only shape the schema.
    kind = serializers.ChoiceField(choices=RuleKind.choices)
    email_recipients = serializers.ListField(
        child=serializers.CharField(max_length=254),
        required=False,
        help_text="Email addresses told of each new alert.",
    )
    webhooks = serializers.PrimaryKeyRelatedField(
        many=True, required=False, queryset=Webhook.objects.all(), help_text="Webhook ids."
    )
    metric = serializers.SlugRelatedField(
        slug_field="key",
        queryset=MetricDefinition.objects.all(),
        required=False,
        allow_null=True,
        help_text="metric_threshold: the metric's key (a metric definition).",
    )
    operator = serializers.ChoiceField(
        choices=Operator.choices, required=False, allow_blank=True, allow_null=True
    )
    to_band = serializers.ChoiceField(
        choices=Band.choices, required=False, allow_blank=True, allow_null=True
    )
    action = serializers.CharField(
        max_length=255, required=False, allow_blank=True, allow_null=True
    )
    active_alerts = serializers.IntegerField(read_only=True, source="active_total", default=0)

    class Meta:
        model = AlertRule
        fields = (
            "id",
            "name",
            "kind",
            "enabled",
            "cooldown_hours",
            "min_mrr",
            "email_recipients",
            "webhooks",
            "notify_owner",
            *ALL_PARAMETERS,
            "active_alerts",
            "last_evaluated_at",
            "created_at",
            "updated_at",
        )
        read_only_fields = ("id", "last_evaluated_at", "created_at", "updated_at")
        # Uniqueness and every rule of the kind are checked by the service, in plain words.
        extra_kwargs = {"name": {"validators": []}}


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = Delivery
        fields = (
            "id",
            "channel",
            "target",
            "status",
            "attempt_count",
            "last_status_code",
            "last_error",
            "next_attempt_at",
            "delivered_at",
            "created_at",
        )
        read_only_fields = fields


class AlertSerializer(serializers.ModelSerializer):
    company_external_id = serializers.CharField(
        source="company.external_id", read_only=True, allow_null=True
    )
    company_name = serializers.CharField(source="company.name", read_only=True)
    rule_name = serializers.CharField(source="rule.name", read_only=True)
    kind = serializers.CharField(source="rule.kind", read_only=True)
    acknowledged_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    resolved_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    deliveries = DeliverySerializer(many=True, read_only=True)

    class Meta:
        model = Alert
        fields = (
            "id",
            "rule",
            "rule_name",
            "kind",
            "company",
            "company_external_id",
            "company_name",
            "status",
            "opened_at",
            "day",
            "facts",
            "acknowledged_at",
            "acknowledged_by",
            "resolved_at",
            "resolved_by",
            "resolution",
            "resolution_note",
            "resolution_facts",
            "deliveries",
        )
        read_only_fields = fields


class AlertResolveSerializer(serializers.Serializer):
    note = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, help_text="Why it is resolved."
    )


class WebhookSerializer(serializers.ModelSerializer):
    secret = serializers.CharField(
        write_only=True,
        required=False,
        max_length=255,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Write-only. Signs each body: X-Signature = hex HMAC-SHA256(secret, raw "
        "body). Required when creating (16+ characters); leave out to keep it.",
    )
    has_secret = serializers.SerializerMethodField()

    class Meta:
        model = Webhook
        fields = (
            "id",
            "name",
            "url",
            "secret",
            "has_secret",
            "enabled",
            "created_at",
            "updated_at",
        )
        read_only_fields = ("id", "has_secret", "created_at", "updated_at")
        extra_kwargs = {"name": {"validators": []}, "url": {"validators": []}}

    def get_has_secret(self, obj: Webhook) -> bool:
        return bool(obj.secret)


class EvaluateRequestSerializer(serializers.Serializer):
    day = serializers.DateField(
        required=False, allow_null=True, help_text="UTC day to evaluate (default today)."
    )
    rules = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        allow_null=True,
        help_text="Rule ids (default: every enabled rule).",
    )


class RuleOutcomeSerializer(serializers.Serializer):
    rule_id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField()
    in_scope = serializers.IntegerField()
    judged = serializers.IntegerField()
    met = serializers.IntegerField()
    opened = serializers.IntegerField()
    still_active = serializers.IntegerField()
    in_cooldown = serializers.IntegerField()
    resolved = serializers.IntegerField()
    deliveries = serializers.IntegerField()


class EvaluationSerializer(serializers.Serializer):
    day = serializers.DateField()
    opened = serializers.IntegerField()
    resolved = serializers.IntegerField()
    rules = RuleOutcomeSerializer(many=True)
