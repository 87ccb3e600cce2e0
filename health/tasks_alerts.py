"""Celery tasks of alerts and notifications: thin wrappers around the services.

``health.evaluate_alerts`` runs on ``default`` after each daily score pass (queued by
``health.recompute_scores``) and on demand. ``health.deliver_notifications`` runs on a queue
of its own, ``notifications``, so a slow or dead receiver never holds an ingest or
warehouse worker; beat runs it every minute as the sweep that retries due deliveries.
"""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.conf import settings

from .alerts import alerts_evaluate
from .notifications import deliveries_send_due


# Default entries for the schedules registry (django-celery-beat, created once, editable in
# the admin), with the fields of ``planhat_segment.schedules.PeriodicDefault``, so each maps
# as ``PeriodicDefault(**entry)``. The evaluation itself is chained after the daily score
# recompute (``health.recompute_scores`` queues it), so only the delivery sweep needs one.
def alert_schedules() -> list[dict]:
    return [
        {
            "name": "Send due alert notifications (health)",
            "task": "health.deliver_notifications",
            "queue": "notifications",
            "every_seconds": settings.NOTIFICATIONS_SWEEP_EVERY_SECONDS,
            "description": "Sends the notification deliveries that are due: new ones a lost "
            "nudge left behind, and retries whose next attempt time has come.",
        },
    ]


@shared_task(name="health.evaluate_alerts", queue="default", ignore_result=True)
def evaluate_alerts(day: str | None = None, rule_ids: list[int] | None = None) -> dict:
    """Evaluate the enabled rules (all, or ``rule_ids``) for ``day`` (ISO date; default today,
    UTC). Idempotent (one active alert per rule × company), so a redelivery is harmless."""
    summary = alerts_evaluate(day=dt.date.fromisoformat(day) if day else None, rule_ids=rule_ids)
    return summary.as_dict()


@shared_task(name="health.deliver_notifications", queue="notifications", ignore_result=True)
def deliver_notifications(max_seconds: float | None = None) -> dict:
    """Send the due notification deliveries (leased rows, so runs in parallel are safe)."""
    return deliveries_send_due(max_seconds=max_seconds).as_dict()
