"""Claiming pending inbox rows in whole requests: one interface, two implementations.

A :class:`Claim` gives processing its rows (:meth:`Claim.rows`), tells the writes that finish
them which rows it still holds (:meth:`Claim.hold`), and fails them (:meth:`Claim.fail`).
:func:`inbox_claimed` opens the scope a claim lives in. Which implementation runs is decided
here only, by the database:

- PostgreSQL (:class:`_LockedClaim`): the claim is row locks. ``SELECT … FOR UPDATE SKIP
  LOCKED`` inside the transaction that processes the claim, so concurrent workers take
  disjoint rows without waiting, and nothing is written to claim a row: each row is written
  once, pending → its outcome. The whole claim (window, rest of its requests, the
  whole-request check) is one statement that returns the claimed rows, payloads included. A
  worker that dies mid-claim loses its connection, its transaction rolls back and the rows
  are simply pending again for the next drain (or the sweeper); no lease is needed.
- SQLite (:class:`_LeasedClaim`) has no row locks (``select_for_update`` does nothing): the
  claim is a conditional UPDATE (``status = pending``) inside an IMMEDIATE transaction,
  which holds the database's write lock, so two claimers are serialised. A claimed row is
  ``processing`` with a lease (``claimed_until``) and the claim's id; outcomes are written
  only to rows still carrying that id, and :func:`leases_free` frees lapsed leases.

Whole requests: the events of one request are decided together in timestamp order (an
identify binds the tracks that follow it), so a claim never takes part of a request.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from usage.bulk import column, table
from usage.models import InboxEvent, InboxStatus

from .policy import failure_detail, next_attempt

logger = logging.getLogger(__name__)

# What a claim hands to processing, per row, in this order.
ROW_FIELDS = ("id", "message_id", "type", "payload", "received_at", "occurred_at", "attempts")


@dataclass(frozen=True)
class Hold:
    """How the writes that finish a claim's rows recognise them: a condition on the inbox
    table (with its parameters) and the assignments that release them."""

    where: str
    params: tuple
    release: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Claim(ABC):
    claim_id: UUID

    @abstractmethod
    def rows(self) -> list[tuple]:
        """The rows the claim still holds, as :data:`ROW_FIELDS` (the payload as JSON text
        or decoded, times as microseconds since the epoch or datetimes)."""

    @abstractmethod
    def hold(self) -> Hold:
        """The condition that keeps the claim's writes to the rows it still holds."""

    @abstractmethod
    def held_rows(self) -> QuerySet:
        """The rows the claim still holds, for the ORM."""

    @abstractmethod
    def shared_writes_begin(self) -> None:
        """Call before the claim's last writes, those to rows concurrent claims share (the
        rollups): a row lock taken there is then held only until the commit. PostgreSQL
        runs the deferred foreign-key checks now rather than at the commit (SET CONSTRAINTS
        ALL IMMEDIATE); on SQLite one writer holds the whole database anyway."""

    def fail(self, *, error: str, now: datetime | None = None) -> int:
        """Mark the rows failed with the error, one more attempt, and when to retry.

        PostgreSQL: call in the claim's transaction, after rolling back the processing's
        writes (to a savepoint taken after the claim), so the rows are still locked.
        """
        now = now or timezone.now()
        rows = self.held_rows()
        changed = 0
        # Rows of one claim mostly share their attempt count: one UPDATE per distinct count.
        for done in sorted(set(rows.values_list("attempts", flat=True))):
            retry_at = next_attempt(done + 1, now=now)
            changed += rows.filter(attempts=done).update(
                status=InboxStatus.FAILED,
                detail=failure_detail(error, attempts=done + 1, retry_at=retry_at),
                attempts=done + 1,
                next_attempt_at=retry_at,
                claim_id=None,
                claimed_until=None,
            )
        logger.warning(
            "usage_claim_failed", extra={"claim_id": str(self.claim_id), "rows": changed}
        )
        return changed


def _claimable(now: datetime) -> QuerySet:
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    return InboxEvent.objects.filter(due, status=InboxStatus.PENDING)


# --- SQLite: a conditional-UPDATE lease ---------------------------------------------------------


@dataclass(frozen=True)
class _LeasedClaim(Claim):
    def rows(self) -> list[tuple]:
        return list(self.held_rows().values_list(*ROW_FIELDS))

    def hold(self) -> Hold:
        claim_id = InboxEvent._meta.get_field("claim_id")
        return Hold(
            where=f"{table(InboxEvent)}.{column(InboxEvent, 'claim_id')} = %s",
            params=(claim_id.get_db_prep_value(self.claim_id, connection),),
            release=(("claim_id", "NULL"), ("claimed_until", "NULL")),
        )

    def shared_writes_begin(self) -> None:
        """Nothing to do: the IMMEDIATE transaction holds the one writer lock throughout."""

    def held_rows(self) -> QuerySet:
        return InboxEvent.objects.filter(claim_id=self.claim_id, status=InboxStatus.PROCESSING)


def _whole_requests(rows: list[tuple[int, UUID]], batch_size: int) -> list[UUID]:
    """Request ids in claim order; the last one is left out when the window may have cut it."""
    requests = list(dict.fromkeys(request_id for _, request_id in rows))
    if len(rows) >= batch_size and len(requests) > 1:
        requests.pop()
    return requests


def _claim_leased(
    *, batch_size: int, lease_seconds: int, now: datetime, request_id: UUID | None
) -> Claim | None:
    claim_id = uuid4()
    lease = {
        "status": InboxStatus.PROCESSING,
        "claim_id": claim_id,
        "claimed_until": now + timedelta(seconds=lease_seconds),
    }
    claimable = _claimable(now)
    if request_id is not None:
        claimable = claimable.filter(request_id=request_id)
    with transaction.atomic():
        window = claimable.order_by("received_at", "id")
        rows = list(window.values_list("id", "request_id")[:batch_size])
        if not rows:
            return None
        requests = _whole_requests(rows, batch_size)
        leased = claimable.filter(request_id__in=requests).update(**lease)
        return _LeasedClaim(claim_id=claim_id) if leased else None


# --- PostgreSQL: row locks held by the processing transaction ----------------------------------


@dataclass(frozen=True)
class _LockedClaim(Claim):
    # The claimed rows as the claim statement returned them: processing need not read them
    # again. They read ``pending`` and carry no claim id or lease.
    claimed: tuple[tuple, ...] = field(default=(), repr=False)

    def rows(self) -> list[tuple]:
        return list(self.claimed)

    def hold(self) -> Hold:
        # Our locks keep every other writer off these rows; "still pending" guards against
        # finishing a row twice within our own transaction.
        where = f"{table(InboxEvent)}.{column(InboxEvent, 'status')} = %s"
        return Hold(where=where, params=(str(InboxStatus.PENDING),))

    def shared_writes_begin(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    def held_rows(self) -> QuerySet:
        ids = [row[0] for row in self.claimed]
        return InboxEvent.objects.filter(pk__in=ids, status=InboxStatus.PENDING)


def epoch_us(column_sql: str) -> str:
    """SQL for a timestamptz column as whole microseconds since the epoch (exact: numeric).

    Claimed rows carry times this way: a Python integer sum is several times cheaper than
    the ORM connection's timestamptz text loader, and processing reads two per row.
    """
    return f"(extract(epoch FROM {column_sql}) * 1000000)::bigint"


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
# instead of scanning the table. ``pending`` and ``whole`` are MATERIALIZED: inlined, the
# planner (without statistics on a young table) re-counted ``pending`` once per locked row,
# quadratic in the request's size (45 s to claim one request of 10,000 rows, Planhat's bulk
# default; 0.23 s materialized). Names come from the model: {t} is the table, {c[name]} a
# column.
_CLAIM_SQL = """
WITH win AS MATERIALIZED (
    SELECT {c[id]} AS id, {c[request_id]} AS request_id, {c[received_at]} AS received_at
    FROM {t}
    WHERE {claimable}{one_request}
    ORDER BY {c[received_at]}, {c[id]}
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
    SELECT {c[id]} AS id, {c[request_id]} AS request_id, {row_columns}
    FROM {t}
    WHERE {c[request_id]} = ANY(ARRAY(SELECT request_id FROM reqs)) AND {claimable}
    FOR UPDATE SKIP LOCKED
),
pending AS MATERIALIZED (
    SELECT {c[request_id]} AS request_id, count(*) AS n FROM {t}
    WHERE {c[request_id]} = ANY(ARRAY(SELECT request_id FROM reqs)) AND {claimable}
    GROUP BY {c[request_id]}
),
whole AS MATERIALIZED (
    SELECT held.request_id
    FROM (SELECT request_id, count(*) AS n FROM locked GROUP BY request_id) held
    JOIN pending ON pending.request_id = held.request_id AND pending.n = held.n
)
SELECT e.id, e.message_id, e.type, e.payload::text,
    {received_us}, {occurred_us}, e.attempts
FROM locked AS e
WHERE e.request_id IN (SELECT request_id FROM whole)
"""


# Settings of the claim's transaction (SET LOCAL: they end with it), in one round trip.
# - The window must be read through ``inbox_pending``, which holds only pending rows. The
#   plain ``received_at`` index (the event log's order) also gives the order, with an
#   incremental sort for the id, and the planner may prefer it while most rows are pending
#   (statistics from a burst): it then walks every row processed since the burst began,
#   claim after claim, quadratic in the backlog (measured: 22 ms a claim instead of 6 after
#   50 claims). Without incremental sorts that plan needs a full sort and loses. No
#   statement processing runs afterwards in this transaction sorts.
# - Asynchronous commit: a commit lost in a database crash is a claim that never happened.
#   Its rows are pending again (ingest stored them with synchronous commits), every output
#   and rollup is rolled back with them, and the next drain or sweep processes them again.
#   So nothing accepted is lost, and processing does not wait for a WAL flush per claim.
_CLAIM_TRANSACTION_SQL = (
    "SELECT set_config('enable_incremental_sort', 'off', true),"
    " set_config('synchronous_commit', 'off', true)"
)


def claim_sql(*, one_request: bool) -> str:
    names = {"id", "request_id", "received_at", "status", "next_attempt_at", *ROW_FIELDS}
    c = {name: column(InboxEvent, name) for name in names}
    claimable = (
        f"{c['status']} = %(pending)s"
        f" AND ({c['next_attempt_at']} IS NULL OR {c['next_attempt_at']} <= %(now)s)"
    )
    return _CLAIM_SQL.format(
        t=table(InboxEvent),
        c=c,
        claimable=claimable,
        one_request=f" AND {c['request_id']} = %(request)s" if one_request else "",
        row_columns=", ".join(f"{c[name]} AS {name}" for name in ROW_FIELDS[1:]),
        received_us=epoch_us("e.received_at"),
        occurred_us=epoch_us("e.occurred_at"),
    )


def _claim_locked(
    *, batch_size: int, lease_seconds: int, now: datetime, request_id: UUID | None
) -> Claim | None:
    if not connection.in_atomic_block:
        raise RuntimeError("a PostgreSQL claim holds row locks: claim inside atomic()")
    params = {
        "now": now,
        "batch": batch_size,
        "pending": str(InboxStatus.PENDING),
        "request": request_id,
    }
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_TRANSACTION_SQL)
        cursor.execute(claim_sql(one_request=request_id is not None), params)
        rows = tuple(cursor.fetchall())
    if not rows:
        return None
    return _LockedClaim(claim_id=uuid4(), claimed=rows)


# --- the one interface ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Strategy:
    claim: Callable[..., Claim | None]
    # The scope a claim lives in: the claim is row locks held by this transaction
    # (PostgreSQL), or a lease written on its own (SQLite: nothing to hold open).
    scope: Callable[[], AbstractContextManager]
    # Whether claims on several connections at once run side by side (row locks with SKIP
    # LOCKED) or only queue for the one writer lock (SQLite).
    concurrent: bool


_STRATEGIES = {
    "postgresql": _Strategy(claim=_claim_locked, scope=transaction.atomic, concurrent=True),
    "sqlite": _Strategy(claim=_claim_leased, scope=nullcontext, concurrent=False),
}


def _strategy() -> _Strategy:
    return _STRATEGIES[connection.vendor]


def claim_lanes(requested: int) -> int:
    """How many connections one drain may claim on at once: ``requested`` where claims run
    side by side, else 1 — on SQLite, and inside an open transaction, whose rows other
    connections cannot see."""
    if connection.in_atomic_block or not _strategy().concurrent:
        return 1
    return max(1, requested)


def inbox_claim(
    *,
    batch_size: int | None = None,
    lease_seconds: int | None = None,
    now: datetime | None = None,
    request_id: UUID | None = None,
) -> Claim | None:
    """Claim the oldest pending requests, about ``batch_size`` events; None when none is free.

    ``request_id`` claims that request only (the integration page's test event). Call it
    inside :func:`inbox_claimed`'s scope (or any ``atomic()`` block): on PostgreSQL the
    claim is row locks that last until that transaction ends, so process and finish the
    rows in it. ``lease_seconds`` applies to SQLite's lease only.
    """
    return _strategy().claim(
        batch_size=batch_size or settings.USAGE_CLAIM_BATCH_SIZE,
        lease_seconds=lease_seconds or settings.USAGE_CLAIM_LEASE_SECONDS,
        now=now or timezone.now(),
        request_id=request_id,
    )


@contextmanager
def inbox_claimed(
    *,
    batch_size: int | None = None,
    request_id: UUID | None = None,
    turn: AbstractContextManager | None = None,
) -> Iterator[Claim | None]:
    """A claim (or None) and the scope it lives in: process and finish its rows inside.

    ``turn``: held around the claim statement only. A drain's lanes take turns with it, so
    two of them never lock parts of the same large request at once and both give it up.
    """
    with _strategy().scope():
        with turn or nullcontext():
            claim = inbox_claim(batch_size=batch_size, request_id=request_id)
        yield claim


def leases_free(*, now: datetime) -> int:
    """Put rows whose lease lapsed (a worker died holding them) back to pending.

    SQLite's leases only: a PostgreSQL claim writes nothing, so no row is ever found here.
    """
    return InboxEvent.objects.filter(status=InboxStatus.PROCESSING, claimed_until__lt=now).update(
        status=InboxStatus.PENDING, claim_id=None, claimed_until=None
    )
