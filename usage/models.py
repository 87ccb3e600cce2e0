"""The durable inbox of Segment events, and what processing makes of them.

The inbox is the source of truth (DESIGN.md §3): a request stores raw events here and
answers; workers claim rows and turn them into activities and company metric values.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
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
    # Dimension data for an enduser, asset or project whose external id is not known.
    UNKNOWN_OBJECT = "unknown_object", "Unknown enduser, asset or project"
    SECTION_DISABLED = "section_disabled", "Section switched off"
    UNSUPPORTED_CALL = "unsupported_call", "Unsupported call"


# Conditions of the inbox's partial indexes (plain strings, so migrations stay literal).
PENDING = Q(status="pending")
PROCESSING = Q(status="processing")
WAITING = Q(status="waiting")
UNBOUND = Q(status__in=["waiting", "dropped"])
UNFINISHED = Q(status__in=["processing", "waiting", "dropped", "failed"])


class InboxEvent(models.Model):
    """One raw Segment message as received (``writeKey`` stripped)."""

    # Unique through ``Meta.constraints`` (ingest's ON CONFLICT target): ``unique=True`` on a
    # CharField adds a second, ``varchar_pattern_ops`` index on PostgreSQL that nothing uses.
    message_id = models.CharField(max_length=100)
    request_id = models.UUIDField()
    type = models.CharField(max_length=16)
    payload = models.JSONField()
    # Indexed: the event log's order (-received_at), date filters, 24 h counts, purge.
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Parsed from timestamp / originalTimestamp, else received_at: processing order.
    occurred_at = models.DateTimeField(null=True, blank=True)

    # db_default too: ingest's raw INSERT leaves these columns to the database.
    status = models.CharField(
        max_length=16,
        choices=InboxStatus.choices,
        default=InboxStatus.PENDING,
        db_default=InboxStatus.PENDING,
    )
    reason = models.CharField(
        max_length=32, choices=DropReason.choices, blank=True, default="", db_default=""
    )
    detail = models.TextField(
        blank=True, default="", db_default="", help_text="Error or note, for people."
    )
    attempts = models.PositiveSmallIntegerField(default=0, db_default=0)
    # Claim lease: a row in PROCESSING whose lease lapsed is claimable again.
    claimed_until = models.DateTimeField(null=True, blank=True)
    # Which claim holds the row: a worker writes outcomes only to rows still carrying its own
    # claim id, so a row re-claimed after a lapsed lease is never finished twice.
    # (SQLite only: on PostgreSQL a claim is row locks held by the processing transaction.)
    claim_id = models.UUIDField(null=True, blank=True, editable=False)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    # Identity keys, extracted at processing time so waiting rows can be re-matched in bulk.
    user_key = models.CharField(max_length=255, null=True, blank=True)
    email_key = models.CharField(max_length=254, null=True, blank=True)
    company_key = models.CharField(max_length=255, null=True, blank=True)
    wait_until = models.DateTimeField(null=True, blank=True)
    # Indexed: deleting an enduser sets this to NULL by enduser id (Django's collector does
    # that, not the database). No database constraint: it would cost a deferred check per
    # processed row at every claim's commit, for a column the event log only displays.
    enduser = models.ForeignKey(
        EndUser,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )

    class Meta:
        verbose_name = "event"
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["message_id"], name="inbox_message_id_unique")
        ]
        # Every write of a row touches every index whose condition the row meets, and each row
        # is written at least twice (stored, then its outcome): the indexes are few, and
        # partial on the statuses whose queries need them, so a processed row (the bulk of
        # the table) sits only in the primary key, message id, received at and enduser ones.
        indexes = [
            # Claims (window in arrival order, the rest of its requests) and the stale check.
            models.Index(fields=["received_at", "id"], condition=PENDING, name="inbox_pending"),
            models.Index(fields=["request_id"], condition=PENDING, name="inbox_pending_request"),
            # Event log filters and counts of the rarer statuses, sweeper (failed, lapsed).
            models.Index(fields=["status", "reason"], condition=UNFINISHED, name="inbox_open"),
            # Expiry of waiting rows; re-matching and the unassigned-users report by identity.
            models.Index(fields=["wait_until"], condition=WAITING, name="inbox_wait_until"),
            models.Index(fields=["user_key"], condition=UNBOUND, name="inbox_unbound_user"),
            models.Index(fields=["email_key"], condition=UNBOUND, name="inbox_unbound_email"),
            models.Index(fields=["company_key"], condition=UNBOUND, name="inbox_unbound_company"),
            # SQLite claims (a conditional UPDATE lease); unused on PostgreSQL.
            models.Index(fields=["claim_id"], condition=PROCESSING, name="inbox_claim"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.message_id}"


class Activity(models.Model):
    """Usage: one track / page / screen call bound to an enduser (never edits the enduser)."""

    # Every index is written once per activity processing inserts, so each one earns its
    # place: the enduser's and company's are the composite (…, occurred_at) ones below
    # (which also serve deletes' cascades), the asset's and project's hold only the rows
    # that name one, and the message id has its unique constraint and nothing else.
    enduser = models.ForeignKey(
        EndUser, on_delete=models.CASCADE, related_name="activities", db_index=False
    )
    company = models.ForeignKey(
        Company, on_delete=models.CASCADE, related_name="activities", db_index=False
    )
    asset = models.ForeignKey(
        Asset,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="activities",
        db_index=False,
    )
    project = models.ForeignKey(
        Project,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="activities",
        db_index=False,
    )
    action = models.CharField(max_length=255)
    count = models.PositiveIntegerField(default=1)
    # Planhat's activity weight (its open analytics API); Segment calls keep the default 1.
    # db_default too, so raw INSERTs that do not name the column get it from the database.
    weight = models.FloatField(default=1.0, db_default=1.0)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    properties = models.JSONField(default=dict, blank=True)
    # A constraint rather than unique=True: that also adds a LIKE index on PostgreSQL.
    message_id = models.CharField(max_length=100)

    class Meta:
        verbose_name_plural = "activities"
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["message_id"], name="activity_message_id_unique")
        ]
        indexes = [
            models.Index(fields=["company", "occurred_at"], name="activity_company_time"),
            models.Index(fields=["enduser", "occurred_at"], name="activity_enduser_time"),
            models.Index(fields=["asset"], condition=Q(asset__isnull=False), name="activity_asset"),
            models.Index(
                fields=["project"], condition=Q(project__isnull=False), name="activity_project"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} ×{self.count}"


class MetricValue(models.Model):
    """One value of a metric at a time, for exactly one company, enduser, asset or project.

    Company values come from group calls' numeric traits (section 2) and from dimension
    data; enduser, asset and project values from dimension data (Planhat's ``model``).
    """

    company = models.ForeignKey(
        Company, null=True, blank=True, on_delete=models.CASCADE, related_name="metric_values"
    )
    enduser = models.ForeignKey(
        EndUser, null=True, blank=True, on_delete=models.CASCADE, related_name="metric_values"
    )
    asset = models.ForeignKey(
        Asset, null=True, blank=True, on_delete=models.CASCADE, related_name="metric_values"
    )
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="metric_values"
    )
    metric = models.ForeignKey(MetricDefinition, on_delete=models.CASCADE, related_name="values")
    value = models.FloatField()
    occurred_at = models.DateTimeField()
    message_id = models.CharField(max_length=100)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["message_id", "metric"], name="metric_value_once"),
            models.CheckConstraint(
                condition=(
                    Q(company__isnull=False, enduser=None, asset=None, project=None)
                    | Q(company=None, enduser__isnull=False, asset=None, project=None)
                    | Q(company=None, enduser=None, asset__isnull=False, project=None)
                    | Q(company=None, enduser=None, asset=None, project__isnull=False)
                ),
                name="metric_value_one_object",
            ),
        ]
        indexes = [
            models.Index(fields=["company", "metric", "occurred_at"], name="metric_company_time"),
            # Partial: most values are companies'; the other indexes hold only their own rows.
            models.Index(
                fields=["enduser", "metric", "occurred_at"],
                condition=Q(enduser__isnull=False),
                name="metric_enduser_time",
            ),
            models.Index(
                fields=["asset", "metric", "occurred_at"],
                condition=Q(asset__isnull=False),
                name="metric_asset_time",
            ),
            models.Index(
                fields=["project", "metric", "occurred_at"],
                condition=Q(project__isnull=False),
                name="metric_project_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.metric_id}={self.value}"

    @property
    def target(self):
        """The object the value belongs to."""
        return self.company or self.enduser or self.asset or self.project


# Daily rollups of activities (issue 10). Days are UTC days. They are keyed on the company
# stored on each activity, so an enduser who moves company leaves history where it happened;
# activities of test endusers / companies (``is_test``) are never counted. Processing adds to
# them in the claim's transaction only what it really inserted; ``rebuild_rollups`` recounts.


class CompanyActionDay(models.Model):
    """Activities of one company on one UTC day for one action: count and weighted count."""

    # No database constraint (deleting still cascades, through Django's collector): a row is
    # only ever written in the transaction that inserts the activities it counts, whose own
    # foreign keys check the same company and enduser at commit; a second deferred check
    # per rollup row was the rollups' largest cost in processing (README, "Daily rollups").
    # No index of its own either: the unique key starts with it.
    company = models.ForeignKey(
        Company, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    day = models.DateField()
    action = models.CharField(max_length=255)
    count = models.BigIntegerField(default=0)
    # Σ count × weight over the day's activities of this action.
    weighted_count = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "day", "action"], name="company_action_day_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.company_id} {self.day} {self.action} ×{self.count}"


class EnduserDay(models.Model):
    """Activities of one enduser under one company on one UTC day.

    One row per (company, enduser, day) keeps distinct active endusers exact over any range
    (``COUNT(DISTINCT enduser)`` over the range's rows), not sums of daily distinct counts.
    """

    # No database constraints, and no single-column indexes: the unique key starts with the
    # company, the (enduser, day) index with the enduser (see CompanyActionDay.company).
    company = models.ForeignKey(
        Company, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    enduser = models.ForeignKey(
        EndUser, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    day = models.DateField()
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            # In this column order the key also serves windowed reads of one company
            # (Trends, health figures): a range scan of its days instead of every
            # enduser-day it ever had, distinct endusers read from the index alone. One
            # index for both, so processing writes one fewer per row. ``count`` is left out
            # so its increments stay HOT updates.
            models.UniqueConstraint(
                fields=["company", "day", "enduser"], name="enduser_day_company_day_unique"
            )
        ]
        indexes = [models.Index(fields=["enduser", "day"], name="enduser_day_enduser")]

    def __str__(self) -> str:
        return f"{self.enduser_id}@{self.company_id} {self.day} ×{self.count}"


class RejectedCallCount(models.Model):
    """How many messages the endpoint refused at the door (``invalid_message``: never stored,
    so never events), per reason and UTC hour: the event log's answer to "why did my event not
    arrive?" for calls that did not make it in. Counts only: no payload is kept."""

    hour = models.DateTimeField()
    reason = models.CharField(max_length=64)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hour", "reason"], name="rejected_call_hour_reason")
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.reason} ×{self.count}"
