"""Celery tasks of the usage app: thin wrappers around ``usage.services``.

All run on the ``ingest`` queue. None uses ``acks_late``: the inbox rows in the database are
the state, so a lost task message costs nothing that the sweeper does not recover.
"""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="usage.drain_inbox", queue="ingest", ignore_result=True)
def drain_inbox() -> dict:
    """Claim and process pending inbox rows until none is left (nudged after each ingest)."""
    summary = services.inbox_drain()
    return {"claims": summary.claims, "events": summary.events, "more": summary.more}


@shared_task(name="usage.sweep_inbox", queue="ingest", ignore_result=True)
def sweep_inbox() -> dict:
    """Beat, every minute: free lapsed claims, retry failed rows, expire waiting rows, drain."""
    summary = services.inbox_sweep()
    return {
        "lapsed": summary.lapsed,
        "retried": summary.retried,
        "expired": summary.expired,
        "rematched": summary.rematched,
    }


@shared_task(name="usage.purge_inbox", queue="ingest", ignore_result=True)
def purge_inbox() -> int:
    """Beat, daily: delete processed and dropped raw events older than the retention."""
    return services.inbox_purge()
