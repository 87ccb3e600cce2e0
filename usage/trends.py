"""Trends & Analytics: aggregates for a company's and an enduser's charts.

Every figure is aggregated in the database (GROUP BY day / week), so a year of data for a
company with a thousand endusers costs a handful of queries returning a few hundred rows.
Test data (``is_test`` companies and endusers) is left out.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Max, Sum
from django.db.models.functions import TruncDate, TruncWeek
from django.utils import timezone

from integrations.models import MetricDefinition
from planhat_segment.models import Asset, Company, EndUser, Project

from .models import Activity, MetricValue

RANGES = (30, 90, 365)
TOP_ACTIONS = 5


@dataclass(frozen=True)
class Series:
    label: str
    points: list[tuple[str, float]]  # (ISO date, value)


@dataclass
class CompanyTrends:
    days: int
    labels: list[str]  # every day in the range, ISO dates
    metric_series: list[Series] = field(default_factory=list)
    action_series: list[Series] = field(default_factory=list)  # per day, stacked
    active_per_day: list[Series] = field(default_factory=list)
    active_per_week: list[Series] = field(default_factory=list)
    top_endusers: list[dict] = field(default_factory=list)
    total_activities: int = 0


def _day_labels(since: dt.date, until: dt.date) -> list[str]:
    count = (until - since).days + 1
    return [(since + dt.timedelta(days=i)).isoformat() for i in range(count)]


def _window(days: int) -> tuple[dt.datetime, dt.date, dt.date]:
    until = timezone.now().date()
    since = until - dt.timedelta(days=days - 1)
    start = dt.datetime.combine(since, dt.time.min, tzinfo=dt.UTC)
    return start, since, until


def company_trends(*, company: Company, days: int = 30) -> CompanyTrends:
    """Metric series (last value per day), activity per day by top action, active endusers."""
    days = days if days in RANGES else RANGES[0]
    start, since, until = _window(days)
    trends = CompanyTrends(days=days, labels=_day_labels(since, until))
    if company.is_test:
        return trends

    activities = Activity.objects.filter(
        company=company, occurred_at__gte=start, enduser__is_test=False
    )
    trends.metric_series = _metric_series(
        values=MetricValue.objects.filter(company=company), start=start
    )

    per_action = list(
        activities.values("action").annotate(total=Sum("count")).order_by("-total", "action")
    )
    trends.total_activities = sum(row["total"] for row in per_action)
    top = [row["action"] for row in per_action[:TOP_ACTIONS]]
    by_day_action: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row in activities.values("action", day=TruncDate("occurred_at")).annotate(
        total=Sum("count")
    ):
        key = row["action"] if row["action"] in top else "Other"
        by_day_action[key][row["day"].isoformat()] += row["total"]
    order = top + (["Other"] if "Other" in by_day_action else [])
    trends.action_series = [
        Series(action, sorted(by_day_action[action].items())) for action in order
    ]

    per_day = activities.values(day=TruncDate("occurred_at")).annotate(
        users=Count("enduser", distinct=True)
    )
    trends.active_per_day = [
        Series("Active endusers", sorted((r["day"].isoformat(), r["users"]) for r in per_day))
    ]
    per_week = activities.values(week=TruncWeek("occurred_at")).annotate(
        users=Count("enduser", distinct=True)
    )
    trends.active_per_week = [
        Series(
            "Active endusers (week)",
            sorted((_as_date(r["week"]).isoformat(), r["users"]) for r in per_week),
        )
    ]
    trends.top_endusers = list(
        activities.values("enduser_id", "enduser__name", "enduser__email", "enduser__external_id")
        .annotate(total=Sum("count"), last=Max("occurred_at"))
        .order_by("-total")[:10]
    )
    return trends


def _as_date(value) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def _metric_series(*, values, start: dt.datetime) -> list[Series]:
    """The last value of each metric per day: two grouped queries, no per-day work in SQL.

    ``values``: the MetricValue rows of one object (company, enduser, asset or project).
    """
    values = values.filter(occurred_at__gte=start)
    last_per_day = values.values("metric_id", day=TruncDate("occurred_at")).annotate(
        last_at=Max("occurred_at")
    )
    last_at = {(row["metric_id"], row["day"].isoformat()): row["last_at"] for row in last_per_day}
    if not last_at:
        return []
    points: dict[int, dict[str, float]] = defaultdict(dict)
    rows = (
        values.filter(occurred_at__in=set(last_at.values()))
        .order_by("occurred_at", "id")  # ties at one instant: the highest id wins
        .values_list("metric_id", "occurred_at", "value")
    )
    for metric_id, occurred_at, value in rows:
        day = occurred_at.date().isoformat()
        if last_at.get((metric_id, day)) == occurred_at:
            points[metric_id][day] = value
    keys = {metric_id for metric_id, _ in last_at}
    labels = dict(MetricDefinition.objects.filter(pk__in=keys).values_list("pk", "label"))
    return [
        Series(labels.get(metric_id, str(metric_id)), sorted(day_values.items()))
        for metric_id, day_values in sorted(points.items(), key=lambda kv: labels.get(kv[0], ""))
    ]


@dataclass
class EndUserTrends:
    days: int
    labels: list[str]
    per_day: list[Series]
    recent: list[Activity]
    metric_series: list[Series] = field(default_factory=list)
    latest_metrics: list[dict] = field(default_factory=list)


@dataclass
class ObjectMetrics:
    """Metric values of one enduser, asset or project (from dimension data)."""

    days: int
    labels: list[str]
    metric_series: list[Series]
    latest: list[dict]  # per metric: key, label, value, at, count


def _latest(values) -> list[dict]:
    """Per metric its last value, when, and how many values: one grouped query, one fetch."""
    summary = {
        row["metric_id"]: row
        for row in values.values("metric_id").annotate(last_at=Max("occurred_at"), n=Count("id"))
    }
    if not summary:
        return []
    last = {
        metric_id: value  # ties at one instant: the highest id wins
        for metric_id, at, value in values.filter(
            occurred_at__in={row["last_at"] for row in summary.values()}
        )
        .order_by("occurred_at", "id")
        .values_list("metric_id", "occurred_at", "value")
        if at == summary[metric_id]["last_at"]
    }
    metrics = MetricDefinition.objects.filter(pk__in=summary).values_list("pk", "key", "label")
    return [
        {
            "key": key,
            "label": label,
            "value": last.get(pk),
            "at": summary[pk]["last_at"],
            "count": summary[pk]["n"],
        }
        for pk, key, label in sorted(metrics, key=lambda m: m[1])
    ]


def object_metrics(*, obj: EndUser | Asset | Project, days: int = 30) -> ObjectMetrics:
    """Metric series (last value per day) and the latest value per metric of one object."""
    days = days if days in RANGES else RANGES[0]
    start, since, until = _window(days)
    field_name = {EndUser: "enduser", Asset: "asset", Project: "project"}[type(obj)]
    values = MetricValue.objects.filter(**{field_name: obj})
    return ObjectMetrics(
        days=days,
        labels=_day_labels(since, until),
        metric_series=_metric_series(values=values, start=start),
        latest=_latest(values),
    )


def enduser_trends(*, enduser: EndUser, days: int = 30) -> EndUserTrends:
    days = days if days in RANGES else RANGES[0]
    start, since, until = _window(days)
    activities = Activity.objects.filter(enduser=enduser, occurred_at__gte=start)
    per_day = activities.values(day=TruncDate("occurred_at")).annotate(total=Sum("count"))
    recent = list(
        Activity.objects.filter(enduser=enduser)
        .select_related("asset", "project")
        .defer("properties")
        .order_by("-occurred_at")[:25]
    )
    metrics = object_metrics(obj=enduser, days=days)
    return EndUserTrends(
        days=days,
        labels=_day_labels(since, until),
        per_day=[Series("Activities", sorted((r["day"].isoformat(), r["total"]) for r in per_day))],
        recent=recent,
        metric_series=metrics.metric_series,
        latest_metrics=metrics.latest,
    )
