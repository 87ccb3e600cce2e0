"""Queueing a recompute on a worker, after the current transaction commits."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from django.db import transaction

logger = logging.getLogger(__name__)

RECOMPUTE_TASK = "health.recompute_scores"
RECOMPUTE_QUEUE = "default"


def health_recompute_queue(
    *, company_ids: Iterable[int] | None = None, day: dt.date | None = None
) -> None:
    """Queue ``health.recompute_scores`` once the transaction commits (robustly: a broker
    that is down is logged, never raised; the daily schedule catches up)."""
    kwargs = _kwargs(company_ids, day)
    if kwargs is not None:
        transaction.on_commit(lambda: _publish(kwargs), robust=True)


def health_recompute_publish(*, company_ids: Iterable[int] | None = None) -> bool:
    """Publish ``health.recompute_scores`` now (for callers already past their commit)."""
    kwargs = _kwargs(company_ids, None)
    return _publish(kwargs) if kwargs is not None else False


def _kwargs(company_ids: Iterable[int] | None, day: dt.date | None) -> dict | None:
    ids = None if company_ids is None else sorted(set(company_ids))
    if ids == []:
        return None
    return {"company_ids": ids, "day": day.isoformat() if day else None}


def _publish(kwargs: dict) -> bool:
    from ..tasks import recompute_scores

    try:
        # retry=False: with the broker down, fail in a second rather than hang (DESIGN §7).
        recompute_scores.apply_async(kwargs=kwargs, queue=RECOMPUTE_QUEUE, retry=False)
    except Exception:  # any broker error: the next scheduled pass recomputes anyway
        logger.warning("health_recompute_enqueue_failed", exc_info=True)
        return False
    return True
