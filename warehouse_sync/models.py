"""Sync runs of the push to Segment, their per-model results, and objects that failed.

One run at a time (DESIGN.md §4.3): a partial unique constraint allows a single row with
status ``running``, so two triggers racing to insert one cannot both win, on PostgreSQL and
SQLite alike; ``lease_expires_at`` is renewed by the live worker and lets a dead run lapse.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

# Kept per model row, so the admin can see why without reading logs.
MAX_ERROR_MESSAGES = 20


class SyncTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    MANUAL = "manual", "Manual (Push data to Segment)"
    COMMAND = "command", "Command"


class SyncStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    PARTIAL = "partial", "Partial (some objects failed)"
    FAILED = "failed", "Failed"


COMPLETED_STATUSES = (SyncStatus.SUCCEEDED, SyncStatus.PARTIAL)


class SyncRun(models.Model):
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration = models.DurationField(null=True, blank=True)
    trigger = models.CharField(max_length=16, choices=SyncTrigger.choices)
    status = models.CharField(
        max_length=16, choices=SyncStatus.choices, default=SyncStatus.RUNNING, db_index=True
    )
    full = models.BooleanField(default=False, help_text="Everything, not only changes.")
    synced_models = models.JSONField(default=list, help_text="Models this run pushes.")
    error = models.TextField(blank=True, default="", help_text="Why the run stopped.")
    # The lease: the running worker pushes it forward; once it passes, the run is dead.
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    objects_synced = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    # What the run sends, per model (``services/resume.py``): its change mark, and when it
    # resumes a run that died, where that one got to. Written when the worker takes it over.
    scope = models.JSONField(default=dict, blank=True, editable=False)
    # Per model and kind (object / tombstone): the largest pk up to which every object the
    # run selected has been accounted (sent or recorded as failed). The next run resumes
    # after it when this one dies. Written with the progress after every batch.
    checkpoint = models.JSONField(default=dict, blank=True, editable=False)

    class Meta:
        ordering = ["-started_at", "-id"]
        get_latest_by = "started_at"
        constraints = [
            models.UniqueConstraint(
                fields=["status"],
                condition=Q(status="running"),
                name="warehouse_sync_single_running_run",
                violation_error_message="A push to Segment is already running.",
            )
        ]

    def __str__(self) -> str:
        return f"Sync run {self.pk} ({self.status}, {self.started_at:%Y-%m-%d %H:%M})"


class SyncModelResult(models.Model):
    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="results")
    model = models.CharField(max_length=32)
    objects_synced = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    error_messages = models.JSONField(
        default=list, blank=True, help_text=f"The first {MAX_ERROR_MESSAGES} error messages."
    )

    class Meta:
        ordering = ["run", "id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "model"], name="warehouse_sync_result_unique")
        ]

    def __str__(self) -> str:
        return f"{self.model}: {self.objects_synced} synced, {self.errors} errors"


class SyncBatch(models.Model):
    """One request to Segment's batch endpoint (Saleor-style delivery bookkeeping).

    urllib3 retries inside one delivery; ``attempts`` and ``attempt_log`` say what happened.
    """

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="batches")
    sequence = models.PositiveIntegerField()
    messages = models.PositiveIntegerField()
    body_bytes = models.PositiveIntegerField(help_text="Uncompressed JSON size.")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=1)
    attempt_log = models.JSONField(default=list, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    ok = models.BooleanField(default=False)
    error = models.TextField(blank=True, default="")
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "sequence"]
        verbose_name_plural = "sync batches"

    def __str__(self) -> str:
        return f"batch {self.sequence} of run {self.run_id}: {self.status_code}"


class FailedObjectKind(models.TextChoices):
    OBJECT = "object", "Object"
    TOMBSTONE = "tombstone", "Deletion (tombstone)"


class FailedObject(models.Model):
    """An object whose last push failed; the next runs resend it until it succeeds."""

    model = models.CharField(max_length=32)
    kind = models.CharField(
        max_length=16, choices=FailedObjectKind.choices, default=FailedObjectKind.OBJECT
    )
    # The object's pk, or the tombstone's pk for kind=tombstone.
    object_pk = models.BigIntegerField()
    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="failed_objects")
    error = models.TextField()
    failed_at = models.DateTimeField(
        default=timezone.now,
        help_text="When it first failed (run and error are the latest failure's); it is "
        "retried for WAREHOUSE_FAILED_OBJECT_RETENTION_DAYS from then.",
    )

    class Meta:
        ordering = ["model", "object_pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "kind", "object_pk"], name="warehouse_sync_failed_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.model} {self.kind} {self.object_pk}: {self.error[:60]}"
