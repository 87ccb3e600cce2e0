"""Reads over the daily usage rollups, set-based: one query per figure for many companies.

Every figure here is computed for a whole set of companies at once (``company_ids``: a list,
a queryset of ids, or ``None`` for every company) and returned as ``{company_id: value}``;
none runs a query per company. Health scores, the company list and the Trends pages read
usage through these functions, never by scanning activities.

Days are UTC days. "The last N days" are the N complete UTC days ending yesterday: today's
partial day never counts (``window_days``). The rollups are written by processing in the
claim's transaction, so they never count test data (``is_test``) nor an event twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from django.db import connection
from django.db.models import (
    Count,
    DateTimeField,
    F,
    FloatField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import TruncMonth, TruncWeek
from django.utils import timezone

from planhat_segment.models import Company, EndUser

from .models import Activity, CompanyActionDay, EnduserDay, MetricValue

# None (every company), a range of pks, a queryset of ids, or any iterable of ids.
CompanyIds = Iterable[int] | QuerySet | None
Period = Literal["day", "week", "month"]
UTC = dt.UTC


def utc_today() -> dt.date:
    """Today as a UTC day, whatever time zone is active for display."""
    return timezone.now().astimezone(UTC).date()


def day_start(day: dt.date) -> dt.datetime:
    """The first instant of a UTC day."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=UTC)


def window_days(*, days: int, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """(first, last) day of the N complete UTC days ending yesterday."""
    if days < 1:
        raise ValueError("A window needs at least one day.")
    last = (today or utc_today()) - dt.timedelta(days=1)
    return last - dt.timedelta(days=days - 1), last


def scoped(qs: QuerySet, company_ids: CompanyIds, field: str = "company_id") -> QuerySet:
    """``qs`` limited to some companies: ``None`` (all), a ``range`` of pks (a range
    condition, which the (company, …) indexes serve as one range scan), a queryset of ids or
    any iterable of ids."""
    if company_ids is None:
        return qs
    if isinstance(company_ids, range) and company_ids.step == 1:
        return qs.filter(**{f"{field}__gte": company_ids.start, f"{field}__lt": company_ids.stop})
    if not isinstance(company_ids, QuerySet):
        company_ids = list(company_ids)
    return qs.filter(**{f"{field}__in": company_ids})


def _rows(qs: QuerySet, days: int, today: dt.date | None, action: str | None) -> QuerySet:
    first, last = window_days(days=days, today=today)
    qs = qs.filter(day__gte=first, day__lte=last)
    return qs.filter(action=action) if action else qs


# --- Activity counts -------------------------------------------------------------------------


def activity_counts(
    *,
    company_ids: CompanyIds = None,
    days: int,
    action: str | None = None,
    weighted: bool = False,
    today: dt.date | None = None,
) -> dict[int, float]:
    """Activities per company over the last ``days`` complete days (one action, or all).

    ``weighted`` sums count × weight instead of count. Companies without activity in the
    window are absent (their count is 0). One query.
    """
    column = "weighted_count" if weighted else "count"
    rows = (
        _rows(scoped(CompanyActionDay.objects.all(), company_ids), days, today, action)
        .order_by()
        .values_list("company_id")
        .annotate(total=Sum(column))
    )
    return {company_id: (float(total) if weighted else int(total)) for company_id, total in rows}


@dataclass(frozen=True)
class ActivityChange:
    """Activity in the last N complete days and in the N days before, and the change in %."""

    current: int
    previous: int

    @property
    def percent(self) -> float | None:
        """(current − previous) / previous × 100; None when the previous period had nothing."""
        if not self.previous:
            return None
        return (self.current - self.previous) * 100.0 / self.previous


def activity_changes(
    *,
    company_ids: CompanyIds = None,
    days: int,
    action: str | None = None,
    today: dt.date | None = None,
) -> dict[int, ActivityChange]:
    """Per company: activity in the last ``days`` complete days vs the ``days`` before.

    Companies with no activity in either period are absent (their change is None). One query.
    """
    first, last = window_days(days=days, today=today)
    previous_first = first - dt.timedelta(days=days)
    qs = scoped(CompanyActionDay.objects.all(), company_ids).filter(
        day__gte=previous_first, day__lte=last
    )
    if action:
        qs = qs.filter(action=action)
    rows = (
        qs.order_by()
        .values_list("company_id")
        .annotate(
            current=Sum("count", filter=Q(day__gte=first)),
            previous=Sum("count", filter=Q(day__lt=first)),
        )
    )
    return {
        company_id: ActivityChange(int(current or 0), int(previous or 0))
        for company_id, current, previous in rows
    }


def activity_change_percents(
    *,
    company_ids: CompanyIds = None,
    days: int,
    action: str | None = None,
    today: dt.date | None = None,
) -> dict[int, float | None]:
    """Change in % of the last ``days`` vs the ``days`` before (−80.0 = down 80 %).

    None when the previous period had no activity; companies absent from the answer had no
    activity in either period (None too).
    """
    changes = activity_changes(company_ids=company_ids, days=days, action=action, today=today)
    return {company_id: change.percent for company_id, change in changes.items()}


# --- Endusers ---------------------------------------------------------------------------------


def active_enduser_counts(
    *, company_ids: CompanyIds = None, days: int, today: dt.date | None = None
) -> dict[int, int]:
    """Distinct endusers with activity in the last ``days`` complete days, per company.

    Exact (``COUNT(DISTINCT enduser)`` over the window's enduser-day rows), not a sum of
    daily counts. Companies without active endusers are absent (0). One query.
    """
    rows = (
        _rows(scoped(EnduserDay.objects.all(), company_ids), days, today, None)
        .order_by()
        .values_list("company_id")
        .annotate(users=Count("enduser_id", distinct=True))
    )
    return dict(rows)


def enduser_counts(*, company_ids: CompanyIds = None) -> dict[int, int]:
    """Endusers per company (test endusers left out). Companies without any are absent."""
    rows = (
        scoped(EndUser.objects.filter(is_test=False), company_ids)
        .order_by()
        .values_list("company_id")
        .annotate(n=Count("id"))
    )
    return dict(rows)


# --- Last activity ----------------------------------------------------------------------------


def last_activity_days(
    *, company_ids: CompanyIds = None, today: dt.date | None = None
) -> dict[int, dt.date]:
    """The last UTC day before ``today`` with activity, per company (absent: none ever)."""
    today = today or utc_today()
    rows = (
        scoped(CompanyActionDay.objects.filter(day__lt=today), company_ids)
        .order_by()
        .values_list("company_id")
        .annotate(last=Max("day"))
    )
    return dict(rows)


def days_since_last_activity(
    *, company_ids: CompanyIds = None, today: dt.date | None = None
) -> dict[int, int]:
    """Whole UTC days from the last day with activity to ``today`` (yesterday = 1).

    Only complete days count, as in every window; companies never active are absent.
    """
    today = today or utc_today()
    last = last_activity_days(company_ids=company_ids, today=today)
    return {company_id: (today - day).days for company_id, day in last.items()}


def last_activity_times(
    *, company_ids: CompanyIds = None, until: dt.datetime | None = None
) -> dict[int, dt.datetime]:
    """The time of each company's latest activity (before ``until``), from the activities.

    One query: a correlated ``MAX`` per company that the (company, occurred_at) index answers
    from its end, so the cost is one index probe per company, not a scan of the activities.
    Test endusers' activities are left out; companies never active are absent.
    """
    latest = Activity.objects.filter(company=OuterRef("pk"), enduser__is_test=False)
    if until is not None:
        latest = latest.filter(occurred_at__lt=until)
    latest = latest.order_by("-occurred_at").values("occurred_at")[:1]
    rows = (
        scoped(Company.objects.filter(is_test=False), company_ids, field="pk")
        .order_by()
        .annotate(last=Subquery(latest, output_field=DateTimeField()))
        .filter(last__isnull=False)
        .values_list("pk", "last")
    )
    return dict(rows)


# --- Company metrics --------------------------------------------------------------------------


def metric_latest_values(
    *, company_ids: CompanyIds = None, metric_id: int, before: dt.datetime | None = None
) -> dict[int, float]:
    """Each company's latest value of one metric (strictly before ``before`` when given).

    One query: a correlated subquery per company answered by the (company, metric,
    occurred_at) index from its end. Companies without a value are absent.
    """
    latest = MetricValue.objects.filter(company=OuterRef("pk"), metric_id=metric_id)
    if before is not None:
        latest = latest.filter(occurred_at__lt=before)
    latest = latest.order_by("-occurred_at", "-id").values("value")[:1]
    rows = (
        scoped(Company.objects.all(), company_ids, field="pk")
        .order_by()
        .annotate(value=Subquery(latest, output_field=FloatField()))
        .filter(value__isnull=False)
        .values_list("pk", "value")
    )
    return dict(rows)


def metric_changes(
    *,
    company_ids: CompanyIds = None,
    metric_id: int,
    days: int,
    today: dt.date | None = None,
) -> dict[int, float]:
    """Change of a metric over the last ``days`` complete days, per company.

    The latest value before today minus the latest value before the window began (an
    absolute difference, in the metric's own unit). Companies lacking either value are
    absent. Two queries.
    """
    first, _ = window_days(days=days, today=today)
    end = day_start(today or utc_today())
    now_values = metric_latest_values(company_ids=company_ids, metric_id=metric_id, before=end)
    then_values = metric_latest_values(
        company_ids=list(now_values), metric_id=metric_id, before=day_start(first)
    )
    return {pk: now_values[pk] - then for pk, then in then_values.items()}


# --- Series for one company or enduser ---------------------------------------------------------

_TRUNC = {"week": TruncWeek, "month": TruncMonth}


def _period_key(period: Period):
    # Rollup days are DateFields, already UTC days: truncating a date needs no time zone
    # (Django refuses tzinfo on a DateField), so a display time zone can never move a week.
    return F("day") if period == "day" else _TRUNC[period]("day")


def _as_date(value) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def _check_period(period: str) -> None:
    if period not in ("day", "week", "month"):
        raise ValueError(f"Unknown period {period!r}: use day, week or month.")


def company_activity_series(
    *,
    company_id: int,
    first: dt.date,
    last: dt.date,
    period: Period = "day",
    action: str | None = None,
) -> list[tuple[dt.date, int, float]]:
    """(period start, count, weighted count) for one company, oldest first; empty periods
    are absent. Weeks start on Monday; months on the 1st."""
    _check_period(period)
    qs = CompanyActionDay.objects.filter(company_id=company_id, day__gte=first, day__lte=last)
    if action:
        qs = qs.filter(action=action)
    rows = (
        qs.order_by()
        .values(key=_period_key(period))
        .annotate(total=Sum("count"), weighted=Sum("weighted_count"))
        .order_by("key")
        .values_list("key", "total", "weighted")
    )
    return [(_as_date(key), int(total), float(weighted)) for key, total, weighted in rows]


def company_action_day_rows(
    *, company_id: int, first: dt.date, last: dt.date
) -> list[tuple[dt.date, str, int]]:
    """(day, action, count) rows of one company in a range, for per-action charts."""
    return list(
        CompanyActionDay.objects.filter(company_id=company_id, day__gte=first, day__lte=last)
        .order_by("day", "action")
        .values_list("day", "action", "count")
    )


def company_active_enduser_series(
    *, company_id: int, first: dt.date, last: dt.date, period: Period = "day"
) -> list[tuple[dt.date, int]]:
    """(period start, distinct active endusers) for one company, oldest first.

    Weekly and monthly figures are exact distinct counts over the period's enduser-day rows
    (an enduser active on three days of a week counts once), never sums of daily counts.
    """
    _check_period(period)
    qs = EnduserDay.objects.filter(company_id=company_id, day__gte=first, day__lte=last)
    if period == "day":
        # One row per (company, enduser, day): a day's row count is its distinct endusers.
        rows = qs.order_by().values_list("day").annotate(users=Count("id")).order_by("day")
    else:
        rows = (
            qs.order_by()
            .values(key=_period_key(period))
            .annotate(users=Count("enduser_id", distinct=True))
            .order_by("key")
            .values_list("key", "users")
        )
    return [(_as_date(key), int(users)) for key, users in rows]


def company_top_endusers(
    *, company_id: int, first: dt.date, last: dt.date, limit: int = 10
) -> list[dict]:
    """The most active endusers of a company in a range, most active first: ``enduser_id``,
    ``name``, ``email``, ``external_id``, ``total`` (activities) and ``last_day``.

    Two queries: aggregate the rollup rows, then read only the winners' names (joining the
    enduser table before aggregating would join every row of the range).
    """
    top = list(
        EnduserDay.objects.filter(company_id=company_id, day__gte=first, day__lte=last)
        .order_by()
        .values_list("enduser_id")
        .annotate(total=Sum("count"), last_day=Max("day"))
        .order_by("-total", "enduser_id")[:limit]
    )
    return _with_people([(enduser_id, int(total), last_day) for enduser_id, total, last_day in top])


@dataclass(frozen=True)
class EnduserActivity:
    """One company's enduser activity over a range: distinct active endusers per period
    (exact) and the most active endusers."""

    per_period: list[tuple[dt.date, int]]
    top: list[dict]


# At most two statements over the range's enduser-day rows, each into small results
# (measured on the bench's 289,000-row year: a per-month COUNT(DISTINCT) sorted every row,
# spilling to disk, 225 ms; this is one hash aggregate into ~1,000 groups):
# - per day: the day's row count is its distinct endusers; an index-only scan of the
#   (company, day, enduser) key, aggregated in index order (no hash, no sort);
# - per enduser (~ the company's endusers, a small hash): activities, last day, and a bitmask
#   of the periods (weeks or months) the enduser was active in. Distinct endusers per week
#   or month are then exact sums of the masks' bits, and the top endusers come from the
#   same rows.
_ACTIVE_PER_DAY_SQL = """
SELECT day, count(*) FROM usage_enduserday
WHERE company_id = %(company)s AND day >= %(first)s AND day <= %(last)s
GROUP BY day ORDER BY day
"""
_ENDUSERS_SQL = """
WITH u AS (
    SELECT enduser_id, sum(count) AS total, max(day) AS last_day,
           bit_or(1::bigint << (%(period_of_day)s::int[])[day - %(first)s::date + 1]) AS periods
    FROM usage_enduserday
    WHERE company_id = %(company)s AND day >= %(first)s AND day <= %(last)s
    GROUP BY enduser_id
)
(SELECT enduser_id, total, last_day, NULL::bigint[] FROM u
 ORDER BY total DESC, enduser_id LIMIT %(limit)s)
UNION ALL
SELECT NULL, NULL, NULL, ARRAY[{period_sums}]::bigint[] FROM u
"""
# A day's period, counted from the range's first period (0, 1, …), is looked up in an
# array the query gets, one entry a day of the range: computing months in SQL per row
# (``extract`` returns numeric) cost twice the rest of the aggregate.
MAX_MASK_PERIODS = 63


def _period_starts(first: dt.date, last: dt.date, period: Period) -> list[dt.date]:
    """The starts of the weeks (Mondays) or months (1sts) the range touches, oldest first."""
    if period == "week":
        monday = first - dt.timedelta(days=first.weekday())
        return [monday + dt.timedelta(weeks=w) for w in range((last - monday).days // 7 + 1)]
    starts, month = [], first.replace(day=1)
    while month <= last:
        starts.append(month)
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return starts


def _period_of_day(first: dt.date, last: dt.date, starts: list[dt.date]) -> list[int]:
    """For each day of the range, the index of the period (in ``starts``) it falls in."""
    indexes, current = [], 0
    for offset in range((last - first).days + 1):
        day = first + dt.timedelta(days=offset)
        while current + 1 < len(starts) and starts[current + 1] <= day:
            current += 1
        indexes.append(current)
    return indexes


def company_enduser_activity(
    *, company_id: int, first: dt.date, last: dt.date, period: Period = "day", limit: int = 10
) -> EnduserActivity:
    """Distinct active endusers per day, week or month (exact) and the top endusers of one
    company, in one pass over the rows.

    PostgreSQL: one statement per figure at most (ranges up to 63 weeks or months).
    Elsewhere, and for longer ranges: the plain selectors.
    """
    _check_period(period)
    starts = [first] if period == "day" else _period_starts(first, last, period)
    if connection.vendor != "postgresql" or len(starts) > MAX_MASK_PERIODS:
        return EnduserActivity(
            per_period=company_active_enduser_series(
                company_id=company_id, first=first, last=last, period=period
            ),
            top=company_top_endusers(company_id=company_id, first=first, last=last, limit=limit),
        )
    params = {
        "company": company_id,
        "first": first,
        "last": last,
        "period_of_day": _period_of_day(first, last, starts),
        "limit": limit,
    }
    # Period indexes are small ints from this function, never input: safe to inline.
    period_sums = ", ".join(f"coalesce(sum((periods >> {i}) & 1), 0)" for i in range(len(starts)))
    sql = _ENDUSERS_SQL.format(period_sums=period_sums)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        if period == "day":
            cursor.execute(_ACTIVE_PER_DAY_SQL, params)
            per_period = [(day, int(users)) for day, users in cursor.fetchall()]
        else:
            counts = next(counts for e, _, _, counts in rows if e is None)
            per_period = [(start, int(n)) for start, n in zip(starts, counts, strict=True) if n]
    ranked = [(e, int(total), last_day) for e, total, last_day, _ in rows if e is not None]
    return EnduserActivity(per_period=per_period, top=_with_people(ranked))


def _with_people(ranked: list[tuple[int, int, dt.date]]) -> list[dict]:
    people = EndUser.objects.in_bulk([enduser_id for enduser_id, _, _ in ranked])
    result = []
    for enduser_id, total, last_day in ranked:
        person = people.get(enduser_id)
        result.append(
            {
                "enduser_id": enduser_id,
                "name": person.display_name if person else f"enduser {enduser_id}",
                "email": person.email if person else None,
                "external_id": person.external_id if person else None,
                "total": total,
                "last_day": last_day,
            }
        )
    return result


def enduser_activity_series(
    *, enduser_id: int, first: dt.date, last: dt.date, period: Period = "day"
) -> list[tuple[dt.date, int]]:
    """(period start, activities) of one enduser (under any company), oldest first."""
    _check_period(period)
    rows = (
        EnduserDay.objects.filter(enduser_id=enduser_id, day__gte=first, day__lte=last)
        .order_by()
        .values(key=_period_key(period))
        .annotate(total=Sum("count"))
        .order_by("key")
        .values_list("key", "total")
    )
    return [(_as_date(key), int(total)) for key, total in rows]


def enduser_active_days(*, enduser_id: int, first: dt.date, last: dt.date) -> int:
    """Days on which one enduser was active in a range."""
    return (
        EnduserDay.objects.filter(enduser_id=enduser_id, day__gte=first, day__lte=last)
        .values("day")
        .distinct()
        .count()
    )
