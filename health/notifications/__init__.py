"""Notifications of alerts: email and signed webhooks, as delivery rows with attempts."""

from .delivery import (
    SweepSummary,
    deliveries_retry,
    deliveries_send_due,
    delivery_attempt,
    signature,
)
from .queue import NOTIFICATIONS_QUEUE, alerts_evaluate_queue, notifications_nudge

__all__ = [
    "NOTIFICATIONS_QUEUE",
    "SweepSummary",
    "alerts_evaluate_queue",
    "deliveries_retry",
    "deliveries_send_due",
    "delivery_attempt",
    "notifications_nudge",
    "signature",
]
