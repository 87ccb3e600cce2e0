"""Reads of the push to Segment: run history and the last run's summary."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Prefetch, QuerySet
from django.urls import reverse
from django.utils import timezone

from .models import FailedObject, FailedObjectKind, SyncModelResult, SyncRun, SyncStatus


def sync_runs_list() -> QuerySet[SyncRun]:
    """Runs, newest first, with their per-model results prefetched (one extra query)."""
    return SyncRun.objects.order_by("-started_at", "-id").prefetch_related(
        Prefetch("results", queryset=SyncModelResult.objects.order_by("id"))
    )


def last_sync_summary() -> dict | None:
    """The running run if there is one, else the last finished run; None before any run.

    Keys: id, started_at, finished_at, duration (timedelta; None while running),
    duration_seconds, status, status_label, trigger, trigger_label, full, error,
    objects_synced, errors, models (rows: model, objects_synced, errors, error_messages),
    history_url (the run history changelist) and admin_url (this run's admin page).
    """
    run = _current_run()
    return None if run is None else _summary(run)


def _current_run(run_id: int | None = None) -> SyncRun | None:
    if run_id is not None:
        return sync_runs_list().filter(pk=run_id).first()
    return (
        sync_runs_list().filter(status=SyncStatus.RUNNING).first()
        or sync_runs_list().exclude(status=SyncStatus.RUNNING).first()
    )


def _summary(run: SyncRun) -> dict:
    return {
        "id": run.pk,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "heartbeat_at": run.heartbeat_at,
        "duration": run.duration,
        "duration_seconds": run.duration.total_seconds() if run.duration else None,
        "status": run.status,
        "status_label": run.get_status_display(),
        "trigger": run.trigger,
        "trigger_label": run.get_trigger_display(),
        "full": run.full,
        "error": run.error,
        "objects_synced": run.objects_synced,
        "errors": run.errors,
        "models": [
            {
                "model": r.model,
                "objects_synced": r.objects_synced,
                "errors": r.errors,
                "error_messages": list(r.error_messages or []),
            }
            for r in run.results.all()
        ],
        "history_url": reverse("admin:warehouse_sync_syncrun_changelist"),
        "admin_url": reverse("admin:warehouse_sync_syncrun_change", args=[run.pk]),
    }


def sync_run_progress(*, run_id: int | None = None, now: datetime | None = None) -> dict | None:
    """A run's progress as JSON-ready values, for the integration page's poll while a push
    runs: the given run, else the running one, else the last. None when there is none.

    The counts are those the run's ledger writes after every batch (objects synced and
    errors, per model and in total); ``elapsed_seconds`` runs on while the run does.
    """
    run = _current_run(run_id)
    if run is None:
        return None
    now = now or timezone.now()
    summary = _summary(run)
    running = run.status == SyncStatus.RUNNING
    elapsed = (now - run.started_at) if running or run.duration is None else run.duration
    summary.pop("duration")
    for key in ("started_at", "finished_at", "heartbeat_at"):
        value = summary[key]
        summary[key] = value.isoformat() if value else None
    summary["running"] = running
    summary["elapsed_seconds"] = round(max(elapsed.total_seconds(), 0.0), 1)
    for row in summary["models"]:
        row["error_messages"] = row["error_messages"][:3]
    return summary


def run_failed_objects(*, run_id: int, limit: int = 200) -> list[dict]:
    """The objects whose latest failure was in run ``run_id``, by name and external id, for
    the run's page: one query for the failures and one per model involved (never per object).

    Rows: model, kind ("object" or "tombstone"), object_pk, name, external_id, error,
    admin_url (the object's admin page; None for a deletion or an object gone since).
    """
    from planhat_segment.models import SYNCABLE_MODELS, Tombstone

    failures = list(
        FailedObject.objects.filter(run_id=run_id).order_by("model", "kind", "object_pk")[:limit]
    )
    wanted: dict[tuple[str, str], list[int]] = {}
    for failure in failures:
        wanted.setdefault((failure.model, failure.kind), []).append(failure.object_pk)
    found: dict[tuple[str, str], dict] = {}
    for (model, kind), pks in wanted.items():
        if kind == FailedObjectKind.TOMBSTONE:
            found[(model, kind)] = Tombstone.objects.in_bulk(pks)
        elif model in SYNCABLE_MODELS:
            found[(model, kind)] = SYNCABLE_MODELS[model].objects.in_bulk(pks)
    rows = []
    for failure in failures:
        obj = found.get((failure.model, failure.kind), {}).get(failure.object_pk)
        deletion = failure.kind == FailedObjectKind.TOMBSTONE
        rows.append(
            {
                "model": failure.model,
                "kind": failure.kind,
                "object_pk": failure.object_pk,
                "name": ("(deleted)" if deletion else str(obj)) if obj is not None else "(gone)",
                "external_id": getattr(obj, "external_id", None) or "",
                "error": failure.error,
                "admin_url": None
                if deletion or obj is None
                else reverse(
                    f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk]
                ),
            }
        )
    return rows
