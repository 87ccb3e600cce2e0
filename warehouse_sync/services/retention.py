"""Retention of the push's history: sync runs, sync batches, failed objects and tombstones.

Run daily by ``warehouse_sync.purge_history`` (a periodic task, see ``schedules.py``). Each
kind has its own retention in days (``WAREHOUSE_*_RETENTION_DAYS``) and rules that keep what
the push still needs:

- a **failed object** is retried by every run for its retention after it *first* failed, then
  dropped from the retry list (the object goes out again when it next changes, or with a
  full push): a permanently failing object does not keep every run partial forever;
- a **sync run** (with its per-model results and batches) older than its retention goes,
  except a running run, the last completed run of each model (its start is that model's
  change mark: dropping it would make the next push resend everything) and a run that
  still holds failed objects;
- a **sync batch** (one row per request) goes sooner than its run: there are hundreds a run;
- a **tombstone** goes once it is older than its retention *and* a completed push of its
  model has sent it (deleted before that model's change mark, and not waiting as a failed
  deletion). A full push sends the tombstones still kept, not every one ever recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from planhat_segment.models import SYNCABLE_MODELS, Tombstone

from ..models import (
    COMPLETED_STATUSES,
    FailedObject,
    FailedObjectKind,
    SyncBatch,
    SyncModelResult,
    SyncRun,
    SyncStatus,
)
from .changes import change_mark

# Rows deleted per statement, so a first purge of a long history never holds one huge lock.
PURGE_CHUNK = 5_000


@dataclass(frozen=True)
class PurgeSummary:
    failed_objects: int
    runs: int
    batches: int
    tombstones: int


def _cutoff(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)


def _chunked_delete(queryset) -> int:
    """Delete in chunks of pks (each a fast delete: no signal listens to these models)."""
    model, deleted = queryset.model, 0
    while pks := list(queryset.order_by().values_list("pk", flat=True)[:PURGE_CHUNK]):
        deleted += model.objects.filter(pk__in=pks).delete()[0]
    return deleted


def sync_history_purge(*, now: datetime | None = None) -> PurgeSummary:
    """Delete what is past its retention (see the module docstring); returns the counts.

    Failed objects go first, so the runs they held can go in the same pass.
    """
    now = now or timezone.now()
    return PurgeSummary(
        failed_objects=failed_objects_purge(now=now),
        runs=sync_runs_purge(now=now),
        batches=sync_batches_purge(now=now),
        tombstones=tombstones_purge(now=now),
    )


@transaction.atomic
def failed_objects_purge(*, now: datetime) -> int:
    """Stop retrying objects that first failed longer ago than their retention."""
    cutoff = _cutoff(now, settings.WAREHOUSE_FAILED_OBJECT_RETENTION_DAYS)
    return FailedObject.objects.filter(failed_at__lt=cutoff).delete()[0]


def _change_mark_runs() -> set[int]:
    """The last completed run of each model (a loop over the five syncable models)."""
    keep = set()
    for model in SYNCABLE_MODELS:
        last = (
            SyncModelResult.objects.filter(model=model, run__status__in=COMPLETED_STATUSES)
            .order_by("-run__started_at", "-run_id")
            .values_list("run_id", flat=True)
            .first()
        )
        if last is not None:
            keep.add(last)
    return keep


@transaction.atomic
def sync_runs_purge(*, now: datetime) -> int:
    """Delete runs (their results and batches with them) past their retention; returns how
    many runs. Keeps running runs, each model's change-mark run and runs holding failures."""
    old = (
        SyncRun.objects.filter(started_at__lt=_cutoff(now, settings.WAREHOUSE_RUN_RETENTION_DAYS))
        .exclude(status=SyncStatus.RUNNING)
        .exclude(pk__in=_change_mark_runs())
        .exclude(pk__in=FailedObject.objects.values("run_id"))
    )
    pks = list(old.values_list("pk", flat=True))
    if not pks:
        return 0
    deleted = SyncRun.objects.filter(pk__in=pks).delete()[1]
    return deleted.get(SyncRun._meta.label, 0)


def sync_batches_purge(*, now: datetime) -> int:
    """Delete sync batch rows (one per request) past their retention."""
    cutoff = _cutoff(now, settings.WAREHOUSE_BATCH_RETENTION_DAYS)
    return _chunked_delete(SyncBatch.objects.filter(sent_at__lt=cutoff))


def tombstones_purge(*, now: datetime) -> int:
    """Delete tombstones past their retention that a completed push of their model sent."""
    cutoff = _cutoff(now, settings.WAREHOUSE_TOMBSTONE_RETENTION_DAYS)
    deleted = 0
    # A loop over the five syncable models: each has its own change mark.
    for model in SYNCABLE_MODELS:
        mark = change_mark(model=model)
        if mark is None:  # never pushed: every tombstone still waits to be sent
            continue
        waiting = FailedObject.objects.filter(model=model, kind=FailedObjectKind.TOMBSTONE)
        deleted += _chunked_delete(
            Tombstone.objects.filter(model=model, deleted_at__lt=min(cutoff, mark)).exclude(
                pk__in=waiting.values("object_pk")
            )
        )
    return deleted
