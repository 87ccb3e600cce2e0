"""Reads about the inbox and its outputs, for the admin, the API and the integration page."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count, Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from .models import Activity, DropReason, InboxEvent, InboxStatus, MetricValue


def _since(now: datetime | None) -> datetime:
    return (now or timezone.now()) - timedelta(hours=24)


def inbox_counts_last_24h(*, now: datetime | None = None) -> dict[str, int]:
    """Events received in the last 24 h, and how many of them are in each outcome."""
    return inbox_counts_since(since=_since(now))


def inbox_counts_since(*, since: datetime) -> dict[str, int]:
    """Events received since ``since``, and how many of them are in each outcome (the
    integration page's health line reads the last hour)."""
    counts = InboxEvent.objects.filter(received_at__gte=since).aggregate(
        received=Count("id"),
        processed=Count("id", filter=Q(status=InboxStatus.PROCESSED)),
        waiting=Count("id", filter=Q(status=InboxStatus.WAITING)),
        dropped=Count("id", filter=Q(status=InboxStatus.DROPPED)),
        failed=Count("id", filter=Q(status=InboxStatus.FAILED)),
    )
    return {key: value or 0 for key, value in counts.items()}


def inbox_reason_counts_last_24h(*, now: datetime | None = None) -> dict[str, int]:
    """Dropped events of the last 24 h per reason code (every reason listed, zeros too)."""
    rows = (
        InboxEvent.objects.filter(received_at__gte=_since(now), status=InboxStatus.DROPPED)
        .order_by()
        .values_list("reason")
        .annotate(n=Count("id"))
    )
    counts = dict.fromkeys(DropReason.values, 0)
    counts.update(dict(rows))
    return counts


def metric_value_stats() -> dict[int, dict]:
    """Per metric definition id: how many values, the last value and when (by occurred_at)."""
    last = MetricValue.objects.filter(metric=OuterRef("metric")).order_by("-occurred_at", "-id")
    rows = (
        MetricValue.objects.order_by()
        .values("metric")
        .annotate(
            count=Count("id"),
            last_at=Max("occurred_at"),
            last_value=Subquery(last.values("value")[:1]),
        )
    )
    return {
        r["metric"]: {"count": r["count"], "last_value": r["last_value"], "last_at": r["last_at"]}
        for r in rows
    }


def unassigned_users_list(*, limit: int = 500) -> list[dict]:
    """Users whose events wait for a company or were dropped as unassigned: one row per user
    (by user id, else by email; a user's calls with and without an email are one row), with
    the email seen on any of them, the counts and when they were last seen."""
    rows = (
        InboxEvent.objects.filter(
            Q(status=InboxStatus.WAITING)
            | Q(status=InboxStatus.DROPPED, reason=DropReason.UNASSIGNED_USER)
        )
        .annotate(identity=Coalesce("user_key", "email_key"))
        .exclude(identity__isnull=True)
        .order_by()
        .values("identity")
        .annotate(
            user_key=Max("user_key"),
            email_key=Max("email_key"),
            events=Count("id"),
            waiting=Count("id", filter=Q(status=InboxStatus.WAITING)),
            dropped=Count("id", filter=Q(status=InboxStatus.DROPPED)),
            last_seen=Max("received_at"),
        )
        .order_by("-last_seen")
    )
    return [dict(row) for row in rows[:limit]]


def activity_list() -> QuerySet[Activity]:
    return Activity.objects.select_related("enduser", "company", "asset", "project")


def metric_value_list() -> QuerySet[MetricValue]:
    return MetricValue.objects.select_related("company", "enduser", "asset", "project", "metric")


def inbox_event_list() -> QuerySet[InboxEvent]:
    return InboxEvent.objects.all()
