"""Trends & Analytics: aggregates for a company's and an enduser's charts, from the rollups.

Every activity figure is read from the daily rollups (``usage.rollup_selectors``), never by
scanning activities, so a page costs the same whether a company logged 300,000 activities or
3 million: what it reads grows with days × actions and days × active endusers only.
Days are UTC days (a display time zone never moves a day boundary); today's bar is the
partial day so far. Test data (``is_test``) is not in the rollups, and test companies show
nothing.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Max
from django.db.models.functions import TruncDate

from integrations.models import MetricDefinition
from planhat_segment.models import Company, EndUser

from . import rollup_selectors as rollups
from .models import Activity, MetricValue

RANGES = (30, 90, 365)
TOP_ACTIONS = 5
UTC = dt.UTC


@dataclass(frozen=True)
class Series:
    label: str
    points: list[tuple[str, float]]  # (ISO date, value)


@dataclass
class CompanyTrends:
    days: int
    labels: list[str]  # every day in the range, ISO dates (UTC days)
    metric_series: list[Series] = field(default_factory=list)
    action_series: list[Series] = field(default_factory=list)  # per day, stacked
    active_per_day: list[Series] = field(default_factory=list)
    active_per_week: list[Series] = field(default_factory=list)
    top_endusers: list[dict] = field(default_factory=list)
    total_activities: int = 0


def _day_labels(since: dt.date, until: dt.date) -> list[str]:
    count = (until - since).days + 1
    return [(since + dt.timedelta(days=i)).isoformat() for i in range(count)]


def _range(days: int, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The chart's days: the last ``days`` UTC days, today (partial) included."""
    until = today or rollups.utc_today()
    return until - dt.timedelta(days=days - 1), until


def company_trends(
    *, company: Company, days: int = 30, today: dt.date | None = None
) -> CompanyTrends:
    """Metric series (last value per day), activity per day by top action, active endusers
    per day and per week (exact distinct counts), the most active endusers."""
    days = days if days in RANGES else RANGES[0]
    since, until = _range(days, today)
    trends = CompanyTrends(days=days, labels=_day_labels(since, until))
    if company.is_test:
        return trends
    trends.metric_series = _metric_series(company=company, since=since)

    # One read of the (day, action) rows serves both the totals and the stacked series.
    rows = rollups.company_action_day_rows(company_id=company.pk, first=since, last=until)
    per_action: dict[str, int] = defaultdict(int)
    for _, action, count in rows:
        per_action[action] += count
    trends.total_activities = sum(per_action.values())
    top = [a for a, _ in sorted(per_action.items(), key=lambda kv: (-kv[1], kv[0]))][:TOP_ACTIONS]
    by_day_action: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for day, action, count in rows:
        key = action if action in top else "Other"
        by_day_action[key][day.isoformat()] += count
    order = top + (["Other"] if "Other" in by_day_action else [])
    trends.action_series = [
        Series(action, sorted(by_day_action[action].items())) for action in order
    ]

    endusers = rollups.company_enduser_activity(company_id=company.pk, first=since, last=until)
    trends.active_per_day = [
        Series("Active endusers", [(day.isoformat(), users) for day, users in endusers.per_day])
    ]
    trends.active_per_week = [
        Series(
            "Active endusers (week)",
            [(week.isoformat(), users) for week, users in endusers.per_week],
        )
    ]
    trends.top_endusers = endusers.top
    return trends


def _metric_series(*, company: Company, since: dt.date) -> list[Series]:
    """The last value of each metric per UTC day."""
    values = MetricValue.objects.filter(company=company, occurred_at__gte=rollups.day_start(since))
    day = TruncDate("occurred_at", tzinfo=UTC)
    points: dict[int, dict[str, float]] = defaultdict(dict)
    if connection.vendor == "postgresql":
        # One pass: DISTINCT ON keeps the latest row of each (metric, day).
        rows = (
            values.annotate(day=day)
            .order_by("metric_id", "day", "-occurred_at", "-id")
            .distinct("metric_id", "day")
            .values_list("metric_id", "day", "value")
        )
        for metric_id, when, value in rows:
            points[metric_id][when.isoformat()] = value
    else:
        last_per_day = values.values("metric_id", day=day).annotate(last_at=Max("occurred_at"))
        last_at = {(r["metric_id"], r["day"].isoformat()): r["last_at"] for r in last_per_day}
        rows = (
            values.filter(occurred_at__in=set(last_at.values()))
            .order_by("occurred_at", "id")  # ties at one instant: the highest id wins
            .values_list("metric_id", "occurred_at", "value")
        )
        for metric_id, occurred_at, value in rows:
            key = occurred_at.astimezone(UTC).date().isoformat()
            if last_at.get((metric_id, key)) == occurred_at:
                points[metric_id][key] = value
    if not points:
        return []
    labels = dict(MetricDefinition.objects.filter(pk__in=points).values_list("pk", "label"))
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


def enduser_trends(
    *, enduser: EndUser, days: int = 30, today: dt.date | None = None
) -> EndUserTrends:
    days = days if days in RANGES else RANGES[0]
    since, until = _range(days, today)
    per_day = rollups.enduser_activity_series(enduser_id=enduser.pk, first=since, last=until)
    recent = list(
        Activity.objects.filter(enduser=enduser)
        .select_related("asset", "project")
        .defer("properties")
        .order_by("-occurred_at")[:25]
    )
    return EndUserTrends(
        days=days,
        labels=_day_labels(since, until),
        per_day=[Series("Activities", [(day.isoformat(), total) for day, total in per_day])],
        recent=recent,
    )
