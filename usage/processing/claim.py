"""Claiming pending inbox rows in whole requests, and failing a claim.

PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED``, so concurrent workers take disjoint rows
without waiting. SQLite ignores ``select_for_update``; there the claim is a conditional
UPDATE (``status = 'pending'``) inside an IMMEDIATE transaction, which holds the database's
write lock, so two claimers are serialised. Either way a claimed row is ``processing`` with
a lease (``claimed_until``) and the claim's id; the sweeper frees rows whose lease lapsed.

Whole requests: the events of one request are decided together in timestamp order (an
identify binds the tracks that follow it), so a claim never takes part of a request.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from usage.models import InboxEvent, InboxStatus

from .outputs import retry_delay

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    claim_id: UUID
    size: int


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
    """Claim the oldest pending requests, about ``batch_size`` events; None when none is free."""
    now = now or timezone.now()
    claim_id = uuid4()
    lease = {
        "status": InboxStatus.PROCESSING,
        "claim_id": claim_id,
        "claimed_until": now + timedelta(seconds=lease_seconds),
    }
    with transaction.atomic():
        window = _claimable(now).order_by("received_at", "id")
        if connection.vendor == "postgresql":
            window = window.select_for_update(skip_locked=True)
        rows = list(window.values_list("id", "request_id")[:batch_size])
        if not rows:
            return None
        requests = _whole_requests(rows, batch_size)
        if connection.vendor != "postgresql":
            size = _claimable(now).filter(request_id__in=requests).update(**lease)
            return Claim(claim_id=claim_id, size=size) if size else None
        # Lock the rest of those requests (rows past the window), skipping rows another
        # claimer holds; a request of which we could not lock every pending row is left for
        # later, whole, rather than split between two workers.
        locked = list(
            _claimable(now)
            .filter(request_id__in=requests)
            .select_for_update(skip_locked=True)
            .values_list("id", "request_id")
        )
        pending = dict(
            _claimable(now)
            .filter(request_id__in=requests)
            .order_by()
            .values_list("request_id")
            .annotate(n=Count("id"))
            .values_list("request_id", "n")
        )
        held = Counter(request_id for _, request_id in locked)
        ids = [row_id for row_id, request_id in locked if held[request_id] == pending[request_id]]
        if not ids:
            return None
        InboxEvent.objects.filter(id__in=ids).update(**lease)
        return Claim(claim_id=claim_id, size=len(ids))


def claim_fail(*, claim_id: UUID, error: str, backoff_base: int, backoff_max: int) -> int:
    """Mark a claim's rows failed with the error, one more attempt, and when to retry."""
    now = timezone.now()
    rows = InboxEvent.objects.filter(claim_id=claim_id, status=InboxStatus.PROCESSING)
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
    logger.warning("usage_claim_failed", extra={"claim_id": str(claim_id), "rows": changed})
    return changed
