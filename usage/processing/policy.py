"""Rules about an inbox row's time, each written once: when a failed row is tried again, and
how long an event of a user without a known company waits.

Processing, claims and the sweeper all ask these functions; none decides on its own.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q

from usage.models import DropReason, InboxStatus


def next_attempt(attempts: int, *, now: datetime) -> datetime | None:
    """When a row that has failed ``attempts`` times (this failure included) is tried again.

    Exponential backoff: ``USAGE_RETRY_BACKOFF_SECONDS`` after the first failure, doubling,
    capped at ``USAGE_RETRY_BACKOFF_MAX_SECONDS``. None once ``USAGE_MAX_ATTEMPTS`` are
    spent: the row then stays failed (see :func:`failure_detail`), and only a person's
    "Reprocess selected" puts it back.
    """
    if attempts >= settings.USAGE_MAX_ATTEMPTS:
        return None
    exponent = min(max(attempts - 1, 0), 30)
    delay = min(
        settings.USAGE_RETRY_BACKOFF_SECONDS * 2**exponent, settings.USAGE_RETRY_BACKOFF_MAX_SECONDS
    )
    return now + timedelta(seconds=delay)


def failure_detail(error: str, *, attempts: int, retry_at: datetime | None) -> str:
    """The ``detail`` of a failed row: its error, and whether it will be tried again."""
    if retry_at is None:
        error = f"{error} (failed {attempts} times; no more retries)"
    return error[:2000]


def wait_until(received_at: datetime, *, hours: int) -> datetime:
    """End of the window in which an event of a user without a known company waits."""
    return received_at + timedelta(hours=hours)


def wait_expired(until: datetime, *, now: datetime) -> bool:
    """A waiting event whose window has ended is dropped as ``unassigned_user``."""
    return until <= now


# The same rule for rows already waiting (the sweeper), and what they become.
def waiting_expired(*, now: datetime) -> Q:
    return Q(status=InboxStatus.WAITING, wait_until__lte=now)


EXPIRED = {"status": InboxStatus.DROPPED, "reason": DropReason.UNASSIGNED_USER}
