"""Calls the endpoint rejected at the door, counted per reason and UTC hour (no payload kept).

Ingest answers each refused message with ``invalid_message`` and a precise detail; the detail
names the reason, which ``rejection_reason`` turns into a short code for counting. The count
is one upsert per request that had rejections (none otherwise), in a fixed key order so two
requests never deadlock (DESIGN.md §7), and a failure to count never fails the request.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import DatabaseError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from .models import RejectedCallCount

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RejectionReason:
    code: str
    label: str
    starts: tuple[str, ...]  # how ingest's detail for it begins (usage/ingest/messages.py)


REASONS = (
    RejectionReason("track_without_event", "Track without event", ("A track call needs",)),
    RejectionReason("group_without_group_id", "Group without groupId", ("A group call needs",)),
    RejectionReason("no_identity", "No userId, anonymousId or email", ("No userId",)),
    RejectionReason("missing_type", "No type", ("Missing type",)),
    RejectionReason("unknown_type", "Unknown type", ("Unknown type",)),
    RejectionReason("not_an_object", "Not a JSON object", ("Not a JSON object",)),
    RejectionReason("bad_message_id", "Bad messageId", ("messageId",)),
    RejectionReason(
        "unstorable", "Cannot be stored (NUL, too deep)", ("Cannot store", "The message contains")
    ),
)
OTHER = RejectionReason("other", "Other invalid message", ())
LABELS = {reason.code: reason.label for reason in (*REASONS, OTHER)}


def rejection_reason(detail: str) -> str:
    """The short code of a rejection's detail ("other" when none matches)."""
    for reason in REASONS:
        if detail.startswith(reason.starts):
            return reason.code
    return OTHER.code


def _hour(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0)


_UPSERT = """
INSERT INTO {table} (hour, reason, count) VALUES {rows}
ON CONFLICT (hour, reason) DO UPDATE SET count = {table}.count + excluded.count
"""


def rejected_calls_count(*, details: Iterable[str], now: datetime | None = None) -> None:
    """Add one request's rejections to this hour's counters (one statement). Never raises:
    a counter that cannot be written is logged, and the request answers as it would."""
    counts = Counter(rejection_reason(detail) for detail in details)
    if not counts:
        return
    hour = connection.ops.adapt_datetimefield_value(_hour(now or timezone.now()))
    keys = sorted(counts)  # a fixed order: concurrent upserts never wait on each other in turn
    table = connection.ops.quote_name(RejectedCallCount._meta.db_table)
    sql = _UPSERT.format(table=table, rows=", ".join(["(%s, %s, %s)"] * len(keys)))
    params = [value for key in keys for value in (hour, key, counts[key])]
    try:
        # A savepoint when the caller is in a transaction: a failed count never spoils it.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
    except DatabaseError:
        logger.exception("ingest_rejections_not_counted", extra={"reasons": keys})


@dataclass(frozen=True)
class RejectedCount:
    code: str
    label: str
    count: int


def rejected_calls_last_24h(*, now: datetime | None = None) -> list[RejectedCount]:
    """Rejections of the last 24 h (this hour and the 23 before), per reason, most first."""
    since = _hour(now or timezone.now()) - timedelta(hours=23)
    rows = (
        RejectedCallCount.objects.filter(hour__gte=since)
        .values("reason")
        .annotate(total=Sum("count"))
        .order_by("-total", "reason")
    )
    return [
        RejectedCount(row["reason"], LABELS.get(row["reason"], row["reason"]), row["total"])
        for row in rows
        if row["total"]
    ]


def rejected_counts_purge(*, older_than_days: int = 30, now: datetime | None = None) -> int:
    """Delete counters older than ``older_than_days`` (the inbox's purge calls it)."""
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    return RejectedCallCount.objects.filter(hour__lt=cutoff).delete()[0]
