"""The durable inbox of Segment events, and what processing makes of them.

The inbox is the source of truth (DESIGN.md §3): a request stores raw events here and
answers; workers claim rows and turn them into activities and company metric values.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from integrations.models import MetricDefinition
from planhat_segment.models import Asset, Company, EndUser, Project


class InboxStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    PROCESSED = "processed", "Processed"
    WAITING = "waiting", "Waiting for its user or company"
    DROPPED = "dropped", "Dropped"
    FAILED = "failed", "Failed"


class DropReason(models.TextChoices):
    """One enum for every reason an event is not turned into data (DESIGN.md §4.2)."""

    INVALID_MESSAGE = "invalid_message", "Invalid message"
    NO_IDENTITY = "no_identity", "No user id or email"
    UNKNOWN_ENDUSER = "unknown_enduser", "Unknown enduser (auto-create is off)"
    UNASSIGNED_USER = "unassigned_user", "User without a known company"
    UNKNOWN_COMPANY = "unknown_company", "Unknown company"
    SECTION_DISABLED = "section_disabled", "Section switched off"
    UNSUPPORTED_CALL = "unsupported_call", "Unsupported call"


class InboxEvent(models.Model):
    """One raw Segment message as received (``writeKey`` stripped)."""

    message_id = models.CharField(max_length=100, unique=True)
    request_id = models.UUIDField(db_index=True)
    type = models.CharField(max_length=16)
    payload = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Parsed from timestamp / originalTimestamp, else received_at: processing order.
    occurred_at = models.DateTimeField(null=True, blank=True)

    status = models.CharField(
        max_length=16, choices=InboxStatus.choices, default=InboxStatus.PENDING
    )
    reason = models.CharField(max_length=32, choices=DropReason.choices, blank=True, default="")
    detail = models.TextField(blank=True, default="", help_text="Error or note, for people.")
    attempts = models.PositiveSmallIntegerField(default=0)
    # Claim lease: a row in PROCESSING whose lease lapsed is claimable again.
    claimed_until = models.DateTimeField(null=True, blank=True)
    # Which claim holds the row: a worker writes outcomes only to rows still carrying its own
    # claim id, so a row re-claimed after a lapsed lease is never finished twice.
    claim_id = models.UUIDField(null=True, blank=True, db_index=True, editable=False)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    # Identity keys, extracted at processing time so waiting rows can be re-matched in bulk.
    user_key = models.CharField(max_length=255, null=True, blank=True, db_index=True)
    email_key = models.CharField(max_length=254, null=True, blank=True, db_index=True)
    company_key = models.CharField(max_length=255, null=True, blank=True, db_index=True)
    wait_until = models.DateTimeField(null=True, blank=True)
    enduser = models.ForeignKey(
        EndUser, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "event"
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["status", "received_at"], name="inbox_status_received"),
            models.Index(fields=["status", "reason"], name="inbox_status_reason"),
            models.Index(fields=["status", "wait_until"], name="inbox_status_wait"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.message_id}"


class Activity(models.Model):
    """Usage: one track / page / screen call bound to an enduser (never edits the enduser)."""

    enduser = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="activities")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="activities")
    asset = models.ForeignKey(
        Asset, null=True, blank=True, on_delete=models.SET_NULL, related_name="activities"
    )
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="activities"
    )
    action = models.CharField(max_length=255)
    count = models.PositiveIntegerField(default=1)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    properties = models.JSONField(default=dict, blank=True)
    message_id = models.CharField(max_length=100, unique=True)

    class Meta:
        verbose_name_plural = "activities"
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["company", "occurred_at"], name="activity_company_time"),
            models.Index(fields=["enduser", "occurred_at"], name="activity_enduser_time"),
        ]

    def __str__(self) -> str:
        return f"{self.action} ×{self.count}"


class MetricValue(models.Model):
    """One value of a company metric at a time (from a group call's numeric trait)."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="metric_values")
    metric = models.ForeignKey(MetricDefinition, on_delete=models.CASCADE, related_name="values")
    value = models.FloatField()
    occurred_at = models.DateTimeField()
    message_id = models.CharField(max_length=100)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["message_id", "metric"], name="metric_value_once")
        ]
        indexes = [
            models.Index(fields=["company", "metric", "occurred_at"], name="metric_company_time")
        ]

    def __str__(self) -> str:
        return f"{self.metric_id}={self.value}"
