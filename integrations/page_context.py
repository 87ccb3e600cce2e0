"""What the integration page shows: its context, composed from the usage and warehouse_sync
selectors (page.py holds the actions). Reads only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib import messages as django_messages
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince

from .forms import CompanyMetricsForm, MetricDefinitionForm, UserTrackingForm, WarehouseForm
from .models import IntegrationSettings, MetricDefinition
from .page import ACTION_PERMISSIONS, ACTION_SPOTS, MANAGE
from .selectors import (
    connection_instructions,
    masked,
    planhat_urls,
    previous_browser_key_valid_until,
    previous_token_valid_until,
)
from .services import rotation_grace

SPOTS = frozenset(ACTION_SPOTS.values())


@dataclass(frozen=True)
class HealthLine:
    """One part's health in words beside the ON / OFF badge: ``level`` is good, warn, bad or
    idle (no data yet), for the dot's colour; ``text`` says it for people."""

    part: str
    level: str
    text: str


def _ago(when: datetime, now: datetime) -> str:
    return "just now" if now - when < timedelta(minutes=1) else f"{timesince(when, now)} ago"


def ingest_health(counts: dict[str, int]) -> HealthLine:
    received, failed = counts.get("received", 0), counts.get("failed", 0)
    if failed:
        return HealthLine(
            "ingest",
            "bad",
            f"Ingest: {failed} of {received} events in the last hour failed — see the event log.",
        )
    if not received:
        return HealthLine("ingest", "idle", "Ingest: no events in the last hour.")
    waiting = counts.get("waiting", 0)
    extra = f", {waiting} waiting for their user or company" if waiting else ""
    return HealthLine(
        "ingest", "good", f"Ingest: {received} events in the last hour, none failed{extra}."
    )


def push_health(last_sync: dict | None, now: datetime) -> HealthLine:
    if last_sync is None:
        return HealthLine("push", "idle", "Last push: none yet.")
    status = last_sync["status"]
    if status == "running":
        return HealthLine(
            "push", "good", f"Push running, started {_ago(last_sync['started_at'], now)}."
        )
    when = _ago(last_sync["finished_at"] or last_sync["started_at"], now)
    if status == "succeeded":
        return HealthLine("push", "good", f"Last push: succeeded {when}.")
    if status == "partial":
        return HealthLine(
            "push",
            "warn",
            f"Last push: partial {when} — {last_sync['errors']} object(s) failed and will be "
            "retried.",
        )
    error = (last_sync["error"] or "").strip()
    reason = f": {error[:160]}" if error else "."
    return HealthLine("push", "bad", f"Last push: failed {when}{reason}")


def _flash(request: HttpRequest, spot: str) -> dict[str, list]:
    """This request's messages by where they belong: beside the pressed button (``spot``), or
    at the top of the page."""
    where = spot if spot in SPOTS else "top"
    return {where: list(django_messages.get_messages(request))}


def _read_only(form) -> None:
    """A settings form for someone who may not change it: disabled, without the secrets."""
    for name in ("shared_secret", "clear_shared_secret", "write_key"):
        form.fields.pop(name, None)
    for field in form.fields.values():
        field.disabled = True


def page_context(
    request: HttpRequest, integration: IntegrationSettings, bound: dict, *, spot: str = ""
) -> dict:
    from django.contrib import admin

    from usage.selectors import inbox_counts_last_24h, inbox_counts_since, metric_value_stats
    from warehouse_sync.selectors import last_sync_summary

    now = timezone.now()
    stats = metric_value_stats()
    empty = {"count": 0, "last_value": None, "last_at": None}
    metrics, archived = [], []
    for metric in MetricDefinition.objects.all():
        metric.stats = stats.get(metric.pk, empty)
        (archived if metric.archived_at else metrics).append(metric)
    # The tenant token and the write key are shown only to those who may manage the
    # integration; the others see the settings read-only and the token masked.
    can_manage = request.user.has_perm(MANAGE)
    forms = {
        "tracking_form": bound.get("save_tracking") or UserTrackingForm(instance=integration),
        "metrics_form": bound.get("save_metrics") or CompanyMetricsForm(instance=integration),
        "warehouse_form": bound.get("save_warehouse") or WarehouseForm(instance=integration),
    }
    if not can_manage:
        for form in forms.values():
            _read_only(form)
    last_sync = last_sync_summary()
    counts_hour = inbox_counts_since(since=now - timedelta(hours=1))
    return {
        **admin.site.each_context(request),
        "title": "Segment integration",
        "integration": integration,
        "can_manage": can_manage,
        "may": {
            action: request.user.has_perms(perms) for action, perms in ACTION_PERMISSIONS.items()
        },
        "flash": _flash(request, spot),
        "tenant_token_shown": integration.tenant_token
        if can_manage
        else masked(integration.tenant_token),
        "destination_url": f"{settings.PUBLIC_BASE_URL}/dock/segment",
        # The tenant token's rules apply to the browser key and to URLs holding the token.
        "browser_key_shown": integration.browser_key
        if can_manage
        else masked(integration.browser_key),
        "previous_browser_key_valid_until": previous_browser_key_valid_until(
            integration=integration
        ),
        "planhat_urls": planhat_urls(
            token=integration.tenant_token if can_manage else "<tenant token>"
        ),
        "settings_url": f"{settings.PUBLIC_BASE_URL}/v1/projects/"
        + (integration.browser_key if can_manage else "<browser key>")
        + "/settings",
        "instructions": connection_instructions(integration=integration) if can_manage else None,
        "previous_token_valid_until": previous_token_valid_until(integration=integration),
        "grace_hours": int(rotation_grace().total_seconds() // 3600),
        "shared_secret_masked": masked(integration.shared_secret) if can_manage else "",
        "write_key_masked": masked(integration.write_key) if can_manage else "",
        "public_base_url": settings.PUBLIC_BASE_URL,
        **forms,
        "metric_form": bound.get("add_metric") or MetricDefinitionForm(),
        "metrics": metrics,
        "archived_metrics": archived,
        "counts": inbox_counts_last_24h(now=now),
        "health_lines": [ingest_health(counts_hour), push_health(last_sync, now)],
        "last_sync": last_sync,
        "push_running": bool(last_sync and last_sync["status"] == "running"),
        "progress_url": reverse("admin:warehouse_sync_syncrun_progress"),
    }
