"""Celery tasks of the push: thin wrappers that take ids and call the services."""

from __future__ import annotations

import logging

from celery import shared_task

from .models import SyncTrigger
from .services import (
    SyncRefused,
    sync_history_purge,
    sync_run_execute,
    sync_run_start,
    sync_runs_reap_lapsed,
)

logger = logging.getLogger(__name__)

# Queue "warehouse": CELERY_TASK_ROUTES sends warehouse_sync.* there, the enqueue call names
# it explicitly, and so does the beat entry (Celery 5.7 deprecates the task attribute).
QUEUE = "warehouse"


# No acks_late: a push runs for minutes and Redis's visibility timeout would redeliver it
# mid-run; a worker that dies leaves the lease to lapse instead (DESIGN.md §7).
@shared_task(name="warehouse_sync.run_sync", acks_late=False, ignore_result=True)
def run_sync(run_id: int) -> None:
    """Execute sync run ``run_id`` (created, with its lease, by ``sync_run_start``)."""
    sync_run_execute(run_id=run_id)


@shared_task(name="warehouse_sync.scheduled_sync", ignore_result=True)
def scheduled_sync() -> None:
    """Beat's trigger: start an incremental run, or skip with a log line when it cannot
    (section off, no write key, a run already running: ``sync_run_start`` says which)."""
    try:
        sync_run_start(trigger=SyncTrigger.SCHEDULE)
    except SyncRefused as exc:
        logger.info("warehouse_sync_scheduled_skipped: %s", exc.message)


@shared_task(name="warehouse_sync.reap_lapsed_runs", ignore_result=True)
def reap_lapsed_runs() -> None:
    """Beat's check: mark runs whose worker died (lease lapsed) as failed."""
    sync_runs_reap_lapsed()


@shared_task(name="warehouse_sync.purge_history", ignore_result=True)
def purge_history() -> dict:
    """Beat, daily: delete sync history past its retention and tombstones already sent."""
    summary = sync_history_purge()
    logger.info("warehouse_sync_history_purged", extra=vars(summary))
    return vars(summary)
