"""Claiming pending inbox rows in whole requests, and failing a claim.

PostgreSQL: the claim is row locks. ``SELECT … FOR UPDATE SKIP LOCKED`` inside the
transaction that processes the claim (``inbox_drain`` opens it), so concurrent workers take
disjoint rows without waiting, and nothing is written to claim a row: each row is written
once, pending → its outcome. The whole claim (window, rest of its requests, the
whole-request check) is one statement that returns the claimed rows, payloads included. A
worker that dies mid-claim loses its connection, its transaction rolls back and the rows are
simply pending again for the next drain (or the sweeper); no lease is needed.

SQLite has no row locks (``select_for_update`` does nothing): there the claim is a
conditional UPDATE (``status = 'pending'``) inside an IMMEDIATE transaction, which holds the
database's write lock, so two claimers are serialised. A claimed row is ``processing`` with
a lease (``claimed_until``) and the claim's id; the sweeper frees rows whose lease lapsed.

Whole requests: the events of one request are decided together in timestamp order (an
identify binds the tracks that follow it), so a claim never takes part of a request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from usage.models import InboxEvent, InboxStatus

from .outputs import epoch_us, retry_delay

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    claim_id: UUID
    size: int
    # PostgreSQL: the claimed rows as the claim returned them (id, message id, type, payload
    # as JSON text, received at and occurred at as microseconds since the epoch, attempts),
    # so processing need not read them again. Empty on SQLite, where processing loads them
    # by claim id.
    rows: tuple[tuple, ...] = field(default=(), repr=False)
    # True when the claim is row locks held by the current transaction (PostgreSQL): the
    # rows are still ``pending`` and carry no claim id or lease.
    locked: bool = False

    @property
    def row_ids(self) -> list[int]:
        return [row[0] for row in self.rows]


def _claimable(now: datetime):
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    return InboxEvent.objects.filter(due, status=InboxStatus.PENDING)


def _whole_requests(rows: list[tuple[int, UUID]], batch_size: int) -> list[UUID]:
    """Request ids in claim order; the last one is left out when the window may have cut it."""
    requests = list(dict.fromkeys(request_id for _, request_id in rows))
    if len(rows) >= batch_size and len(requests) > 1:
        requests.pop()
    return requests


def inbox_claim(
    *, batch_size: int, lease_seconds: int, now: datetime | None = None
) -> Claim | None:
    """Claim the oldest pending requests, about ``batch_size`` events; None when none is free.

    PostgreSQL: call inside ``transaction.atomic()``; the claim is the rows' locks and lasts
    until that transaction ends, so process and finish the rows in it. (``lease_seconds``
    applies to SQLite only.)
    """
    now = now or timezone.now()
    claim_id = uuid4()
    if connection.vendor == "postgresql":
        if not connection.in_atomic_block:
            raise RuntimeError("a PostgreSQL claim holds row locks: claim inside atomic()")
        return _claim_postgres(claim_id=claim_id, batch_size=batch_size, now=now)
    lease = {
        "status": InboxStatus.PROCESSING,
        "claim_id": claim_id,
        "claimed_until": now + timedelta(seconds=lease_seconds),
    }
    with transaction.atomic():
        window = _claimable(now).order_by("received_at", "id")
        rows = list(window.values_list("id", "request_id")[:batch_size])
        if not rows:
            return None
        requests = _whole_requests(rows, batch_size)
        size = _claimable(now).filter(request_id__in=requests).update(**lease)
        return Claim(claim_id=claim_id, size=size) if size else None


# One round trip. ``win``: the oldest claimable rows, skipping rows other claimers hold.
# ``reqs``: their requests, less the last one when the window may have cut it (the request
# that first appears last, as ``_whole_requests`` does). ``locked``: every claimable row of
# those requests, again skipping held rows; ``pending``: how many claimable rows each request
# has. Only requests of which we hold every pending row are claimed: a request is left for
# later, whole, rather than split between two workers. (All CTEs share the statement's
# snapshot; a row another worker holds drops out of ``locked`` only, so its request is
# skipped, never split.) Rows of skipped requests stay locked until our transaction ends, so
# another claimer meanwhile skips those requests too. ``= ANY(ARRAY(…))`` rather than
# ``IN (SELECT …)``: the planner then reads the few requests through the request id index
# instead of scanning the table.
_CLAIMABLE = "status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= %(now)s)"
_CLAIM_SQL = f"""
WITH win AS MATERIALIZED (
    SELECT id, request_id, received_at FROM {{table}}
    WHERE {_CLAIMABLE}
    ORDER BY received_at, id
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
),
firsts AS (
    SELECT request_id, min(pos) AS pos
    FROM (SELECT request_id, row_number() OVER (ORDER BY received_at, id) AS pos FROM win) w
    GROUP BY request_id
),
reqs AS (
    SELECT request_id FROM firsts
    WHERE NOT (
        (SELECT count(*) FROM win) >= %(batch)s
        AND (SELECT count(*) FROM firsts) > 1
        AND pos = (SELECT max(pos) FROM firsts)
    )
),
locked AS MATERIALIZED (
    SELECT id, request_id, message_id, type, payload, received_at, occurred_at, attempts
    FROM {{table}}
    WHERE request_id = ANY(ARRAY(SELECT request_id FROM reqs)) AND {_CLAIMABLE}
    FOR UPDATE SKIP LOCKED
),
pending AS (
    SELECT request_id, count(*) AS n FROM {{table}}
    WHERE request_id = ANY(ARRAY(SELECT request_id FROM reqs)) AND {_CLAIMABLE}
    GROUP BY request_id
),
whole AS (
    SELECT held.request_id
    FROM (SELECT request_id, count(*) AS n FROM locked GROUP BY request_id) held
    JOIN pending ON pending.request_id = held.request_id AND pending.n = held.n
)
SELECT e.id, e.message_id, e.type, e.payload::text,
    {epoch_us("e.received_at")}, {epoch_us("e.occurred_at")}, e.attempts
FROM locked AS e
WHERE e.request_id IN (SELECT request_id FROM whole)
"""  # noqa: S608 — our own table and column names only


def _claim_postgres(*, claim_id: UUID, batch_size: int, now: datetime) -> Claim | None:
    table = connection.ops.quote_name(InboxEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL.format(table=table), {"now": now, "batch": batch_size})
        rows = tuple(cursor.fetchall())
    if not rows:
        return None
    return Claim(claim_id=claim_id, size=len(rows), rows=rows, locked=True)


def claim_fail(*, claim: Claim, error: str, backoff_base: int, backoff_max: int) -> int:
    """Mark a claim's rows failed with the error, one more attempt, and when to retry.

    PostgreSQL: call in the claim's transaction, after rolling back the processing's writes
    (to a savepoint taken after the claim), so the rows are still locked and pending.
    """
    now = timezone.now()
    if claim.locked:
        rows = InboxEvent.objects.filter(pk__in=claim.row_ids, status=InboxStatus.PENDING)
    else:
        rows = InboxEvent.objects.filter(claim_id=claim.claim_id, status=InboxStatus.PROCESSING)
    changed = 0
    # Rows of one claim mostly share their attempt count: one UPDATE per distinct count.
    attempts = sorted(set(rows.values_list("attempts", flat=True)))
    for done in attempts:
        changed += rows.filter(attempts=done).update(
            status=InboxStatus.FAILED,
            detail=error[:2000],
            attempts=done + 1,
            next_attempt_at=now + retry_delay(done, base=backoff_base, cap=backoff_max),
            claim_id=None,
            claimed_until=None,
        )
    logger.warning("usage_claim_failed", extra={"claim_id": str(claim.claim_id), "rows": changed})
    return changed
