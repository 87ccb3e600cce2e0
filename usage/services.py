"""Writes and decisions about the inbox: drain, sweep, purge, reprocess, re-match, assign.

The processing itself (claim → look up → decide → write) lives in ``usage.processing``;
these services are the entry points that tasks, admin, receivers and other apps call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from uuid import UUID

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from planhat_segment.models import Company, CompanyDomain, EndUser

from .ingest.nudge import drain_soon
from .models import DropReason, InboxEvent, InboxStatus
from .processing import policy
from .processing.claim import claim_lanes, inbox_claimed, leases_free
from .processing.parse import as_email, as_key
from .processing.pipeline import claim_process
from .processing.write import inbox_requeue, waiting_for_users
from .rejections import rejected_counts_purge

logger = logging.getLogger(__name__)


@dataclass
class DrainSummary:
    claims: int = 0
    events: int = 0
    failed_claims: int = 0
    endusers_created: int = 0
    statuses: Counter = field(default_factory=Counter)
    more: bool = False

    def add(self, other: DrainSummary) -> None:
        self.claims += other.claims
        self.events += other.events
        self.failed_claims += other.failed_claims
        self.endusers_created += other.endusers_created
        self.statuses.update(other.statuses)
        self.more = self.more or other.more


def inbox_drain(
    *,
    max_seconds: float | None = None,
    batch_size: int | None = None,
    request_id: UUID | None = None,
    rollups: bool = True,
    lanes: int | None = None,
) -> DrainSummary:
    """Claim and process pending rows, claim after claim, until none is left (or time is up).

    ``lanes`` (default ``USAGE_DRAIN_CONNECTIONS``): claims run on this many connections at
    once, one thread each, so one claim's Python work overlaps another's database work
    (PostgreSQL only, and never inside an open transaction; see ``claim_lanes``). The lanes
    take turns to claim; a lane ends when it finds nothing to claim, and once all have
    ended, one last pass on this thread takes what a lane left because another one held
    part of it at that moment.
    ``request_id``: only that request's rows (the integration page's test event), one lane.
    A claim whose processing raises is marked failed (error, attempts + 1, backoff) and the
    drain goes on with the next one; the sweeper retries failed rows a bounded number of
    times. When time is up, the drain asks for a successor instead of hogging the worker.
    ``rollups=False`` is for the benchmark's baseline only (see ``claim_process``).
    """
    deadline = time.monotonic() + (max_seconds or settings.USAGE_DRAIN_MAX_SECONDS)
    drain = partial(
        _drain_lane,
        deadline=deadline,
        batch_size=batch_size,
        request_id=request_id,
        rollups=rollups,
    )
    count = 1 if request_id else claim_lanes(lanes or settings.USAGE_DRAIN_CONNECTIONS)
    summary = DrainSummary()
    if count > 1:
        lane = partial(_on_own_connection, partial(drain, turn=threading.Lock()))
        with ThreadPoolExecutor(max_workers=count, thread_name_prefix="drain") as pool:
            futures = [pool.submit(lane) for _ in range(count)]
        for future in futures:
            summary.add(future.result())
    if not summary.more:  # the one lane, or the last pass after the lanes
        summary.add(drain(turn=None))
    if summary.more:
        drain_soon()
    return summary


def _on_own_connection(work: Callable[[], DrainSummary]) -> DrainSummary:
    """Run ``work`` in a lane's thread, which has its own connections: close them after."""
    try:
        return work()
    finally:
        connections.close_all()


def _drain_lane(
    *,
    deadline: float,
    batch_size: int | None,
    request_id: UUID | None,
    rollups: bool,
    turn: threading.Lock | None,
) -> DrainSummary:
    summary = DrainSummary()
    while True:
        if time.monotonic() > deadline:
            summary.more = True
            break
        with inbox_claimed(batch_size=batch_size, request_id=request_id, turn=turn) as claim:
            if claim is None:
                break
            summary.claims += 1
            try:
                result = claim_process(claim=claim, now=timezone.now(), rollups=rollups)
            except Exception as exc:
                logger.exception(
                    "usage_claim_processing_failed", extra={"claim": str(claim.claim_id)}
                )
                summary.failed_claims += 1
                claim.fail(error=f"{type(exc).__name__}: {exc}")
                continue
        summary.events += result.events
        summary.endusers_created += result.endusers_created
        summary.statuses.update(result.statuses)
    return summary


@dataclass
class SweepSummary:
    lapsed: int = 0
    retried: int = 0
    expired: int = 0
    rematched: int = 0
    drained: DrainSummary | None = None


def inbox_sweep(*, now: datetime | None = None) -> SweepSummary:
    """Housekeeping the beat runs every minute; the safety net under lost nudges and crashes.

    Frees rows whose claim lease lapsed (SQLite; PostgreSQL claims hold row locks instead),
    re-queues failed rows whose retry is due (the retry policy gives exhausted rows none),
    drops waiting rows past their window as ``unassigned_user``, re-queues waiting rows whose
    user or company exists by now (a race between two workers, or an object created without
    the change signal), then drains when anything is pending for longer than
    ``USAGE_STALE_PENDING_SECONDS`` or was just re-queued.
    """
    now = now or timezone.now()
    summary = SweepSummary()
    summary.lapsed = leases_free(now=now)
    summary.retried = inbox_requeue(rows=Q(status=InboxStatus.FAILED, next_attempt_at__lte=now))
    summary.expired = InboxEvent.objects.filter(policy.waiting_expired(now=now)).update(
        **policy.EXPIRED, processed_at=now
    )
    known = (
        Exists(EndUser.objects.filter(external_id=OuterRef("user_key")))
        | Exists(EndUser.objects.filter(email_normalized=OuterRef("email_key")))
        | Exists(Company.objects.filter(external_id=OuterRef("company_key")))
    )
    summary.rematched = inbox_requeue(rows=Q(known, status=InboxStatus.WAITING))
    stale = InboxEvent.objects.filter(
        status=InboxStatus.PENDING,
        received_at__lt=now - timedelta(seconds=settings.USAGE_STALE_PENDING_SECONDS),
    ).exists()
    if stale or summary.lapsed or summary.retried or summary.rematched:
        summary.drained = inbox_drain()
    return summary


def inbox_purge(*, now: datetime | None = None, retention_days: int | None = None) -> int:
    """Delete processed and dropped raw events older than the retention; outputs stay.

    In chunks, so a big backlog never becomes one long transaction holding locks.
    """
    days = settings.INBOX_RETENTION_DAYS if retention_days is None else retention_days
    cutoff = (now or timezone.now()) - timedelta(days=days)
    old = InboxEvent.objects.filter(
        status__in=[InboxStatus.PROCESSED, InboxStatus.DROPPED], received_at__lt=cutoff
    ).order_by()
    deleted = 0
    while ids := list(old.values_list("pk", flat=True)[:5000]):
        deleted += InboxEvent.objects.filter(pk__in=ids).delete()[0]
    rejected_counts_purge(older_than_days=days, now=now)  # counters of refused calls too
    return deleted


def inbox_events_reprocess(*, ids: Iterable[int]) -> int:
    """Put rows back to pending (outputs are idempotent: nothing is duplicated) and nudge.

    A row a worker holds right now is left alone; attempts start again from zero.
    """
    count = inbox_requeue(rows=Q(pk__in=list(ids)), reset_attempts=True)
    if count:
        drain_soon()
    return count


def waiting_events_rematch(*, model: str, pks: Iterable[int]) -> int:
    """Re-queue waiting rows that the given new or changed companies / endusers can bind."""
    pks = list(pks)
    if not pks:
        return 0
    if model == "company":
        keys = Company.objects.filter(pk__in=pks, external_id__isnull=False).values_list(
            "external_id", flat=True
        )
        match = Q(status=InboxStatus.WAITING) & Q(company_key__in=list(keys))
        # Rows that named no company but whose email domain is this company's.
        for domain in CompanyDomain.objects.filter(company_id__in=pks).values_list(
            "domain", flat=True
        ):
            match |= Q(
                status=InboxStatus.WAITING,
                company_key__isnull=True,
                email_key__endswith=f"@{domain}",
            )
    elif model == "enduser":
        users = list(
            EndUser.objects.filter(pk__in=pks).values_list("external_id", "email_normalized")
        )
        match = waiting_for_users(
            user_keys=[u for u, _ in users if u], emails=[e for _, e in users if e]
        )
    else:
        return 0
    count = inbox_requeue(rows=match)
    if count:
        drain_soon()
    return count


@transaction.atomic
def unassigned_user_assign(*, user_key: str | None, email: str | None, company_id: int) -> EndUser:
    """Create the enduser an admin assigned to a company, and re-queue all their events.

    Both the waiting rows and those already dropped as ``unassigned_user`` go back to
    pending, so nothing the user did in the meantime is lost: one re-queue, one nudge. An
    enduser that exists by now (same external id or email) is kept as it is and its events
    re-queued.
    """
    user_key = as_key(user_key)
    email = as_email(email)
    if not user_key and not email:
        raise ValidationError("Give the user's id or email.")
    company = Company.objects.filter(pk=company_id).first()
    if company is None:
        raise ValidationError(f"There is no company {company_id}.")
    same = Q(pk__in=[])
    if user_key:
        same |= Q(external_id=user_key)
    if email:
        same |= Q(email_normalized=email)
    enduser = EndUser.objects.filter(same).first()
    if enduser is None:
        enduser = EndUser(
            company=company, external_id=user_key, email=email, source=EndUser.Source.SEGMENT
        )
        enduser.save()
    user_keys, emails = [user_key] if user_key else [], [email] if email else []
    waiting = waiting_for_users(user_keys=user_keys, emails=emails)
    dropped = Q(status=InboxStatus.DROPPED, reason=DropReason.UNASSIGNED_USER) & Q(
        Q(user_key__in=user_keys) | Q(email_key__in=emails)
    )
    requeued = inbox_requeue(rows=waiting | dropped)
    logger.info("usage_unassigned_user_assigned", extra={"enduser": enduser.pk, "rows": requeued})
    if requeued:
        drain_soon()
    return enduser
