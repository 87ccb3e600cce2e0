"""Celery tasks of the health app: thin wrappers around ``health.services``."""

from __future__ import annotations

import datetime as dt

from celery import shared_task

from .notifications.queue import alerts_evaluate_queue
from .services import health_scores_recompute
from .tasks_alerts import deliver_notifications, evaluate_alerts  # noqa: F401 (registers them)


@shared_task(name="health.recompute_scores", queue="default", ignore_result=True)
def recompute_scores(company_ids: list[int] | None = None, day: str | None = None) -> dict:
    """Score the given companies (all when None) for ``day`` (ISO date; default today, UTC).

    Idempotent (one row per company per day, upserted), so a redelivered task is harmless.
    """
    summary = health_scores_recompute(
        company_ids=company_ids, day=dt.date.fromisoformat(day) if day else None
    )
    if company_ids is None:  # a full pass: evaluate the alert rules on the new scores
        alerts_evaluate_queue(day=summary.day)
    return summary.as_dict()
