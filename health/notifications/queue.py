"""Queueing the alert tasks after the current transaction commits (robustly: a broker that is
down is logged, never raised — the periodic sweep, or the next daily pass, catches up)."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction

logger = logging.getLogger(__name__)

NOTIFICATIONS_QUEUE = "notifications"
EVALUATE_QUEUE = "default"
DELIVER_TASK = "health.deliver_notifications"
EVALUATE_TASK = "health.evaluate_alerts"


def _publish(task_name: str, queue: str, kwargs: dict) -> bool:
    from ..tasks_alerts import deliver_notifications, evaluate_alerts

    task = {DELIVER_TASK: deliver_notifications, EVALUATE_TASK: evaluate_alerts}[task_name]
    try:
        # retry=False: with the broker down, fail in a second rather than hang (DESIGN §7).
        task.apply_async(kwargs=kwargs, queue=queue, retry=False)
    except Exception:  # any broker error: the periodic sweep sends the rows anyway
        logger.warning("health_task_enqueue_failed", extra={"task": task_name}, exc_info=True)
        return False
    return True


def notifications_nudge() -> None:
    """Have a ``notifications`` worker send the due deliveries once this transaction commits."""
    transaction.on_commit(lambda: _publish(DELIVER_TASK, NOTIFICATIONS_QUEUE, {}), robust=True)


def alerts_evaluate_queue(*, day: dt.date | None = None) -> None:
    """Queue an evaluation of every enabled rule (for ``day``) once this transaction commits."""
    kwargs = {"day": day.isoformat() if day else None}
    transaction.on_commit(lambda: _publish(EVALUATE_TASK, EVALUATE_QUEUE, kwargs), robust=True)
