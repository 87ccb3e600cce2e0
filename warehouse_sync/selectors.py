"""Reads of the push to Segment: run history and the last run's summary."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from django.urls import reverse

from .models import SyncModelResult, SyncRun, SyncStatus


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
    run = (
        sync_runs_list().filter(status=SyncStatus.RUNNING).first()
        or sync_runs_list().exclude(status=SyncStatus.RUNNING).first()
    )
    if run is None:
        return None
    return {
        "id": run.pk,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
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
