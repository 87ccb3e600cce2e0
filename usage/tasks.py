"""Celery tasks of the usage app: thin wrappers around ``usage.services``.

All run on the ``ingest`` queue. None uses ``acks_late``: the inbox rows in the database are
the state, so a lost task message costs nothing that the sweeper does not recover.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from . import recovery, services

logger = logging.getLogger(__name__)


# A database that drops mid-drain (or is not back yet) raises OperationalError /
# InterfaceError: the task is retried with exponential backoff capped at a few seconds, so
# processing resumes within seconds of the database coming back, not at the next sweep.
# Nothing else is retried: an error in the rows is the claim's (failed rows, with backoff).
@shared_task(
    name="usage.drain_inbox",
    queue="ingest",
    ignore_result=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=1,
    retry_backoff_max=settings.USAGE_DRAIN_RETRY_BACKOFF_MAX_SECONDS,
    retry_jitter=True,
    max_retries=settings.USAGE_DRAIN_MAX_RETRIES,
)
def drain_inbox() -> dict:
    """Claim and process pending inbox rows until none is left (nudged after each ingest)."""
    summary = services.inbox_drain()
    return {"claims": summary.claims, "events": summary.events, "more": summary.more}


@shared_task(name="usage.sweep_inbox", queue="ingest", ignore_result=True)
def sweep_inbox(follow_up: int = 0) -> dict:
    """Beat, every minute: free lapsed claims, retry failed rows, expire waiting rows, drain.

    While rows are left pending the sweep drains them and runs again in
    ``USAGE_SWEEP_SOON_SECONDS`` (``follow_up`` counts these runs), rather than a whole beat
    interval later.
    """
    summary = services.inbox_sweep()
    again = recovery.inbox_sweep_follow_up(follow_up=follow_up)
    if again:
        try:
            sweep_inbox.apply_async(
                kwargs={"follow_up": follow_up + 1},
                countdown=settings.USAGE_SWEEP_SOON_SECONDS,
                queue="ingest",
                retry=False,
            )
        except Exception:  # the broker went away meanwhile: the beat's next sweep follows
            logger.warning("usage_sweep_follow_up_not_queued", exc_info=True)
    return {
        "lapsed": summary.lapsed,
        "retried": summary.retried,
        "expired": summary.expired,
        "rematched": summary.rematched,
        "again": again,
    }


@shared_task(name="usage.purge_inbox", queue="ingest", ignore_result=True)
def purge_inbox() -> int:
    """Beat, daily: delete processed and dropped raw events older than the retention."""
    return services.inbox_purge()
