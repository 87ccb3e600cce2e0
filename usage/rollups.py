"""Daily usage rollups: kept up to date by processing, rebuilt from activities on demand.

Two tables (``usage.models``): ``CompanyActionDay`` (company × UTC day × action: count,
weighted count = Σ count × weight) and ``EnduserDay`` (company × enduser × UTC day: count),
from which distinct active endusers over any range are exact. Both are keyed on the company
stored on each activity, and leave out activities of test endusers and companies
(``is_test``).

- :func:`rollups_add`: processing, in the claim's transaction, adds what it really inserted
  (a re-delivered event inserts no activity, so it never counts twice), aggregated per
  claim and upserted in key order, so concurrent workers never deadlock.
- :func:`rollups_rebuild`: recounts whole days from activities (``rebuild_rollups``),
  idempotent, a chunk of days per transaction.
- :func:`rollups_backfill`: the upgrade path; after ``migrate``, a database that holds
  activities but no rollups is back-filled without anyone running the command.
- Deleting a company deletes its rollups (cascade); deleting an enduser deletes its
  ``EnduserDay`` rows (cascade) and :func:`rollups_enduser_forget` takes its activities
  out of its company's ``CompanyActionDay`` rows, so the rollups still equal a recount.

Processing and a rebuild never work on the same day at once: on PostgreSQL each takes a
transaction-scoped advisory lock per day (processing shared, so workers never wait for one
another; the rebuild exclusive), always in ascending day order. On SQLite every write
transaction already holds the database's single writer lock (``IMMEDIATE``), which
serialises them just the same.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection, transaction
from django.db.models import F, FloatField, Max, Min, QuerySet, Sum, Value
from django.db.models.functions import TruncDate

from planhat_segment.models import Company, EndUser

from .bulk import column, quote, rows_insert, table
from .models import Activity, CompanyActionDay, EnduserDay

logger = logging.getLogger(__name__)

# Advisory lock space of the rollups (two-key form: this, then the day's ordinal).
_LOCK_SPACE = 0x524F4C4C  # "ROLL"


def _days_lock(days: Iterable[date], *, exclusive: bool) -> None:
    """Lock the days for this transaction, in ascending order (PostgreSQL; see above)."""
    if connection.vendor != "postgresql":
        return  # SQLite: the IMMEDIATE transaction's writer lock serialises already
    ordinals = sorted({d.toordinal() for d in days})
    if not ordinals:
        return
    lock = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count({lock}(%s, d)) FROM (SELECT unnest(%s::int[]) AS d ORDER BY d) s",  # noqa: S608
            [_LOCK_SPACE, ordinals],
        )


def utc_day(moment: datetime) -> date:
    """The UTC day of a moment: the rollups' day, whatever time zone is active."""
    return moment.astimezone(UTC).date()


def _test_data_ids() -> tuple[set[int], set[int]]:
    """Ids of the test endusers and test companies (the few ``is_test`` rows, read through
    partial indexes): one small read per claim instead of a probe per rollup row."""
    users = EndUser.objects.filter(is_test=True).order_by().values_list("pk", Value(True))
    companies = Company.objects.filter(is_test=True).order_by().values_list("pk", Value(False))
    test_users, test_companies = set(), set()
    for pk, is_user in users.union(companies, all=True):
        (test_users if is_user else test_companies).add(pk)
    return test_users, test_companies


def rollups_add(*, activities: Iterable[tuple[int, int, datetime, str, int, float]]) -> None:
    """Add newly inserted activities to the daily rollups (call in the inserting transaction).

    ``activities``: (enduser id, company id, occurred at, action, count, weight) of the
    activities really inserted — never of one that was already stored. Test endusers and
    companies are left out. Aggregated per key here and upserted in key order, one
    statement per table, so two workers touching overlapping keys lock them in the same
    order and never deadlock.
    """
    activities = list(activities)
    if not activities:
        return
    test_users, test_companies = _test_data_ids()
    rows = [
        (e, c, utc_day(at), a, n, w)
        for e, c, at, a, n, w in activities
        if e not in test_users and c not in test_companies
    ]
    if not rows:
        return
    users: dict[tuple, int] = defaultdict(int)
    actions: dict[tuple, list] = defaultdict(lambda: [0, 0.0])
    for enduser, company, day, action, count, weight in rows:
        users[company, enduser, day] += count
        sums = actions[company, day, action]
        sums[0] += count
        sums[1] += count * weight
    _days_lock({day for _, _, day in users}, exclusive=False)
    rows_insert(
        EnduserDay,
        ("company", "enduser", "day", "count"),
        [(*key, n) for key, n in sorted(users.items())],
        conflict=("company", "enduser", "day"),
        increment=("count",),
    )
    rows_insert(
        CompanyActionDay,
        ("company", "day", "action", "count", "weighted_count"),
        [(*key, n, w) for key, (n, w) in sorted(actions.items())],
        conflict=("company", "day", "action"),
        increment=("count", "weighted_count"),
    )


def _counted(activities: QuerySet) -> QuerySet:
    """Activities the rollups count (no test data), with their UTC ``day``."""
    return (
        activities.filter(enduser__is_test=False, company__is_test=False)
        .annotate(day=TruncDate("occurred_at", tzinfo=UTC))
        .order_by()
    )


def _per_action(counted):
    return counted.values("company_id", "day", "action").annotate(
        n=Sum("count"), w=Sum(F("count") * F("weight"), output_field=FloatField())
    )


def rollups_enduser_forget(*, enduser_id: int) -> int:
    """Take an enduser's activities out of the company rollups (it is being deleted).

    Its ``EnduserDay`` rows go by cascade; its share of each ``CompanyActionDay`` row is
    subtracted here, in key order, and rows left at zero are removed. Returns the company
    rows changed. Call before the activities are deleted (``usage.receivers``).
    """
    shares = sorted(
        _per_action(_counted(Activity.objects.filter(enduser_id=enduser_id))).values_list(
            "company_id", "day", "action", "n", "w"
        )
    )
    if not shares:
        return 0
    _days_lock((day for _, day, _, _, _ in shares), exclusive=False)
    rows_insert(
        CompanyActionDay,
        ("company", "day", "action", "count", "weighted_count"),
        [(company, day, action, -n, -w) for company, day, action, n, w in shares],
        conflict=("company", "day", "action"),
        increment=("count", "weighted_count"),
    )
    CompanyActionDay.objects.filter(
        company_id__in={s[0] for s in shares}, day__in={s[1] for s in shares}, count__lte=0
    ).delete()
    return len(shares)


# --- rebuild -------------------------------------------------------------------------------


@dataclass
class RebuildSummary:
    first_day: date | None = None
    last_day: date | None = None
    days: int = 0
    chunks: int = 0
    company_action_days: int = 0
    enduser_days: int = 0

    def __str__(self) -> str:
        if self.first_day is None:
            return "Nothing to rebuild: no activities and no rollups."
        return (
            f"Rebuilt rollups for {self.days} UTC days ({self.first_day} to {self.last_day}) "
            f"in {self.chunks} chunks: {self.company_action_days} company-action-day rows, "
            f"{self.enduser_days} enduser-day rows."
        )


def _day_range(since: date | None) -> tuple[date, date] | None:
    """First and last day to rebuild: from ``since`` (else the first day anything is
    stored) to the last day any activity or rollup has."""
    span = Activity.objects.aggregate(first=Min("occurred_at"), last=Max("occurred_at"))
    rolled = CompanyActionDay.objects.aggregate(first=Min("day"), last=Max("day"))
    rolled_users = EnduserDay.objects.aggregate(first=Min("day"), last=Max("day"))
    firsts = [d for d in (rolled["first"], rolled_users["first"]) if d]
    lasts = [d for d in (rolled["last"], rolled_users["last"]) if d]
    if span["first"] is not None:
        firsts.append(utc_day(span["first"]))
        lasts.append(utc_day(span["last"]))
    if not lasts:
        return None
    first = since or min(firsts)
    last = max(lasts)
    return (first, last) if first <= last else None


def _insert_select(model, pairs: tuple[tuple[str, str], ...], queryset) -> int:
    """``INSERT INTO model (…) SELECT … FROM (queryset)``: the ORM writes the SELECT (the
    UTC date truncation differs per database); the rows never travel through Python.
    ``pairs``: (the model's field, the queryset's output column)."""
    sql, params = queryset.query.sql_with_params()
    columns = ", ".join(column(model, name) for name, _ in pairs)
    picks = ", ".join(f"s.{quote(alias)}" for _, alias in pairs)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table(model)} ({columns}) SELECT {picks} FROM ({sql}) s",  # noqa: S608
            params,
        )
        return cursor.rowcount


@transaction.atomic
def _rebuild_days(first: date, end: date) -> tuple[int, int]:
    """Recount the days ``first`` ≤ day < ``end`` from activities, replacing their rollups."""
    _days_lock((first + timedelta(days=i) for i in range((end - first).days)), exclusive=True)
    CompanyActionDay.objects.filter(day__gte=first, day__lt=end).delete()
    EnduserDay.objects.filter(day__gte=first, day__lt=end).delete()
    counted = _counted(
        Activity.objects.filter(
            occurred_at__gte=datetime.combine(first, time.min, tzinfo=UTC),
            occurred_at__lt=datetime.combine(end, time.min, tzinfo=UTC),
        )
    )
    actions = _insert_select(
        CompanyActionDay,
        (
            ("company", "company_id"),
            ("day", "day"),
            ("action", "action"),
            ("count", "n"),
            ("weighted_count", "w"),
        ),
        _per_action(counted),
    )
    users = _insert_select(
        EnduserDay,
        (("company", "company_id"), ("enduser", "enduser_id"), ("day", "day"), ("count", "n")),
        counted.values("company_id", "enduser_id", "day").annotate(n=Sum("count")),
    )
    return actions, users


def rollups_rebuild(
    *,
    since: date | None = None,
    chunk_days: int = 7,
    progress: Callable[[int, int], None] | None = None,
) -> RebuildSummary:
    """Recount the rollups of every day from ``since`` (else the first) from activities.

    Idempotent: each chunk of ``chunk_days`` days is replaced whole in one transaction, so
    a rebuild may be stopped and run again. ``progress(days_done, days_total)`` is called
    after each chunk.
    """
    summary = RebuildSummary()
    span = _day_range(since)
    if span is None:
        return summary
    summary.first_day, summary.last_day = span
    total = (summary.last_day - summary.first_day).days + 1
    day = summary.first_day
    while day <= summary.last_day:
        end = min(day + timedelta(days=chunk_days), summary.last_day + timedelta(days=1))
        actions, users = _rebuild_days(day, end)
        summary.chunks += 1
        summary.days += (end - day).days
        summary.company_action_days += actions
        summary.enduser_days += users
        if progress is not None:
            progress(summary.days, total)
        day = end
    logger.info("usage_rollups_rebuilt", extra={"summary": str(summary)})
    return summary


def rollups_backfill() -> RebuildSummary | None:
    """Rebuild every rollup when activities exist but no rollup does (an upgraded install).

    Runs after ``migrate`` (``usage.apps``), so an install that had activities before the
    rollups existed gets them without anyone knowing the command; a no-op otherwise (two
    queries). Returns what it did, or None when nothing was needed.
    """
    if CompanyActionDay.objects.exists() or EnduserDay.objects.exists():
        return None
    if not _counted(Activity.objects.all()).exists():
        return None
    return rollups_rebuild()
