"""Health profiles, their factors, and one health score per company per day.

A profile is a list of factors; each factor reads one figure of a company (usage from the
rollups, a company metric, MRR, enduser count) and turns it into an impact in −5…+5 through
a condition. A company's score is 5 + Σ(weight × impact) / Σ(weight) over the factors that
have data: a float with one decimal in 0–10, null when no factor has data. Bands follow the
profile's thresholds (green ≥ 7, amber ≥ 4, red below, by default).
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from integrations.models import MetricDefinition
from planhat_segment.models import Company

IMPACT_MIN = -5.0
IMPACT_MAX = 5.0
impact_validators = [MinValueValidator(IMPACT_MIN), MaxValueValidator(IMPACT_MAX)]


class Band(models.TextChoices):
    GREEN = "green", "Green"
    AMBER = "amber", "Amber"
    RED = "red", "Red"


class Figure(models.TextChoices):
    """What a factor reads. Windows are the N complete UTC days ending yesterday."""

    ACTIVITY_COUNT = "activity_count", "Activity count over the last N days"
    ACTIVE_ENDUSERS = "active_endusers", "Active endusers over the last N days"
    ACTIVITY_CHANGE = "activity_change", "Change in activity vs the previous N days (%)"
    DAYS_SINCE_LAST_ACTIVITY = "days_since_last_activity", "Days since the last activity"
    METRIC_LATEST = "metric_latest", "A company metric's latest value"
    METRIC_CHANGE = "metric_change", "Change of a company metric over the last N days"
    MRR = "mrr", "MRR of active licenses"
    ENDUSER_COUNT = "enduser_count", "Number of endusers"


# Which parameters each figure needs (validation names the missing one).
FIGURES_WITH_WINDOW = {
    Figure.ACTIVITY_COUNT,
    Figure.ACTIVE_ENDUSERS,
    Figure.ACTIVITY_CHANGE,
    Figure.METRIC_CHANGE,
}
FIGURES_WITH_ACTION = {Figure.ACTIVITY_COUNT, Figure.ACTIVITY_CHANGE}
FIGURES_WITH_METRIC = {Figure.METRIC_LATEST, Figure.METRIC_CHANGE}


class Condition(models.TextChoices):
    LT = "lt", "less than"
    GT = "gt", "more than"
    EQ = "eq", "equal to"
    NE = "ne", "not equal to"
    LINEAR = "linear", "linear (clamped at the range's ends)"
    LINEAR_BOUNDED = "linear_bounded", "linear bounded (no impact outside the range)"


FIXED_CONDITIONS = {Condition.LT, Condition.GT, Condition.EQ, Condition.NE}
LINEAR_CONDITIONS = {Condition.LINEAR, Condition.LINEAR_BOUNDED}


def min_mrr_field(*, help_text: str) -> models.DecimalField:
    """The "minimum MRR" filter of profiles and alert rules: an amount, never negative.

    One definition, so a profile's filter and a rule's scope take the same amounts.
    """
    return models.DecimalField(
        "minimum MRR",
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text=help_text,
    )


class HealthProfile(models.Model):
    """Which factors score a company. The first profile (by order) whose filter matches a
    company applies; the default profile applies to every company no other profile takes."""

    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True, default="")
    order = models.PositiveIntegerField(
        default=100, help_text="Profiles are tried in this order (lowest first)."
    )
    is_default = models.BooleanField(
        default=False,
        help_text="The profile for every company that no other profile matches. Exactly one.",
    )
    # Filter (ignored on the default profile). Every filter that is set must match.
    min_mrr = min_mrr_field(
        help_text="Applies to companies whose MRR (active licenses, converted to the "
        "profile's currency) is at least this."
    )
    custom_field = models.CharField(
        max_length=120,
        blank=True,
        default="",
        help_text="Applies to companies whose custom field of this name equals the value.",
    )
    custom_value = models.CharField(max_length=255, blank=True, default="")
    currency = models.CharField(
        max_length=3, default="USD", help_text="Currency of the MRR filter and MRR factors."
    )
    currency_rates = models.JSONField(
        default=dict,
        blank=True,
        help_text='Conversion into the profile\'s currency, e.g. {"EUR": 1.08} '
        "(1 EUR = 1.08 USD). MRR in a currency without a rate is left out of the total.",
    )
    green_min = models.FloatField(
        "green from", default=7.0, help_text="Scores at or above this are green."
    )
    amber_min = models.FloatField(
        "amber from", default=4.0, help_text="Scores at or above this (below green) are amber."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["is_default", "order", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=Q(is_default=True),
                name="health_one_default_profile",
                violation_error_message="There is already a default profile.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def band_for(self, score: float | None) -> str | None:
        """The band of a score under this profile's thresholds (inclusive as written)."""
        if score is None:
            return None
        if score >= self.green_min:
            return Band.GREEN
        if score >= self.amber_min:
            return Band.AMBER
        return Band.RED

    def clean(self) -> None:
        from .validation import PROFILE_CHECKED_FIELDS, profile_problems

        problems = profile_problems({f: getattr(self, f) for f in PROFILE_CHECKED_FIELDS})
        if problems:
            raise ValidationError(problems)
        self.currency = self.currency.upper()


# A profile's own fields, as the API and the profile service take them (factors aside).
PROFILE_FIELDS = (
    "name",
    "description",
    "order",
    "is_default",
    "min_mrr",
    "custom_field",
    "custom_value",
    "currency",
    "currency_rates",
    "green_min",
    "amber_min",
)


class HealthFactor(models.Model):
    """One figure of a company turned into an impact in −5…+5, with a weight."""

    profile = models.ForeignKey(HealthProfile, on_delete=models.CASCADE, related_name="factors")
    name = models.CharField(
        max_length=120, blank=True, default="", help_text="A label; defaults to the figure."
    )
    order = models.PositiveIntegerField(default=0)
    figure = models.CharField(max_length=32, choices=Figure.choices)
    window_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(730)],
        help_text="N, for figures over the last N complete UTC days.",
    )
    action = models.CharField(
        max_length=255,
        blank=True,
        default="",
        help_text="Activity counts and changes: one action only (blank = every action).",
    )
    weighted = models.BooleanField(
        default=False, help_text="Activity count: sum count × weight instead of count."
    )
    metric = models.ForeignKey(
        MetricDefinition,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="health_factors",
        help_text="Metric figures: which company metric.",
    )
    currency = models.CharField(
        max_length=3,
        blank=True,
        default="",
        help_text="MRR: only licenses in this currency; blank = every currency converted "
        "with the profile's rates.",
    )
    condition = models.CharField(max_length=16, choices=Condition.choices)
    threshold = models.FloatField(
        null=True, blank=True, help_text="less than / more than / equal to / not equal to: X."
    )
    impact = models.FloatField(
        null=True,
        blank=True,
        validators=impact_validators,
        help_text="Fixed conditions: the impact when the condition holds (−5…+5).",
    )
    range_min = models.FloatField(null=True, blank=True, help_text="Linear: start of the range.")
    range_max = models.FloatField(null=True, blank=True, help_text="Linear: end of the range.")
    impact_at_min = models.FloatField(
        null=True, blank=True, validators=impact_validators, help_text="Linear: impact at start."
    )
    impact_at_max = models.FloatField(
        null=True, blank=True, validators=impact_validators, help_text="Linear: impact at end."
    )
    weight = models.FloatField(
        default=1.0,
        validators=[MinValueValidator(0.01), MaxValueValidator(1000)],
        help_text="Relative weight among the profile's factors with data.",
    )

    class Meta:
        ordering = ["profile", "order", "id"]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        from .figures import figure_label

        return figure_label(self)

    def clean(self) -> None:
        from .validation import factor_problems

        problems = factor_problems(
            {field: getattr(self, field) for field in FACTOR_FIELDS} | {"metric": self.metric_id}
        )
        if problems:
            raise ValidationError(problems)


FACTOR_FIELDS = (
    "figure",
    "window_days",
    "action",
    "weighted",
    "currency",
    "condition",
    "threshold",
    "impact",
    "range_min",
    "range_max",
    "impact_at_min",
    "impact_at_max",
    "weight",
)


class HealthScore(models.Model):
    """A company's health on one UTC day, with the breakdown that explains it.

    ``breakdown`` holds ``factors`` (per factor: label, figure, value, impact, weight,
    contribution, why), the profile, and a ``note`` when no factor had data. The columns
    next to it are the figures the company list and the warehouse push read.
    """

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="health_scores")
    day = models.DateField(help_text="The UTC day scored (windows end the day before).")
    score = models.FloatField(null=True, blank=True)
    band = models.CharField(max_length=8, choices=Band.choices, null=True, blank=True)
    profile = models.ForeignKey(
        HealthProfile, null=True, blank=True, on_delete=models.SET_NULL, related_name="scores"
    )
    breakdown = models.JSONField(default=dict, blank=True)
    last_activity_at = models.DateTimeField(null=True, blank=True)
    active_endusers_30d = models.IntegerField(default=0)
    activity_change_30d = models.FloatField(null=True, blank=True)
    mrr = models.FloatField("MRR", null=True, blank=True)
    mrr_currency = models.CharField(max_length=3, blank=True, default="")
    computed_at = models.DateTimeField(default=timezone.now)
    # When the pushed traits (score, band, last activity, active endusers, change) last
    # differed from the company's previous row: the incremental push's change mark.
    traits_changed_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-day", "company_id"]
        constraints = [
            models.UniqueConstraint(fields=["company", "day"], name="health_score_company_day")
        ]
        indexes = [models.Index(fields=["day", "band"], name="health_score_day_band")]
        permissions = [("recompute_healthscore", "Can start health score recomputes")]

    def __str__(self) -> str:
        return f"{self.company_id} {self.day}: {self.score if self.score is not None else '—'}"


# Alert rules, alerts, webhooks and deliveries live in their own module (Django finds them here).
from .models_alerts import (  # noqa: E402, F401
    Alert,
    AlertRule,
    Delivery,
    DeliveryAttempt,
    Webhook,
)
