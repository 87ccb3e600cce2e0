"""Recovery after an outage: draining resumes within seconds of a worker being able to work.

Found by fault-injection runs: after Redis came back from an outage, after a worker was
killed and restarted, and after PostgreSQL came back, rows waited two to three minutes for
the beat sweeper. Nothing was lost, but the pipeline looked stuck. Each way back now drains:

- a worker that starts consuming the ``ingest`` queue asks for a drain (Celery's
  ``worker_ready`` signal): rows a killed worker held are pending again and are taken at once;
- a worker whose broker connection comes back asks for a drain (:class:`DrainOnReconnect`,
  a consumer bootstep, started again by Celery after every reconnection), as does each web
  process's nudger once its publish succeeds again (``ingest.nudge``);
- a drain that meets a database error is retried with backoff (``usage.tasks``);
- the sweep, while rows are left pending, drains them and runs again soon
  (:func:`inbox_sweep_follow_up`) instead of waiting a whole beat interval.

Every request for a drain goes through the process's nudger (one publish path, logged once
per outage).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import bootsteps
from celery.signals import worker_ready
from django.conf import settings
from django.utils import timezone

from .ingest.nudge import DRAIN_QUEUE, nudger
from .models import InboxEvent, InboxStatus

logger = logging.getLogger(__name__)


def _consumes_ingest(consumer) -> bool:
    try:
        return DRAIN_QUEUE in consumer.app.amqp.queues.consume_from
    except AttributeError:  # no queue selection: a worker consumes every queue
        return True


def drain_request(*, reason: str) -> bool:
    """Publish one drain now (through this process's nudger); False when the broker refused."""
    published = nudger().publish()
    logger.info("usage_drain_requested", extra={"reason": reason, "published": published})
    return published


@worker_ready.connect(dispatch_uid="usage_drain_when_worker_ready")
def drain_when_worker_ready(sender=None, **kwargs) -> None:
    """A worker of the ``ingest`` queue is ready: drain what waited (a killed worker's claim,
    rows stored while no worker ran)."""
    if sender is not None and _consumes_ingest(sender):
        drain_request(reason="worker_ready")


class DrainOnReconnect(bootsteps.StartStopStep):
    """Consumer bootstep: Celery starts it with the consumer, and again after every
    reconnection to the broker; from the second start on, a worker of the ``ingest`` queue
    asks for a drain (the first is ``worker_ready``'s)."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent, **kwargs) -> None:
        super().__init__(parent, **kwargs)
        self.starts = 0

    def start(self, parent) -> None:
        self.starts += 1
        if self.starts > 1 and _consumes_ingest(parent):
            drain_request(reason="broker_reconnected")


def _register_bootstep() -> None:
    from planhat_segment.celery import app

    app.steps["consumer"].add(DrainOnReconnect)


_register_bootstep()


def pending_overdue(*, now: datetime | None = None) -> bool:
    """Whether a pending row has waited longer than ``USAGE_SWEEP_SOON_SECONDS`` (a nudge
    would have drained it by then: its trigger was lost)."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.USAGE_SWEEP_SOON_SECONDS)
    return InboxEvent.objects.filter(status=InboxStatus.PENDING, received_at__lt=cutoff).exists()


def inbox_sweep_follow_up(*, follow_up: int, now: datetime | None = None) -> bool:
    """After a sweep: drain rows left pending past ``USAGE_SWEEP_SOON_SECONDS``, and say
    whether the sweep should run again in that many seconds (rows are still pending, and
    fewer than ``USAGE_SWEEP_FOLLOW_UPS`` follow-ups ran since the beat's sweep).

    The follow-ups of one beat sweep end before the next one starts (with the defaults,
    5 × 10 s < 60 s), so at most one chain runs at a time.
    """
    from .services import inbox_drain

    if pending_overdue(now=now):
        inbox_drain()
    if follow_up >= settings.USAGE_SWEEP_FOLLOW_UPS:
        return False
    return InboxEvent.objects.filter(status=InboxStatus.PENDING).exists()
