"""Writes and decisions about the inbox: drain, sweep, purge, reprocess, re-match, assign.

The processing itself (claim → look up → decide → write) lives in ``usage.processing``;
these services are the entry points that tasks, admin, receivers and other apps call.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from planhat_segment.models import Company, CompanyDomain, EndUser
from planhat_segment.signals import workspace_objects_changed

from .models import DropReason, InboxEvent, InboxStatus
from .processing.claim import claim_fail, inbox_claim
from .processing.parse import as_email, as_key
from .processing.pipeline import claim_process
from .rejections import rejected_counts_purge

logger = logging.getLogger(__name__)

DRAIN_TASK = "usage.drain_inbox"

# Fields that make a row look as if it had just arrived (for reprocessing / re-matching).
_FRESH = {
    "status": InboxStatus.PENDING,
    "reason": "",
    "next_attempt_at": None,
    "claim_id": None,
    "claimed_until": None,
    "wait_until": None,
    "processed_at": None,
}


def _publish_drain() -> None:
    from planhat_segment.celery import app

    # By name, so this module never imports the tasks; retry=False because a broker outage
    # must not stall the caller: the sweeper drains whatever a lost nudge left pending.
    app.send_task(DRAIN_TASK, queue="ingest", retry=False)


def inbox_drain_nudge() -> None:
    """Ask a worker to drain the inbox once the current transaction commits."""
    transaction.on_commit(_publish_drain, robust=True)


@dataclass
class DrainSummary:
    claims: int = 0
    events: int = 0
    failed_claims: int = 0
    endusers_created: int = 0
    statuses: Counter = field(default_factory=Counter)
    more: bool = False


def inbox_drain(*, max_seconds: float | None = None, batch_size: int | None = None) -> DrainSummary:
    """Claim and process pending rows, claim after claim, until none is left (or time is up).

    A claim whose processing raises is marked failed (error, attempts + 1, backoff) and the
    drain goes on with the next one; the sweeper retries failed rows a bounded number of
    times. When time is up, the drain nudges a successor instead of hogging the worker.
    """
    deadline = time.monotonic() + (max_seconds or settings.USAGE_DRAIN_MAX_SECONDS)
    batch_size = batch_size or settings.USAGE_CLAIM_BATCH_SIZE
    summary = DrainSummary()
    # PostgreSQL: a claim is row locks, so claim, process and finish in one transaction
    # (processing is a savepoint in it). SQLite: the claim is a lease written on its own.
    held = connection.vendor == "postgresql"
    while True:
        if time.monotonic() > deadline:
            summary.more = True
            inbox_drain_nudge()
            break
        with transaction.atomic() if held else nullcontext():
            claim = inbox_claim(
                batch_size=batch_size, lease_seconds=settings.USAGE_CLAIM_LEASE_SECONDS
            )
            if claim is None:
                break
            summary.claims += 1
            try:
                result = claim_process(claim=claim, now=timezone.now())
            except Exception as exc:
                logger.exception(
                    "usage_claim_processing_failed", extra={"claim": str(claim.claim_id)}
                )
                summary.failed_claims += 1
                claim_fail(
                    claim=claim,
                    error=f"{type(exc).__name__}: {exc}",
                    backoff_base=settings.USAGE_RETRY_BACKOFF_SECONDS,
                    backoff_max=settings.USAGE_RETRY_BACKOFF_MAX_SECONDS,
                )
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

    Frees rows whose claim lease lapsed (SQLite; PostgreSQL claims hold row locks instead), re-queues failed rows due for another attempt (up to
    ``USAGE_MAX_ATTEMPTS``), drops waiting rows past their window as ``unassigned_user``,
    re-queues waiting rows whose user or company exists by now (a race between two workers,
    or an object created without the change signal), then drains when anything is pending
    for longer than ``USAGE_STALE_PENDING_SECONDS`` or was just re-queued.
    """
    now = now or timezone.now()
    summary = SweepSummary()
    summary.lapsed = InboxEvent.objects.filter(
        status=InboxStatus.PROCESSING, claimed_until__lt=now
    ).update(status=InboxStatus.PENDING, claim_id=None, claimed_until=None)
    summary.retried = InboxEvent.objects.filter(
        status=InboxStatus.FAILED,
        attempts__lt=settings.USAGE_MAX_ATTEMPTS,
        next_attempt_at__lte=now,
    ).update(status=InboxStatus.PENDING, claim_id=None, claimed_until=None, next_attempt_at=None)
    summary.expired = InboxEvent.objects.filter(
        status=InboxStatus.WAITING, wait_until__lte=now
    ).update(status=InboxStatus.DROPPED, reason=DropReason.UNASSIGNED_USER, processed_at=now)
    known = (
        Exists(EndUser.objects.filter(external_id=OuterRef("user_key")))
        | Exists(EndUser.objects.filter(email_normalized=OuterRef("email_key")))
        | Exists(Company.objects.filter(external_id=OuterRef("company_key")))
    )
    summary.rematched = (
        InboxEvent.objects.filter(status=InboxStatus.WAITING).filter(known).update(**_FRESH)
    )
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
    count = (
        InboxEvent.objects.filter(pk__in=list(ids))
        .exclude(status=InboxStatus.PROCESSING)
        .update(**_FRESH, detail="", attempts=0)
    )
    if count:
        inbox_drain_nudge()
    return count


def waiting_events_rematch(*, model: str, pks: Iterable[int]) -> int:
    """Re-queue waiting rows that the given new or changed companies / endusers can bind."""
    pks = list(pks)
    if not pks:
        return 0
    if model == "company":
        keys = list(
            Company.objects.filter(pk__in=pks, external_id__isnull=False).values_list(
                "external_id", flat=True
            )
        )
        match = Q(company_key__in=keys)
        # Rows that named no company but whose email domain is this company's.
        for domain in CompanyDomain.objects.filter(company_id__in=pks).values_list(
            "domain", flat=True
        ):
            match |= Q(company_key__isnull=True, email_key__endswith=f"@{domain}")
    elif model == "enduser":
        users = EndUser.objects.filter(pk__in=pks).values_list("external_id", "email_normalized")
        match = Q(user_key__in=[u for u, _ in users if u]) | Q(
            email_key__in=[e for _, e in users if e]
        )
    else:
        return 0
    count = InboxEvent.objects.filter(match, status=InboxStatus.WAITING).update(**_FRESH)
    if count:
        inbox_drain_nudge()
    return count


@transaction.atomic
def unassigned_user_assign(*, user_key: str | None, email: str | None, company_id: int) -> EndUser:
    """Create the enduser an admin assigned to a company, and re-queue all their events.

    Both the waiting rows and those already dropped as ``unassigned_user`` go back to
    pending, so nothing the user did in the meantime is lost. An enduser that exists by now
    (same external id or email) is kept as it is and its events re-queued.
    """
    user_key = as_key(user_key)
    email = as_email(email)
    if not user_key and not email:
        raise ValidationError("Give the user's id or email.")
    company = Company.objects.filter(pk=company_id).first()
    if company is None:
        raise ValidationError(f"There is no company {company_id}.")
    same = Q(external_id=user_key) if user_key else Q()
    if email:
        same = (same | Q(email_normalized=email)) if user_key else Q(email_normalized=email)
    enduser = EndUser.objects.filter(same).first()
    if enduser is None:
        enduser = EndUser(
            company=company, external_id=user_key, email=email, source=EndUser.Source.SEGMENT
        )
        enduser.save()
    rows = Q(user_key=user_key) if user_key else Q()
    if email:
        rows = (rows | Q(email_key=email)) if user_key else Q(email_key=email)
    requeued = (
        InboxEvent.objects.filter(rows)
        .filter(
            Q(status=InboxStatus.WAITING)
            | Q(status=InboxStatus.DROPPED, reason=DropReason.UNASSIGNED_USER)
        )
        .update(**_FRESH, detail="")
    )
    logger.info("usage_unassigned_user_assigned", extra={"enduser": enduser.pk, "rows": requeued})
    workspace_objects_changed.send(sender=EndUser, model="enduser", pks=[enduser.pk])
    inbox_drain_nudge()
    return enduser
