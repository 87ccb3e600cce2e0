"""A run's bookkeeping: per-model counts, failed objects, batch rows, progress and the lease.

Every object a run takes on ends counted on its model's row, as synced or as an error (with
the first messages kept); failed objects are recorded so the next runs resend them, and
cleared when they succeed. All of it is written from the run's own thread, with the run's
checkpoint (``resume.py``). The lease is kept by a :class:`Heartbeat` thread, so it lives
while one batch retries for minutes, and lapses soon after the worker dies.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from ..models import (
    MAX_ERROR_MESSAGES,
    FailedObject,
    SyncBatch,
    SyncModelResult,
    SyncRun,
    SyncStatus,
)
from .client import BatchOutcome, WriteKeyRejected
from .mapping import Mapped
from .packing import Batch, Ref

logger = logging.getLogger(__name__)

# SyncBatch rows are written in bulk at most this often (and when the run ends).
BATCH_ROWS_EVERY_SECONDS = 1.0


class RunStopped(Exception):
    """Stops a run as failed with a reason (write key rejected, Segment unreachable, …)."""


class LeaseLost(Exception):
    """Someone marked the run failed because its lease lapsed: stop writing to it."""


def lease_length() -> timedelta:
    """The live lease: a worker's heartbeat renews it; a dead run is reaped soon after."""
    return timedelta(seconds=settings.WAREHOUSE_PUSH_LEASE_SECONDS)


def queued_lease_length() -> timedelta:
    """The lease of a run no worker has taken yet (the queue may be busy for a while)."""
    return timedelta(seconds=settings.WAREHOUSE_PUSH_QUEUED_LEASE_SECONDS)


def lease_renew(*, run_id: int) -> bool:
    """Push a running run's lease forward; False when it is no longer running (reaped)."""
    now = timezone.now()
    return bool(
        SyncRun.objects.filter(pk=run_id, status=SyncStatus.RUNNING).update(
            lease_expires_at=now + lease_length(), heartbeat_at=now
        )
    )


class Heartbeat:
    """Renews a run's lease every ``WAREHOUSE_PUSH_HEARTBEAT_SECONDS`` from a thread of its
    own, from when a worker takes the run over until it ends. ``lost`` turns true when the
    run was reaped meanwhile. A database that does not answer stops the renewals (logged once
    per outage): the lease then lapses and the run is reaped, as for a dead worker."""

    def __init__(self, *, run_id: int, every: float | None = None) -> None:
        self.run_id = run_id
        self.every = every or settings.WAREHOUSE_PUSH_HEARTBEAT_SECONDS
        self.lost = False
        self.beats = 0
        self._stop = threading.Event()
        self._failing = False
        self._thread = threading.Thread(
            target=self._run, name=f"push-heartbeat-{run_id}", daemon=True
        )

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.every):
                self.beat()
                if self.lost:
                    return
        finally:
            connection.close()  # this thread's own connection

    def beat(self) -> None:
        try:
            alive = lease_renew(run_id=self.run_id)
        except DatabaseError:
            if not self._failing:
                logger.warning("warehouse_sync_heartbeat_failed", exc_info=True)
            self._failing = True
            connection.close()  # reconnect at the next beat
            return
        if self._failing:
            logger.warning("warehouse_sync_heartbeat_recovered", extra={"run_id": self.run_id})
            self._failing = False
        self.beats += 1
        if not alive:
            # Reaped (no longer running). A row this connection cannot see at all (not
            # committed yet) is not a reaped run: only progress_save, in the run's own
            # transaction, may judge that.
            status = SyncRun.objects.filter(pk=self.run_id).values_list("status", flat=True)
            self.lost = status.first() not in (None, SyncStatus.RUNNING)


@dataclass
class Counters:
    synced: int = 0
    errors: int = 0
    messages: list[str] = field(default_factory=list)

    def fail(self, text: str, n: int = 1) -> None:
        self.errors += n
        if len(self.messages) < MAX_ERROR_MESSAGES:
            self.messages.append(text[:500])


class RunLedger:
    """Accounts for each batch's outcome and keeps the run's rows up to date."""

    def __init__(self, *, run: SyncRun, heartbeat: Heartbeat | None = None) -> None:
        self.run = run
        self.heartbeat = heartbeat
        # model → kind → the largest pk up to which every selected object is accounted.
        self.checkpoint: dict[str, dict[str, int]] = {
            model: dict(reached) for model, reached in (run.checkpoint or {}).items()
        }
        self.max_failed_batches = settings.WAREHOUSE_PUSH_MAX_FAILED_BATCHES
        self.consecutive_failed = 0
        self.counters = {model: Counters() for model in run.synced_models}
        # The per-model result rows, and what was last written to each (see results_save).
        self.result_pks = dict(SyncModelResult.objects.filter(run=run).values_list("model", "pk"))
        self.saved: dict[str, tuple[int, int]] = {}
        # SyncBatch rows not yet written (see _batch_record).
        self.pending_batches: list[SyncBatch] = []
        self.batches_saved_at = time.monotonic()
        # Failed refs from earlier runs (small): cleared when they succeed, with no query
        # per batch for the common case where nothing failed before.
        self.failed_before: dict[tuple[str, str], set[int]] = {}
        for model, kind, pk in FailedObject.objects.values_list("model", "kind", "object_pk"):
            self.failed_before.setdefault((model, kind), set()).add(pk)

    @property
    def synced(self) -> int:
        return sum(c.synced for c in self.counters.values())

    @property
    def errors(self) -> int:
        return sum(c.errors for c in self.counters.values())

    def reject(self, item: Mapped, kind: str, error: str) -> None:
        """A message that was never sent (over Segment's size limit): an error on its model."""
        self.counters[item.model].fail(error)
        self._failed_record([(item.model, kind, item.pk)], error)

    def account(self, batch: Batch, result: BatchOutcome | WriteKeyRejected) -> None:
        """Count a batch's objects as synced or failed; raise RunStopped when the run must
        stop, LeaseLost when it was reaped from under us."""
        if isinstance(result, WriteKeyRejected):
            self._batch_record(batch, None, error=str(result))
            raise RunStopped(str(result)) from result
        self._batch_record(batch, result)
        if result.ok:
            self.consecutive_failed = 0
            self._succeeded(batch.refs)
        else:
            self._batch_failed(batch, result)
        # Accounted, in submission order: every object up to the batch's last one of each
        # model and kind is settled (failed ones are recorded and resent by the next run).
        for model, kind, pk in batch.refs:
            reached = self.checkpoint.setdefault(model, {})
            if pk > reached.get(kind, 0):
                reached[kind] = pk
        # Every batch (two small UPDATEs per ~1,000 messages; the batch rows themselves go in
        # bulk): renews the lease, publishes progress, and notices at once when the run was
        # reaped from under us.
        self.progress_save()

    def _succeeded(self, refs: list[Ref]) -> None:
        cleared: dict[tuple[str, str], list[int]] = {}
        for model, kind, pk in refs:
            self.counters[model].synced += 1
            before = self.failed_before.get((model, kind))
            if before and pk in before:
                cleared.setdefault((model, kind), []).append(pk)
        for (model, kind), pks in cleared.items():
            FailedObject.objects.filter(model=model, kind=kind, object_pk__in=pks).delete()
            self.failed_before[(model, kind)].difference_update(pks)

    def _batch_failed(self, batch: Batch, outcome: BatchOutcome) -> None:
        per_model: dict[str, int] = {}
        for model, _kind, _pk in batch.refs:
            per_model[model] = per_model.get(model, 0) + 1
        for model, n in per_model.items():
            first = next(pk for m, _k, pk in batch.refs if m == model)
            self.counters[model].fail(
                f"batch {batch.sequence}: {n} {model} object(s) from pk {first} failed: "
                f"{outcome.error}",
                n,
            )
        self._failed_record(batch.refs, outcome.error)
        if outcome.transient:
            self.consecutive_failed += 1
            if self.consecutive_failed >= self.max_failed_batches:
                raise RunStopped(
                    f"Segment unreachable: {self.consecutive_failed} batches in a row failed "
                    f"after retries; last error: {outcome.error}"
                )

    def _failed_record(self, refs: list[Ref], error: str) -> None:
        now = timezone.now()
        FailedObject.objects.bulk_create(
            [
                FailedObject(
                    model=model, kind=kind, object_pk=pk, run=self.run, error=error, failed_at=now
                )
                for model, kind, pk in refs
            ],
            update_conflicts=True,
            unique_fields=["model", "kind", "object_pk"],
            # failed_at stays the first failure's: retries stop after its retention.
            update_fields=["run", "error"],
            batch_size=1000,
        )

    def _batch_record(self, batch: Batch, outcome: BatchOutcome | None, error: str = "") -> None:
        self.pending_batches.append(
            SyncBatch(
                run=self.run,
                sequence=batch.sequence,
                messages=batch.count,
                body_bytes=len(batch.body),
                status_code=outcome.status_code if outcome else None,
                attempts=outcome.attempts if outcome else 1,
                attempt_log=outcome.attempt_log if outcome else [],
                duration_ms=outcome.duration_ms if outcome else 0,
                ok=bool(outcome and outcome.ok),
                error=(outcome.error if outcome else error)[:2000],
                sent_at=timezone.now(),
            )
        )
        # One INSERT per second or so instead of one per batch (a full push sends hundreds).
        if time.monotonic() - self.batches_saved_at >= BATCH_ROWS_EVERY_SECONDS:
            self.batches_save()

    def batches_save(self) -> None:
        """Write the batch rows recorded since the last save."""
        if self.pending_batches:
            SyncBatch.objects.bulk_create(self.pending_batches)
            self.pending_batches = []
        self.batches_saved_at = time.monotonic()

    def progress_save(self) -> None:
        now = timezone.now()
        alive = SyncRun.objects.filter(pk=self.run.pk, status=SyncStatus.RUNNING).update(
            lease_expires_at=now + lease_length(),
            heartbeat_at=now,
            objects_synced=self.synced,
            errors=self.errors,
            checkpoint=self.checkpoint,
        )
        self.results_save()
        if not alive or (self.heartbeat is not None and self.heartbeat.lost):
            raise LeaseLost()

    def results_save(self) -> None:
        """Write the counters of the models that changed since the last save (one UPDATE per
        such model; a batch usually holds a single model)."""
        for model, counters in self.counters.items():
            pk = self.result_pks.get(model)
            state = (counters.synced, counters.errors)
            if pk is None or self.saved.get(model) == state:
                continue
            SyncModelResult.objects.filter(pk=pk).update(
                objects_synced=counters.synced,
                errors=counters.errors,
                error_messages=counters.messages,
            )
            self.saved[model] = state
