"""Sync runs: start (single-flight lease), execute (map, pack, send, count), finish.

The trigger (beat, the admin button, the command) creates the run row and takes the lease in
its own request, so a second trigger is refused at once; the worker then takes the run over,
a heartbeat thread renews the lease while it works (``WAREHOUSE_PUSH_LEASE_SECONDS``), and a
run whose worker died lapses and is marked failed by the next trigger or by the beat check,
within a minute. The next run resumes it from its checkpoints (``resume.py``).

Executing composes three units, one role each: ``changes`` + ``mapping`` read and map,
``packing.BatchPacker`` packs under Segment's limits, ``inflight.InFlight`` posts from a small
thread pool, and ``ledger.RunLedger`` accounts for every object and keeps the lease.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from integrations.models import IntegrationSettings
from integrations.services import integration_ensure
from planhat_segment.models import SYNCABLE_MODELS

from ..models import (
    FailedObject,
    FailedObjectKind,
    SyncModelResult,
    SyncRun,
    SyncStatus,
    SyncTrigger,
)
from . import mapping, resume
from .client import SegmentClient
from .inflight import InFlight
from .ledger import Heartbeat, LeaseLost, RunLedger, RunStopped, lease_length, queued_lease_length
from .packing import BatchPacker

logger = logging.getLogger(__name__)

# Fixed order: companies first, so a warehouse sees the group before its members.
MODEL_ORDER = ("company", "enduser", "license", "asset", "project")


class SyncRefused(Exception):
    """A push cannot start; ``message`` says why in plain words, for the admin or the shell."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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
                    # Until a worker takes it over (the queue may be busy for a while);
                    # then the heartbeat's short lease.
                    lease_expires_at=now + queued_lease_length(),
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
    """The worker claims the run: only a running run with a live lease can be taken over.

    The run's scope per model (its change mark, or the failed run it resumes) is fixed now.
    """
    now = timezone.now()
    taken = SyncRun.objects.filter(
        pk=run_id, status=SyncStatus.RUNNING, lease_expires_at__gte=now
    ).update(lease_expires_at=now + lease_length(), heartbeat_at=now)
    if not taken:
        return None
    run = SyncRun.objects.get(pk=run_id)
    if not run.scope:
        run.scope = resume.run_scope(run=run)
        SyncRun.objects.filter(pk=run_id).update(scope=run.scope)
    return run


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
    # Checked again by the worker: the section may have been switched off since the trigger.
    integration = integration_ensure()
    refusal = sync_run_refusal(integration=integration)
    if refusal:
        _run_close(run_id=run.pk, status=SyncStatus.FAILED, error=refusal)
        return SyncRun.objects.get(pk=run.pk)
    heartbeat = Heartbeat(run_id=run.pk).start()
    try:
        return _execute(
            run=run, client=client or client_for(integration=integration), heartbeat=heartbeat
        )
    finally:
        heartbeat.stop()


def _execute(*, run: SyncRun, client: SegmentClient, heartbeat: Heartbeat) -> SyncRun | None:
    ledger = RunLedger(run=run, heartbeat=heartbeat)
    flight = InFlight(client=client, concurrency=settings.WAREHOUSE_PUSH_CONCURRENCY)
    try:
        _changes_send(run=run, ledger=ledger, flight=flight)
    except LeaseLost:
        logger.error("warehouse_sync_lease_lost", extra={"run_id": run.pk})
        return _reread(run.pk)
    except RunStopped as exc:
        return _finish_or_leave(ledger, status=SyncStatus.FAILED, error=str(exc))
    except Exception as exc:
        # Recorded on the run (the admin sees it) and logged with the traceback.
        logger.exception("warehouse_sync_run_crashed", extra={"run_id": run.pk})
        return _finish_or_leave(
            ledger, status=SyncStatus.FAILED, error=f"{type(exc).__name__}: {exc}"
        )
    finally:
        flight.close()
        client.close()
        try:
            ledger.batches_save()
        except DatabaseError:
            logger.warning("warehouse_sync_batches_not_saved", extra={"run_id": run.pk})
    try:
        # Earlier failures not retried by this run no longer exist (deleted, now test data).
        FailedObject.objects.filter(model__in=run.synced_models).exclude(run=run).delete()
    except DatabaseError:
        logger.exception("warehouse_sync_run_not_closed", extra={"run_id": run.pk})
        return None
    if ledger.errors:
        return _finish_or_leave(
            ledger,
            status=SyncStatus.PARTIAL,
            error=f"{ledger.errors} object(s) failed; they are retried by the next run.",
        )
    return _finish_or_leave(ledger, status=SyncStatus.SUCCEEDED)


def _finish_or_leave(ledger: RunLedger, *, status: str, error: str = "") -> SyncRun | None:
    """Close the run; when the database cannot be reached (it may be why the run stopped),
    say so and leave the run to its lease: the heartbeat stops with this thread, the lease
    lapses, and the reaper (or the next trigger) marks it failed within a minute."""
    try:
        return _finish(ledger, status=status, error=error)
    except DatabaseError:
        logger.exception(
            "warehouse_sync_run_not_closed",
            extra={"run_id": ledger.run.pk, "status": status, "error": error[:500]},
        )
        return None


def _reread(run_id: int) -> SyncRun | None:
    try:
        return SyncRun.objects.get(pk=run_id)
    except DatabaseError:
        return None


def _changes_send(*, run: SyncRun, ledger: RunLedger, flight: InFlight) -> None:
    """Read, map, pack and post each model's changes (objects, then deletions), in order."""
    packer = BatchPacker(sent_at=timezone.now(), reject=ledger.reject)
    chunk_size = settings.WAREHOUSE_PUSH_CHUNK_SIZE

    def send(kind: str, items: Iterable[mapping.Mapped]) -> None:
        for batch in packer.pack(kind=kind, items=items):
            flight.submit(batch)
            for done in flight.done():
                ledger.account(*done)

    for model in run.synced_models:
        scope = run.scope[model]
        for rows in resume.object_chunks(model=model, scope=scope, size=chunk_size):
            send(FailedObjectKind.OBJECT, mapping.chunk_map(model, rows))
        for rows in resume.tombstone_chunks(model=model, scope=scope, size=chunk_size):
            send(FailedObjectKind.TOMBSTONE, mapping.tombstones_map(rows))
    last = packer.rest()
    if last is not None:
        flight.submit(last)
    for done in flight.done(drain=True):
        ledger.account(*done)


def _finish(ledger: RunLedger, *, status: str, error: str = "") -> SyncRun:
    ledger.batches_save()
    ledger.results_save()
    closed = _run_close(
        run_id=ledger.run.pk,
        status=status,
        error=error,
        objects_synced=ledger.synced,
        errors=ledger.errors,
    )
    run = SyncRun.objects.get(pk=ledger.run.pk)
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
