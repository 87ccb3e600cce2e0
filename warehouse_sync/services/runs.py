"""Sync runs: start (single-flight lease), execute (map, pack, send, count), finish.

The trigger (beat, the admin button, the command) creates the run row and takes the lease in
its own request, so a second trigger is refused at once; the worker then takes the run over,
renews the lease while it works, and a run whose worker died lapses and is marked failed by
the next trigger or by the beat check.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations.models import IntegrationSettings
from integrations.services import integration_ensure
from planhat_segment.models import SYNCABLE_MODELS

from ..models import (
    MAX_ERROR_MESSAGES,
    FailedObject,
    FailedObjectKind,
    SyncBatch,
    SyncModelResult,
    SyncRun,
    SyncStatus,
    SyncTrigger,
)
from . import changes, mapping
from .client import BatchOutcome, SegmentClient, WriteKeyRejected

logger = logging.getLogger(__name__)

# SyncBatch rows are written in bulk at most this often (and when the run ends).
BATCH_ROWS_EVERY_SECONDS = 1.0

# Fixed order: companies first, so a warehouse sees the group before its members.
MODEL_ORDER = ("company", "enduser", "license", "asset", "project")


class SyncRefused(Exception):
    """A push cannot start; ``message`` says why in plain words, for the admin or the shell."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _RunStopped(Exception):
    """Stops a run as failed with a reason (write key rejected, Segment unreachable, …)."""


class _LeaseLost(Exception):
    """Someone marked the run failed because its lease lapsed: stop writing to it."""


def _lease_seconds() -> timedelta:
    return timedelta(seconds=settings.WAREHOUSE_PUSH_LEASE_SECONDS)


def sync_runs_reap_lapsed(*, now: datetime | None = None) -> list[int]:
    """Mark failed every running run whose lease lapsed (its worker stopped). Idempotent."""
    now = now or timezone.now()
    reaped = []
    for run in SyncRun.objects.filter(status=SyncStatus.RUNNING, lease_expires_at__lt=now):
        # Conditional: a worker renewing at this very moment wins, and the run stays alive.
        updated = SyncRun.objects.filter(
            pk=run.pk, status=SyncStatus.RUNNING, lease_expires_at=run.lease_expires_at
        ).update(
            status=SyncStatus.FAILED,
            finished_at=now,
            duration=now - run.started_at,
            error=(f"worker stopped; lease lapsed at {run.lease_expires_at:%Y-%m-%d %H:%M:%S} UTC"),
        )
        if updated:
            reaped.append(run.pk)
            logger.warning("warehouse_sync_run_lapsed", extra={"run_id": run.pk})
    return reaped


def _models_for(*, integration: IntegrationSettings, models: list[str] | None) -> list[str]:
    synced = [m for m in MODEL_ORDER if m in (integration.synced_models or [])]
    if models is None:
        chosen = synced
    else:
        unknown = sorted(set(models) - set(SYNCABLE_MODELS))
        if unknown:
            raise SyncRefused(
                f"Unknown model(s): {', '.join(unknown)}. Choose from: {', '.join(MODEL_ORDER)}."
            )
        not_synced = sorted(set(models) - set(synced))
        if not_synced:
            raise SyncRefused(
                f"Not among the synced models of the integration: {', '.join(not_synced)}. "
                "Add them to the synced models first."
            )
        chosen = [m for m in MODEL_ORDER if m in models]
    if not chosen:
        raise SyncRefused("No models are selected for the push to Segment.")
    return chosen


def sync_run_refusal(*, integration: IntegrationSettings) -> str | None:
    """Why a push cannot start right now (section off, no write key), or None."""
    if not integration.warehouse_enabled:
        return (
            "The Segment data warehouse section is off: turn it on in the Segment "
            "integration settings to push data to Segment."
        )
    if not integration.write_key:
        return "No Segment write key is set: enter the source's write key first."
    return None


def sync_run_start(
    *,
    trigger: str,
    full: bool = False,
    models: list[str] | None = None,
    enqueue: bool = True,
) -> SyncRun:
    """Create a running run and take the lease now; enqueue ``warehouse_sync.run_sync`` on commit.

    Raises SyncRefused (with a plain-words message) when section 3 is off, no write key is
    set, the models are not synced, or another run holds the lease. ``enqueue=False`` leaves
    the run for the caller to execute in-process (``push_to_segment --wait``).
    """
    SyncTrigger(trigger)  # ValueError on a typo, before anything is written
    integration = integration_ensure()
    refusal = sync_run_refusal(integration=integration)
    if refusal:
        raise SyncRefused(refusal)
    chosen = _models_for(integration=integration, models=models)
    with transaction.atomic():
        sync_runs_reap_lapsed()
        now = timezone.now()
        try:
            # The partial unique constraint on status=running makes this INSERT the lock:
            # of two racing triggers exactly one commits (PostgreSQL and SQLite alike).
            with transaction.atomic():
                run = SyncRun.objects.create(
                    trigger=trigger,
                    full=full,
                    synced_models=chosen,
                    started_at=now,
                    lease_expires_at=now + _lease_seconds(),
                    heartbeat_at=now,
                )
        except IntegrityError:
            running = SyncRun.objects.filter(status=SyncStatus.RUNNING).first()
            since = f" since {running.started_at:%Y-%m-%d %H:%M:%S} UTC" if running else ""
            raise SyncRefused(
                f"A push to Segment is already running{since}; wait for it to finish."
            ) from None
        SyncModelResult.objects.bulk_create(
            [SyncModelResult(run=run, model=model) for model in chosen]
        )
        if enqueue:
            transaction.on_commit(lambda: _enqueue(run.pk), robust=True)
    logger.info(
        "warehouse_sync_run_started",
        extra={"run_id": run.pk, "trigger": trigger, "full": full, "models": chosen},
    )
    return run


def _enqueue(run_id: int) -> None:
    from ..tasks import run_sync

    try:
        # retry=False: with the broker down, fail in a second rather than hang (DESIGN §7).
        run_sync.apply_async(args=[run_id], queue="warehouse", retry=False)
    except Exception as exc:  # any broker error: the run must not sit "running" for nothing
        logger.exception("warehouse_sync_enqueue_failed", extra={"run_id": run_id})
        _run_close(
            run_id=run_id,
            status=SyncStatus.FAILED,
            error=f"could not queue the push (broker unreachable?): {type(exc).__name__}",
        )


def _run_take_over(*, run_id: int) -> SyncRun | None:
    """The worker claims the run: only a running run with a live lease can be taken over."""
    now = timezone.now()
    taken = SyncRun.objects.filter(
        pk=run_id, status=SyncStatus.RUNNING, lease_expires_at__gte=now
    ).update(lease_expires_at=now + _lease_seconds(), heartbeat_at=now)
    if not taken:
        return None
    return SyncRun.objects.get(pk=run_id)


def _run_close(*, run_id: int, status: str, error: str = "", **counts) -> bool:
    now = timezone.now()
    run = SyncRun.objects.filter(pk=run_id).only("started_at").first()
    if run is None:
        return False
    return bool(
        SyncRun.objects.filter(pk=run_id, status=SyncStatus.RUNNING).update(
            status=status,
            error=error[:2000],
            finished_at=now,
            duration=now - run.started_at,
            lease_expires_at=None,
            heartbeat_at=now,
            **counts,
        )
    )


@dataclass
class _Counters:
    synced: int = 0
    errors: int = 0
    messages: list[str] = field(default_factory=list)

    def fail(self, text: str, n: int = 1) -> None:
        self.errors += n
        if len(self.messages) < MAX_ERROR_MESSAGES:
            self.messages.append(text[:500])


class _Pusher:
    """Packs serialised messages into batches under Segment's limits and accounts for each."""

    ENVELOPE_START = b'{"batch":['

    def __init__(self, *, run: SyncRun, client: SegmentClient, models: list[str]) -> None:
        self.run = run
        self.client = client
        self.max_bytes = settings.WAREHOUSE_PUSH_MAX_BATCH_BYTES
        self.max_messages = settings.WAREHOUSE_PUSH_MAX_BATCH_MESSAGES
        self.max_message_bytes = settings.WAREHOUSE_PUSH_MAX_MESSAGE_BYTES
        self.max_failed_batches = settings.WAREHOUSE_PUSH_MAX_FAILED_BATCHES
        self.counters = {model: _Counters() for model in models}
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
        self.concurrency = max(1, settings.WAREHOUSE_PUSH_CONCURRENCY)
        # HTTP only in these threads; every database write stays in the run's own thread.
        self.pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="push")
        self.in_flight: deque[tuple] = deque()
        self.buffer: list[bytes] = []
        self.refs: list[tuple[str, str, int]] = []
        self.size = 0
        self.sequence = 0
        self.consecutive_failed = 0
        self.envelope_end = (
            b'],"sentAt":"%s","context":{"library":{"name":' % (timezone.now().isoformat().encode())
            + b'"planhat-segment-warehouse","version":"0.1.0"}}}'
        )

    def add(self, *, kind: str, item: mapping.Mapped) -> None:
        self.add_many(kind=kind, items=(item,))

    def add_many(self, *, kind: str, items: Iterable[mapping.Mapped]) -> None:
        """Pack messages in order, flushing a batch before it would exceed a limit."""
        # The hot loop of a push (once per object): limits and the envelope in locals.
        max_message_bytes, max_messages = self.max_message_bytes, self.max_messages
        # Room for the messages: the cap less the envelope (the commas are counted below).
        room = self.max_bytes - len(self.ENVELOPE_START) - len(self.envelope_end)
        for item in items:
            message = item.message
            n = len(message)
            if n > max_message_bytes:
                error = (
                    f"{item.model} {item.pk}: message of {n:,} bytes is over Segment's "
                    f"32 KB limit (custom fields too large?)"
                )
                self.counters[item.model].fail(error)
                self._failed_record([(item.model, kind, item.pk)], error)
                continue
            count = len(self.buffer)
            if count and (self.size + n + count + 1 > room or count >= max_messages):
                self.flush()
            self.buffer.append(message)
            self.refs.append((item.model, kind, item.pk))
            self.size += n

    def flush(self, *, drain: bool = False) -> None:
        """Send the buffer; keep up to WAREHOUSE_PUSH_CONCURRENCY - 1 batches in flight while
        the next one is read and packed, and account for outcomes in submission order."""
        if self.buffer:
            body = self.ENVELOPE_START + b",".join(self.buffer) + self.envelope_end
            refs, count = self.refs, len(self.buffer)
            self.buffer, self.refs, self.size = [], [], 0
            self.sequence += 1
            self.client.pace(count)
            future = self.pool.submit(self.client.post, body=body)
            self.in_flight.append((future, len(body), count, refs, self.sequence))
        while self.in_flight and (drain or len(self.in_flight) >= self.concurrency):
            self._outcome_account(*self.in_flight.popleft())

    def _outcome_account(
        self, future: Future, body_bytes: int, count: int, refs: list, sequence: int
    ) -> None:
        try:
            outcome = future.result()
        except WriteKeyRejected as exc:
            self._batch_record(body_bytes, count, sequence, None, error=str(exc))
            raise _RunStopped(str(exc)) from exc
        self._batch_record(body_bytes, count, sequence, outcome)
        if outcome.ok:
            self.consecutive_failed = 0
            self._succeeded(refs)
        else:
            self._batch_failed(refs, outcome, sequence)
        # Every batch (two small UPDATEs per ~1,000 messages; the batch rows themselves go in
        # bulk, see _batch_record): renews the lease, publishes progress, and notices at once
        # when the run was reaped from under us.
        self.progress_save()

    def close(self) -> None:
        # Batches still in flight when a run stops are not accounted: the run failed and
        # its mark does not move, so the next run sends those objects again.
        for future, *_rest in self.in_flight:
            future.cancel()
        self.pool.shutdown(wait=True)
        self.batches_save()

    def _succeeded(self, refs: list[tuple[str, str, int]]) -> None:
        cleared: dict[tuple[str, str], list[int]] = {}
        for model, kind, pk in refs:
            self.counters[model].synced += 1
            before = self.failed_before.get((model, kind))
            if before and pk in before:
                cleared.setdefault((model, kind), []).append(pk)
        for (model, kind), pks in cleared.items():
            FailedObject.objects.filter(model=model, kind=kind, object_pk__in=pks).delete()
            self.failed_before[(model, kind)].difference_update(pks)

    def _batch_failed(
        self, refs: list[tuple[str, str, int]], outcome: BatchOutcome, sequence: int
    ) -> None:
        per_model: dict[str, int] = {}
        for model, _kind, _pk in refs:
            per_model[model] = per_model.get(model, 0) + 1
        for model, n in per_model.items():
            first = next(pk for m, _k, pk in refs if m == model)
            self.counters[model].fail(
                f"batch {sequence}: {n} {model} object(s) from pk {first} failed: {outcome.error}",
                n,
            )
        self._failed_record(refs, outcome.error)
        if outcome.transient:
            self.consecutive_failed += 1
            if self.consecutive_failed >= self.max_failed_batches:
                raise _RunStopped(
                    f"Segment unreachable: {self.consecutive_failed} batches in a row failed "
                    f"after retries; last error: {outcome.error}"
                )

    def _failed_record(self, refs: list[tuple[str, str, int]], error: str) -> None:
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
            update_fields=["run", "error", "failed_at"],
            batch_size=1000,
        )

    def _batch_record(
        self,
        body_bytes: int,
        count: int,
        sequence: int,
        outcome: BatchOutcome | None,
        error: str = "",
    ) -> None:
        self.pending_batches.append(
            SyncBatch(
                run=self.run,
                sequence=sequence,
                messages=count,
                body_bytes=body_bytes,
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
            lease_expires_at=now + _lease_seconds(),
            heartbeat_at=now,
            objects_synced=sum(c.synced for c in self.counters.values()),
            errors=sum(c.errors for c in self.counters.values()),
        )
        self.results_save()
        if not alive:
            raise _LeaseLost()

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


def client_for(*, integration: IntegrationSettings) -> SegmentClient:
    return SegmentClient(base_url=integration.segment_base_url, write_key=integration.write_key)


def sync_run_execute(*, run_id: int, client: SegmentClient | None = None) -> SyncRun | None:
    """Push the run's objects to Segment and close the run; None if it is no longer running.

    Ends ``succeeded`` (every object accepted), ``partial`` (some objects failed; they are
    retried by the next run) or ``failed`` (stopped: write key rejected, Segment unreachable,
    section switched off, an unexpected error); a failed run does not move the change mark.
    """
    run = _run_take_over(run_id=run_id)
    if run is None:
        logger.info("warehouse_sync_run_not_running", extra={"run_id": run_id})
        return None
    integration = integration_ensure()
    refusal = sync_run_refusal(integration=integration)
    if refusal:
        _run_close(run_id=run.pk, status=SyncStatus.FAILED, error=refusal)
        return SyncRun.objects.get(pk=run.pk)
    client = client or client_for(integration=integration)
    pusher = _Pusher(run=run, client=client, models=list(run.synced_models))
    chunk_size = settings.WAREHOUSE_PUSH_CHUNK_SIZE
    try:
        for model in run.synced_models:
            since = None if run.full else changes.change_mark(model=model, exclude_run_id=run.pk)
            for rows in changes.object_chunks(model=model, since=since, size=chunk_size):
                pusher.add_many(kind=FailedObjectKind.OBJECT, items=mapping.chunk_map(model, rows))
            for rows in changes.tombstone_chunks(model=model, since=since, size=chunk_size):
                pusher.add_many(kind=FailedObjectKind.TOMBSTONE, items=mapping.tombstones_map(rows))
        pusher.flush(drain=True)
    except _LeaseLost:
        logger.error("warehouse_sync_lease_lost", extra={"run_id": run.pk})
        return SyncRun.objects.get(pk=run.pk)
    except _RunStopped as exc:
        return _finish(pusher, status=SyncStatus.FAILED, error=str(exc))
    except Exception as exc:
        # Recorded on the run (the admin sees it) and logged with the traceback.
        logger.exception("warehouse_sync_run_crashed", extra={"run_id": run.pk})
        return _finish(pusher, status=SyncStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
    finally:
        pusher.close()
        client.close()
    # Earlier failures not retried by this run no longer exist (deleted, now test data).
    FailedObject.objects.filter(model__in=run.synced_models).exclude(run=run).delete()
    errors = sum(c.errors for c in pusher.counters.values())
    if errors:
        return _finish(
            pusher,
            status=SyncStatus.PARTIAL,
            error=f"{errors} object(s) failed; they are retried by the next run.",
        )
    return _finish(pusher, status=SyncStatus.SUCCEEDED)


def _finish(pusher: _Pusher, *, status: str, error: str = "") -> SyncRun:
    pusher.batches_save()
    pusher.results_save()
    closed = _run_close(
        run_id=pusher.run.pk,
        status=status,
        error=error,
        objects_synced=sum(c.synced for c in pusher.counters.values()),
        errors=sum(c.errors for c in pusher.counters.values()),
    )
    run = SyncRun.objects.get(pk=pusher.run.pk)
    logger.info(
        "warehouse_sync_run_finished",
        extra={
            "run_id": run.pk,
            "status": run.status,
            "closed": closed,
            "objects_synced": run.objects_synced,
            "errors": run.errors,
        },
    )
    return run
