"""Usage's periodic tasks: their default entries (see ``planhat_segment.schedules``)."""

from __future__ import annotations

from django.conf import settings

from planhat_segment.schedules import PeriodicDefault


def periodic_defaults() -> list[PeriodicDefault]:
    # The names are those the entries had when they came from CELERY_BEAT_SCHEDULE, so an
    # existing install keeps its rows (and any edit of them) instead of getting a second pair.
    return [
        PeriodicDefault(
            name="usage-sweep-inbox",
            task="usage.sweep_inbox",
            queue="ingest",
            every_seconds=settings.USAGE_SWEEP_EVERY_SECONDS,
            description=(
                "Frees lapsed claims, retries failed rows, expires and re-matches waiting rows, "
                "drains rows left pending."
            ),
        ),
        PeriodicDefault(
            name="usage-purge-inbox",
            task="usage.purge_inbox",
            queue="ingest",
            every_seconds=settings.USAGE_PURGE_EVERY_SECONDS,
            description="Deletes processed and dropped raw events older than the retention.",
        ),
    ]
