"""Health's periodic tasks: their default entries (see ``planhat_segment.schedules``)."""

from __future__ import annotations

from planhat_segment.schedules import PeriodicDefault


def periodic_defaults() -> list[PeriodicDefault]:
    from .tasks_alerts import alert_schedules

    return [
        # 00:30 UTC, after the day's last events have settled; alert evaluation is chained
        # after it (``health.recompute_scores`` queues ``health.evaluate_alerts``).
        PeriodicDefault(
            name="Recompute health scores (daily)",
            task="health.recompute_scores",
            queue="default",
            crontab="30 0 * * *",
            description="Scores every company for today from the complete UTC days before it.",
        ),
        *(PeriodicDefault(**entry) for entry in alert_schedules()),
    ]
