"""Alert rules, alerts, outgoing webhooks and notification deliveries (with their attempts).

A rule watches every company in its scope for one condition (usage drop, inactivity, few
active endusers, a metric past a threshold, a health band change). Evaluation opens at most
one active alert (open or acknowledged) per rule × company — a partial unique constraint
holds that in the database — and resolves it by itself when the condition clears. Each new
alert is announced by email and webhooks through :class:`Delivery` rows, one per alert ×
target, each with :class:`DeliveryAttempt` rows (in the style of Saleor's webhook delivery).

Imported by ``health.models`` (one line at its end), so Django finds these models there.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from integrations.models import MetricDefinition
from planhat_segment.models import Company

from .models import Band, min_mrr_field


class RuleKind(models.TextChoices):
    USAGE_DROP = "usage_drop", "Usage dropped"
    INACTIVITY = "inactivity", "No activity"
    ACTIVE_ENDUSERS_BELOW = "active_endusers_below", "Active endusers below a threshold"
    METRIC_THRESHOLD = "metric_threshold", "Company metric past a threshold"
    HEALTH_BAND_CHANGE = "health_band_change", "Health band changed"


class Operator(models.TextChoices):
    LT = "lt", "less than"
    GT = "gt", "more than"


# The parameters each kind reads; every other kind parameter must be left empty.
KIND_PARAMETERS: dict[str, tuple[str, ...]] = {
    RuleKind.USAGE_DROP: ("drop_percent", "window_days", "baseline_periods", "action"),
    RuleKind.INACTIVITY: ("days",),
    RuleKind.ACTIVE_ENDUSERS_BELOW: ("threshold", "window_days"),
    RuleKind.METRIC_THRESHOLD: ("metric", "operator", "threshold"),
    RuleKind.HEALTH_BAND_CHANGE: ("to_band",),
}
OPTIONAL_PARAMETERS = {"action"}
ALL_PARAMETERS = (
    "drop_percent",
    "window_days",
    "baseline_periods",
    "action",
    "days",
    "threshold",
    "metric",
    "operator",
    "to_band",
)
# A rule's own fields, as the rule service takes them and the admin form shows them
# (webhooks aside).
RULE_FIELDS = (
    "name",
    "kind",
    "enabled",
    "cooldown_hours",
    "min_mrr",
    *ALL_PARAMETERS,
    "email_recipients",
    "notify_owner",
)


class Webhook(models.Model):
    """An outgoing webhook: a JSON POST signed with ``X-Signature`` (HMAC-SHA256, hex)."""

    name = models.CharField(max_length=120, unique=True)
    url = models.URLField(
        "URL",
        max_length=2000,
        help_text="http(s) only. Private, loopback and link-local addresses are refused "
        "unless the host is listed in WEBHOOK_ALLOWED_HOSTS.",
    )
    # Write-only everywhere (API and admin): it signs the body; never shown back.
    secret = models.CharField(
        max_length=255,
        help_text="Signs each body: X-Signature = hex HMAC-SHA256(secret, raw body).",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from .alerts.validation import webhook_problems

        problems = webhook_problems(
            {"name": self.name, "url": self.url, "secret": self.secret}, creating=not self.pk
        )
        if problems:
            raise ValidationError(problems)


class AlertRule(models.Model):
    """A condition watched for every company in scope, with a cooldown and its recipients."""

    name = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=32, choices=RuleKind.choices)
    enabled = models.BooleanField(default=True)
    cooldown_hours = models.PositiveIntegerField(
        default=24,
        help_text="After an alert of this rule for a company is resolved, no new one opens "
        "for that company for this many hours.",
    )
    # Scope.
    min_mrr = min_mrr_field(
        help_text="Only companies whose MRR (active licenses, in the default health "
        "profile's currency) is at least this. Empty = every company."
    )
    # Routing.
    email_recipients = models.JSONField(
        default=list, blank=True, help_text="Email addresses told of each new alert."
    )
    webhooks = models.ManyToManyField(Webhook, blank=True, related_name="rules")
    notify_owner = models.BooleanField(
        default=False, help_text="Also email the company's owner (its owner email), if set."
    )
    # usage_drop: the last N days vs the average of the M periods of N days before.
    drop_percent = models.FloatField(
        null=True, blank=True, help_text="Usage drop: at least this many percent (1–100)."
    )
    window_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Usage drop: N, the period compared. Active endusers: the window.",
    )
    baseline_periods = models.PositiveIntegerField(
        null=True, blank=True, help_text="Usage drop: M, the periods of N days averaged before."
    )
    action = models.CharField(
        max_length=255, blank=True, default="", help_text="Usage drop: one action only."
    )
    # inactivity
    days = models.PositiveIntegerField(
        null=True, blank=True, help_text="No activity: for this many complete days."
    )
    # active_endusers_below, metric_threshold
    threshold = models.FloatField(
        null=True,
        blank=True,
        help_text="Active endusers: alert below this. Metric: the value compared with.",
    )
    metric = models.ForeignKey(
        MetricDefinition,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="alert_rules",
        help_text="Metric threshold: which company metric (its latest value).",
    )
    operator = models.CharField(
        max_length=2, choices=Operator.choices, blank=True, default="", help_text="Metric."
    )
    # health_band_change
    to_band = models.CharField(
        max_length=8,
        choices=Band.choices,
        blank=True,
        default="",
        help_text="Health band change: alert when a company's band changes to this one.",
    )
    last_evaluated_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_evaluated_day = models.DateField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        permissions = [("evaluate_alertrule", "Can start alert evaluations")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from .alerts.validation import rule_object_problems

        problems = rule_object_problems(self)
        if problems:
            raise ValidationError(problems)


class AlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


ACTIVE_STATUSES = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)


class Resolution(models.TextChoices):
    CONDITION_CLEARED = "condition_cleared", "Condition cleared (automatic)"
    PERSON = "person", "Resolved by a person"
    OUT_OF_SCOPE = "out_of_scope", "Company left the rule's scope (automatic)"
    RULE_DISABLED = "rule_disabled", "Rule disabled"


class Alert(models.Model):
    """One rule's condition met by one company, with the figures that raised it."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="alerts")
    status = models.CharField(
        max_length=16, choices=AlertStatus.choices, default=AlertStatus.OPEN, db_index=True
    )
    opened_at = models.DateTimeField(default=timezone.now, db_index=True)
    day = models.DateField(help_text="The UTC day evaluated (windows end the day before).")
    facts = models.JSONField(default=dict, blank=True, help_text="The figures that raised it.")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    resolution = models.CharField(max_length=20, choices=Resolution.choices, blank=True)
    resolution_note = models.TextField(blank=True, default="")
    resolution_facts = models.JSONField(
        default=dict, blank=True, help_text="Automatic resolution: the figures when it cleared."
    )

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "company"],
                condition=Q(status__in=["open", "acknowledged"]),
                name="health_alert_one_active_per_rule_company",
                violation_error_message="This rule already has an active alert for this company.",
            )
        ]
        indexes = [
            models.Index(fields=["rule", "company", "resolved_at"], name="health_alert_cooldown"),
            models.Index(fields=["company", "status"], name="health_alert_company"),
        ]
        permissions = [
            ("acknowledge_alert", "Can acknowledge alerts"),
            ("resolve_alert", "Can resolve alerts"),
        ]

    def __str__(self) -> str:
        return f"Alert {self.pk}: {self.rule} — {self.company} ({self.get_status_display()})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class Delivery(models.Model):
    """One notification of one alert to one target (an email address or a webhook)."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    email = models.EmailField(max_length=254, blank=True, default="")
    webhook = models.ForeignKey(
        Webhook, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    target = models.CharField(
        max_length=254, help_text="The address, or the webhook's name when it was queued."
    )
    event = models.CharField(max_length=40, default="alert.opened")
    status = models.CharField(
        max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempt_count = models.PositiveIntegerField(default=0)
    # attempt_count when last queued again by hand: NOTIFICATIONS_MAX_ATTEMPTS counts from it.
    attempt_base = models.PositiveIntegerField(default=0, editable=False)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="When the sweeper tries next (null once finished)."
    )
    locked_until = models.DateTimeField(null=True, blank=True, editable=False)
    last_status_code = models.IntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    delivered_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["alert", "event", "email"],
                condition=Q(channel="email"),
                name="health_delivery_one_per_alert_email",
            ),
            models.UniqueConstraint(
                fields=["alert", "event", "webhook"],
                condition=Q(channel="webhook"),
                name="health_delivery_one_per_alert_webhook",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="health_delivery_due"),
        ]
        permissions = [("retry_delivery", "Can retry notification deliveries")]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} to {self.target} ({self.status})"


class AttemptOutcome(models.TextChoices):
    SUCCESS = "success", "Delivered"
    TRANSIENT = "transient", "Transient failure (retried)"
    PERMANENT = "permanent", "Permanent failure"


class DeliveryAttempt(models.Model):
    """One try of a delivery: what came back, how long it took."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    attempted_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.IntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=12, choices=AttemptOutcome.choices)
    error = models.TextField(blank=True, default="")
    response_body = models.TextField(blank=True, default="", help_text="Truncated.")

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="health_attempt_number")
        ]

    def __str__(self) -> str:
        return f"Attempt {self.number} of delivery {self.delivery_id}: {self.outcome}"
