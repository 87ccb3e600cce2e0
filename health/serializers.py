"""API shapes of health profiles (with nested factors) and scores."""

from __future__ import annotations

from rest_framework import serializers

from integrations.models import MetricDefinition

from .models import FACTOR_FIELDS, PROFILE_FIELDS, HealthFactor, HealthProfile, HealthScore
from .validation import PROFILE_CHECKED_FIELDS, factor_problems, profile_problems


class HealthFactorSerializer(serializers.ModelSerializer):
    metric = serializers.SlugRelatedField(
        slug_field="key",
        queryset=MetricDefinition.objects.all(),
        required=False,
        allow_null=True,
        help_text="Metric figures: the metric's key (as defined on the integration page).",
    )
    label = serializers.CharField(read_only=True)

    class Meta:
        model = HealthFactor
        fields = ("id", "name", "label", "order", *FACTOR_FIELDS, "metric")
        read_only_fields = ("id",)

    def validate(self, attrs):
        problems = factor_problems(
            {k: attrs[k] for k in FACTOR_FIELDS if k in attrs}
            | {"metric": getattr(attrs.get("metric"), "pk", None)}
        )
        if problems:
            raise serializers.ValidationError(problems)
        return attrs


class HealthProfileSerializer(serializers.ModelSerializer):
    factors = HealthFactorSerializer(
        many=True,
        required=False,
        help_text="The profile's factors; writing the list replaces them all.",
    )

    class Meta:
        model = HealthProfile
        fields = ("id", *PROFILE_FIELDS, "factors", "created_at", "updated_at")
        read_only_fields = ("id", "created_at", "updated_at")

    def validate(self, attrs):
        current = {}
        if self.instance is not None:
            current = {f: getattr(self.instance, f) for f in self.Meta.fields if f != "factors"}
        merged = current | attrs
        merged.setdefault("is_default", False)
        checked = {k: merged.get(k) for k in PROFILE_CHECKED_FIELDS}
        problems = profile_problems(
            {k: v for k, v in checked.items() if v is not None or k == "min_mrr"}
        )
        if problems:
            raise serializers.ValidationError(problems)
        if "currency" in attrs:
            attrs["currency"] = attrs["currency"].upper()
        return attrs


class HealthScoreSerializer(serializers.ModelSerializer):
    date = serializers.DateField(source="day", help_text="The UTC day scored.")
    company_external_id = serializers.CharField(source="company.external_id", allow_null=True)
    company_name = serializers.CharField(source="company.name")
    profile_name = serializers.CharField(source="profile.name", allow_null=True, default=None)

    class Meta:
        model = HealthScore
        fields = (
            "id",
            "company",
            "company_external_id",
            "company_name",
            "date",
            "score",
            "band",
            "profile",
            "profile_name",
            "breakdown",
            "last_activity_at",
            "active_endusers_30d",
            "activity_change_30d",
            "mrr",
            "mrr_currency",
            "computed_at",
        )
        read_only_fields = fields


class RecomputeRequestSerializer(serializers.Serializer):
    company = serializers.IntegerField(required=False, min_value=1, help_text="A company's id.")
    company_external_id = serializers.CharField(required=False)
    date = serializers.DateField(required=False, help_text="UTC day to score (default today).")


class RecomputeResultSerializer(serializers.Serializer):
    queued = serializers.BooleanField()
    day = serializers.DateField(required=False)
    companies = serializers.IntegerField(required=False)
    scored = serializers.IntegerField(required=False)
    unscored = serializers.IntegerField(required=False)
    bands = serializers.DictField(child=serializers.IntegerField(), required=False)
