"""What a run sends per model, and how the next run resumes one that died.

Found by fault-injection runs: a push whose worker died stayed "running", then failed, and
never resumed; the next run started over. Now every run records, per model and kind
(object / tombstone), a *checkpoint*: the largest pk up to which every object it selected
has been accounted (``ledger.RunLedger``, after every batch). The next run of that model,
scheduled or manual, resumes a run that failed (worker died, database cut, Segment
unreachable) from its checkpoint:

- objects past the checkpoint, selected as the dead run selected them (its change mark, or
  everything for a full run), and
- every object changed since the dead run started (less the safety margin), whatever its
  pk: those may have changed after the dead run read them;
- objects recorded as failed are always included (``changes.objects_changed``).

Objects of batches in flight when the run died are past the checkpoint, so they are sent
again, with the same message ids when unchanged (Segment dedupes them). A resumed run that
dies too is resumed in turn (the checkpoints only move forward). A run that completes moves
the change mark as before, and nothing is resumed after it.

A scope, as stored on the run (``SyncRun.scope[model]``): ``since`` (ISO time or None:
everything), ``after`` (kind → pk; objects at or below it are left to ``recent``),
``recent`` (ISO time or None), ``resumes`` (the run id it resumes, or None).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils.dateparse import parse_datetime

from ..models import FailedObjectKind, SyncModelResult, SyncRun, SyncStatus
from . import changes
from .mapping import OBJECT_FIELDS, TOMBSTONE_FIELDS

KINDS = (FailedObjectKind.OBJECT.value, FailedObjectKind.TOMBSTONE.value)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _time(text: str | None) -> datetime | None:
    return parse_datetime(text) if text else None


def _resumable(*, run: SyncRun, model: str) -> SyncRun | None:
    """The latest earlier run of ``model`` when it failed (died or stopped), else None."""
    previous = (
        SyncModelResult.objects.filter(model=model, run__started_at__lte=run.started_at)
        .exclude(run_id=run.pk)
        .select_related("run")
        .order_by("-run__started_at", "-run_id")
        .first()
    )
    if previous is None or previous.run.status != SyncStatus.FAILED:
        return None
    if model not in (previous.run.scope or {}):
        return None  # a run from before checkpoints existed, or that never got going
    return previous.run


def model_scope(*, run: SyncRun, model: str) -> dict:
    """The scope of ``model`` for ``run``: a fresh one, or the resumption of a failed run."""
    dead = _resumable(run=run, model=model)
    if dead is not None:
        earlier = dead.scope[model]
        # A full run after an incremental one sends everything anyway: nothing to resume.
        if not run.full or earlier["since"] is None:
            reached = (dead.checkpoint or {}).get(model, {})
            margin = timedelta(seconds=settings.WAREHOUSE_PUSH_SAFETY_MARGIN_SECONDS)
            return {
                "since": earlier["since"],
                "after": {
                    kind: max(earlier["after"].get(kind, 0), reached.get(kind, 0)) for kind in KINDS
                },
                "recent": earlier["recent"] or _iso(dead.started_at - margin),
                "resumes": dead.pk,
            }
    since = None if run.full else changes.change_mark(model=model, exclude_run_id=run.pk)
    return {"since": _iso(since), "after": {}, "recent": None, "resumes": None}


def run_scope(*, run: SyncRun) -> dict[str, dict]:
    """Every model's scope for ``run`` (stored on the run when its worker takes it over)."""
    return {model: model_scope(run=run, model=model) for model in run.synced_models}


def _scoped(scope: dict, kind: str, selected) -> QuerySet:
    qs = selected(since=_time(scope["since"]))
    after = scope["after"].get(kind, 0)
    if after:
        qs = qs.filter(pk__gt=after) | selected(since=_time(scope["recent"]))
    return qs


def object_chunks(*, model: str, scope: dict, size: int) -> Iterator[list[tuple]]:
    """The scope's objects of ``model`` in pk order, as tuples in ``OBJECT_FIELDS`` order."""

    def selected(since):
        return changes.objects_changed(model=model, since=since)

    qs = _scoped(scope, FailedObjectKind.OBJECT, selected)
    return changes.chunks(qs, fields=OBJECT_FIELDS[model], size=size)


def tombstone_chunks(*, model: str, scope: dict, size: int) -> Iterator[list[dict]]:
    """The scope's deletions of ``model`` in pk order, as dicts keyed by ``TOMBSTONE_FIELDS``."""

    def selected(since):
        return changes.tombstones_changed(model=model, since=since)

    qs = _scoped(scope, FailedObjectKind.TOMBSTONE, selected)
    for rows in changes.chunks(qs, fields=TOMBSTONE_FIELDS, size=size):
        yield [dict(zip(TOMBSTONE_FIELDS, row, strict=True)) for row in rows]
