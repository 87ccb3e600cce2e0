"""Celery tasks of the health app: thin wrappers around ``health.services``."""

from __future__ import annotations

import datetime as dt

from celery import shared_task

from .services import health_scores_recompute

# The daily recompute, for the schedules registry (django-celery-beat, seeded by an ensure
# service, editable in the admin): 00:30 UTC, after the day's last events have settled.
DAILY_SCHEDULE = {
    "name": "Recompute health scores (daily)",
    "task": "health.recompute_scores",
    "queue": "default",
    "crontab": {
        "minute": "30",
        "hour": "0",
        "day_of_week": "*",
        "day_of_month": "*",
        "month_of_year": "*",
        "timezone": "UTC",
    },
    "kwargs": {},
    "description": "Scores every company for today from the complete UTC days before it.",
}


@shared_task(name="health.recompute_scores", queue="default", ignore_result=True)
def recompute_scores(company_ids: list[int] | None = None, day: str | None = None) -> dict:
    """Score the given companies (all when None) for ``day`` (ISO date; default today, UTC).

    Idempotent (one row per company per day, upserted), so a redelivered task is harmless.
    """
    summary = health_scores_recompute(
        company_ids=company_ids, day=dt.date.fromisoformat(day) if day else None
    )
    return summary.as_dict()
