"""The push's periodic tasks: their default entries (see ``planhat_segment.schedules``)."""

from __future__ import annotations

from django.conf import settings

from planhat_segment.schedules import PeriodicDefault

PUSH_NAME = "Push data to Segment (warehouse sync)"
REAP_NAME = "Mark dead pushes to Segment as failed (warehouse sync)"
PURGE_NAME = "Purge old sync history and sent tombstones (warehouse sync)"


def periodic_defaults() -> list[PeriodicDefault]:
    return [
        PeriodicDefault(
            name=PUSH_NAME,
            task="warehouse_sync.scheduled_sync",
            queue="warehouse",
            crontab=f"0 {settings.WAREHOUSE_PUSH_SCHEDULE_HOURS} * * *",
            description=(
                "Pushes changed workspace objects to Segment when the Segment data warehouse "
                "section is on (skips otherwise). Edit the crontab to change the times."
            ),
        ),
        PeriodicDefault(
            name=REAP_NAME,
            task="warehouse_sync.reap_lapsed_runs",
            queue="warehouse",
            # With the heartbeat's 30 s lease, a dead run is marked within a minute.
            every_seconds=settings.WAREHOUSE_REAP_EVERY_SECONDS,
            description="Marks a push whose worker died (its lease lapsed) as failed.",
        ),
        PeriodicDefault(
            name=PURGE_NAME,
            task="warehouse_sync.purge_history",
            queue="warehouse",
            crontab="30 3 * * *",
            description=(
                "Deletes sync runs, sync batches and failed objects past their retention, "
                "and tombstones that a completed push has sent (WAREHOUSE_*_RETENTION_DAYS)."
            ),
        ),
    ]
