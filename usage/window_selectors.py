"""Reads over the daily rollups for alert rules: a window against the periods before it, and
each company's first day with activity. Set-based, like ``rollup_selectors``: one query for
a whole set of companies, never one per company. Days are UTC days; windows are complete
days ending yesterday (``rollup_selectors.window_days``).
"""

from __future__ import annotations

import datetime as dt

from django.db.models import DateField, OuterRef, Q, Subquery, Sum

from planhat_segment.models import Company

from .models import CompanyActionDay
from .rollup_selectors import CompanyIds, scoped, utc_today, window_days


def period_bounds(
    *, days: int, periods: int, today: dt.date | None = None
) -> list[tuple[dt.date, dt.date]]:
    """(first, last) of the current window (index 0) and of ``periods`` earlier windows of
    the same length, newest first, back to back."""
    first, last = window_days(days=days, today=today)
    span = dt.timedelta(days=days)
    return [(first - span * k, last - span * k) for k in range(periods + 1)]


def activity_period_totals(
    *,
    company_ids: CompanyIds = None,
    days: int,
    periods: int,
    action: str | None = None,
    today: dt.date | None = None,
) -> dict[int, list[int]]:
    """Activities per company in the last ``days`` complete days (index 0) and in each of the
    ``periods`` windows of ``days`` before it (index 1 = the window just before).

    One query (a filtered SUM per period). Companies without activity in any of the periods
    are absent (all zeros).
    """
    bounds = period_bounds(days=days, periods=periods, today=today)
    qs = scoped(CompanyActionDay.objects.all(), company_ids).filter(
        day__gte=bounds[-1][0], day__lte=bounds[0][1]
    )
    if action:
        qs = qs.filter(action=action)
    sums = {
        f"p{k}": Sum("count", filter=Q(day__gte=first, day__lte=last))
        for k, (first, last) in enumerate(bounds)
    }
    rows = qs.order_by().values("company_id").annotate(**sums)
    return {row["company_id"]: [int(row[f"p{k}"] or 0) for k in range(len(bounds))] for row in rows}


def first_activity_days(*, company_ids: CompanyIds = None) -> dict[int, dt.date]:
    """Each company's first UTC day with activity in the rollups (absent: none ever).

    One query: a correlated ``ORDER BY day LIMIT 1`` per company that the rollup's
    (company, day, action) unique index answers from its start, not a scan of every row.
    """
    first = (
        CompanyActionDay.objects.filter(company=OuterRef("pk")).order_by("day").values("day")[:1]
    )
    rows = (
        scoped(Company.objects.all(), company_ids, field="pk")
        .order_by()
        .annotate(first=Subquery(first, output_field=DateField()))
        .filter(first__isnull=False)
        .values_list("pk", "first")
    )
    return dict(rows)


def last_activity_days_before(
    *, company_ids: CompanyIds = None, today: dt.date | None = None
) -> dict[int, dt.date]:
    """Each company's last UTC day with activity before ``today`` (absent: none).

    The same answer as ``rollup_selectors.last_activity_days``, by another plan: a correlated
    ``ORDER BY day DESC LIMIT 1`` per company that the unique index answers from its end,
    instead of a ``GROUP BY`` over every rollup row — for the many-company alert pass.
    """
    today = today or utc_today()
    last = (
        CompanyActionDay.objects.filter(company=OuterRef("pk"), day__lt=today)
        .order_by("-day")
        .values("day")[:1]
    )
    rows = (
        scoped(Company.objects.all(), company_ids, field="pk")
        .order_by()
        .annotate(last=Subquery(last, output_field=DateField()))
        .filter(last__isnull=False)
        .values_list("pk", "last")
    )
    return dict(rows)


__all__ = [
    "activity_period_totals",
    "first_activity_days",
    "last_activity_days_before",
    "period_bounds",
    "utc_today",
]
