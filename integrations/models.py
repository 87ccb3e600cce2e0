"""The Segment integration's settings: one row per deployment, plus metric definitions."""

from __future__ import annotations

import re
from functools import cache
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

METRIC_KEY_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
# Events of unknown users wait at most this long (30 days): past that, a typo (100000 h is
# 11 years) would keep rows waiting forever.
MAX_UNASSIGNED_WAIT_HOURS = 720


def validate_metric_key(value: str) -> None:
    if not value:
        raise ValidationError("A metric key is required.")
    if not METRIC_KEY_RE.match(value):
        raise ValidationError(
            f"'{value}' is not a valid metric key: use the Segment trait name exactly, with "
            "letters, digits, '_', '-' or '.' and no spaces (e.g. active_users)."
        )


class Region(models.TextChoices):
    US = "us", "US (api.segment.io)"
    EU = "eu", "EU (events.eu1.segmentapis.com)"
    CUSTOM = "custom", "Custom base URL"


REGION_HOSTS = {
    Region.US: "https://api.segment.io",
    Region.EU: "https://events.eu1.segmentapis.com",
}

DEFAULT_SYNCED_MODELS = ["company", "enduser", "license", "asset", "project"]


def default_synced_models() -> list[str]:
    return list(DEFAULT_SYNCED_MODELS)


class IntegrationSettings(models.Model):
    """Obtain it with ``integrations.services.integration_ensure()``; there is only one."""

    # Section 1: user tracking (identify / track / page / screen).
    user_tracking_enabled = models.BooleanField("User tracking", default=True)
    create_endusers = models.BooleanField("Create endusers automatically", default=True)
    match_by_email_domain = models.BooleanField("Match companies by email domain", default=True)
    unassigned_wait_hours = models.PositiveIntegerField(
        "Hold events of unknown users for (hours)",
        default=24,
        validators=[
            MinValueValidator(1, "Hold events for at least 1 hour."),
            MaxValueValidator(
                MAX_UNASSIGNED_WAIT_HOURS,
                f"Hold events for at most {MAX_UNASSIGNED_WAIT_HOURS} hours (30 days).",
            ),
        ],
        help_text="Events of a user with no known company wait this long to be matched "
        f"(1 to {MAX_UNASSIGNED_WAIT_HOURS} hours).",
    )
    # Section 2: company metrics (group).
    company_metrics_enabled = models.BooleanField("Company metrics", default=True)
    # Section 3: Segment data warehouse (push).
    warehouse_enabled = models.BooleanField("Segment data warehouse", default=False)
    write_key = models.CharField(max_length=255, blank=True, default="")
    region = models.CharField(max_length=16, choices=Region.choices, default=Region.US)
    custom_base_url = models.URLField(blank=True, default="")
    # blank=True: clean() says in words that at least one model is needed (Django's own
    # "This field cannot be blank." named no field a person could find).
    synced_models = models.JSONField(default=default_synced_models, blank=True)

    # Authentication of what Segment sends.
    tenant_token = models.CharField(max_length=128, unique=True)
    previous_token = models.CharField(max_length=128, blank=True, default="")
    previous_token_valid_until = models.DateTimeField(null=True, blank=True)
    token_rotated_at = models.DateTimeField(null=True, blank=True)
    # The browser key: analytics.js's write key. Public by nature (every visitor's browser
    # holds it), so it is accepted only for /v1 identify / track / page / screen and the
    # analytics.js settings GET (usage.ingest.browser), never for group, /dock or Planhat's
    # endpoints. Rotated like the tenant token, with the same grace period.
    browser_key = models.CharField(max_length=128, blank=True, default="")
    previous_browser_key = models.CharField(max_length=128, blank=True, default="")
    previous_browser_key_valid_until = models.DateTimeField(null=True, blank=True)
    browser_key_rotated_at = models.DateTimeField(null=True, blank=True)
    shared_secret = models.CharField(
        max_length=255,
        blank=True,
        default="",
        help_text="Optional: when set, /dock/segment requires a valid X-Signature.",
    )

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Segment integration"
        verbose_name_plural = "Segment integration"
        constraints = [
            models.CheckConstraint(condition=models.Q(pk=1), name="integration_settings_singleton")
        ]

    def __str__(self) -> str:
        return "Segment integration"

    @property
    def is_on(self) -> bool:
        """Planhat's badge: the integration shows ON only while the warehouse push is on."""
        return self.warehouse_enabled

    @property
    def status_reason(self) -> str:
        if self.warehouse_enabled:
            if not self.write_key:
                return "ON, but no write key is set: pushes to Segment will fail until one is."
            return "ON: the Segment data warehouse section is enabled."
        return (
            "OFF: the Segment data warehouse section is disabled (user tracking and company "
            "metrics still receive data when their sections are on)."
        )

    @property
    def segment_base_url(self) -> str:
        if self.region == Region.CUSTOM:
            return self.custom_base_url.rstrip("/")
        return REGION_HOSTS[Region(self.region)]

    def clean(self) -> None:
        from planhat_segment.models import SYNCABLE_MODELS

        errors: dict[str, str] = {}
        if self.region == Region.CUSTOM and not self.custom_base_url:
            errors["custom_base_url"] = (
                "A custom region needs a base URL (e.g. https://proxy.example.com)."
            )
        elif self.custom_base_url and urlsplit(self.custom_base_url).scheme not in (
            "http",
            "https",
        ):
            # URLField accepts ftp:// too; the push would then fail with InvalidSchema.
            errors["custom_base_url"] = (
                "The custom base URL must start with https:// (or http://), e.g. "
                "https://proxy.example.com."
            )
        unknown = [m for m in (self.synced_models or []) if m not in SYNCABLE_MODELS]
        if not isinstance(self.synced_models, list) or unknown:
            errors["synced_models"] = (
                f"Unknown model(s) {unknown}; choose from {sorted(SYNCABLE_MODELS)}."
            )
        elif not self.synced_models:
            errors["synced_models"] = (
                "Tick at least one model to push to Segment (e.g. Company and Enduser)."
            )
        if self.warehouse_enabled and not self.write_key:
            errors["write_key"] = (
                "Enter the Segment source's write key to enable the warehouse push."
            )
        if errors:
            raise ValidationError(errors)


class MetricSource(models.TextChoices):
    """Where a metric's values come from (one metric list, each metric showing its source)."""

    # Section 2's rule: a group trait becomes values only when an admin defined its key.
    SEGMENT = "segment", "Segment group traits (predefined)"
    # Planhat's rule: any dimensionId posted to /dimensiondata creates its metric.
    DIMENSION_DATA = "dimension_data", "Dimension data (created on first value)"


class MetricDefinition(models.Model):
    """A metric: a numeric group trait (company) or a dimension id (any object's values).

    Health factors and alert rules refer to a definition with ``on_delete=PROTECT``: deleting
    one in use is refused (``integrations.services.metric_definition_delete``).
    """

    key = models.CharField(
        max_length=128,
        unique=True,
        validators=[validate_metric_key],
        help_text="The Segment trait name, exactly (no spaces), e.g. active_users.",
    )
    label = models.CharField(max_length=255, blank=True, default="")
    description = models.TextField(blank=True, default="")
    source = models.CharField(
        max_length=16,
        choices=MetricSource.choices,
        default=MetricSource.SEGMENT,
        db_default=MetricSource.SEGMENT,
        help_text="Segment group traits are recorded only for defined keys; dimension data "
        "creates its metric on the first value.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # "Remove" archives: hidden from the integration page and ignored by processing for new
    # values, its recorded values kept (restorable). Deleting the values is a separate step.
    archived_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.label or self.key

    def validate_unique(self, exclude=None) -> None:
        try:
            super().validate_unique(exclude)
        except ValidationError as exc:
            errors = exc.update_error_dict({})
            if "key" in errors:
                other = MetricDefinition.objects.filter(key=self.key).exclude(pk=self.pk).first()
                archived = other is not None and other.archived_at is not None
                errors["key"] = [
                    f"A metric with the key '{self.key}' already exists"
                    + (" (archived): restore it instead." if archived else ".")
                ]
            raise ValidationError(errors) from None

    def save(self, *args, **kwargs) -> None:
        self.key = self.key.strip()
        if not self.label:
            self.label = self.key.replace("_", " ").capitalize()
        super().save(*args, **kwargs)


def validate_time_zone(value: str) -> None:
    if value not in available_time_zones():
        raise ValidationError(
            f"'{value}' is not a time zone name; pick one from the list (e.g. Europe/Paris)."
        )


@cache
def available_time_zones() -> list[str]:
    """IANA zone names, sorted, UTC first."""
    return [
        "UTC",
        *sorted(
            z for z in available_timezones() if z != "UTC" and "/" in z and not z.startswith("Etc/")
        ),
    ]


class UserPreference(models.Model):
    """A person's display preferences in the admin. Display only: charts, rollups, scores and
    alerts keep UTC days whatever zone a person reads them in."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preference"
    )
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user_id}: {self.time_zone}"
