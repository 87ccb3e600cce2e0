"""The Segment integration admin page: sections 1–3 as in Planhat's page.

This module is the one place that composes the two flows: it reads ``usage`` and
``warehouse_sync`` selectors and calls their services (DESIGN.md §2). Each POST carries an
``action``; the view translates the form and calls one service, then redirects (PRG).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from planhat_segment.audit import audit_record

from .audit import (
    ADDITION,
    DELETION,
    browser_key_rotation_record,
    integration_change_record,
    integration_snapshot,
    metric_definition_archive_record,
    metric_definition_record,
    token_rotation_record,
)
from .forms import CompanyMetricsForm, MetricDefinitionForm, UserTrackingForm, WarehouseForm
from .models import IntegrationSettings, MetricDefinition
from .services import (
    browser_key_rotate,
    integration_ensure,
    integration_update,
    metric_definition_archive,
    metric_definition_create,
    metric_definition_purge,
    metric_definition_restore,
    tenant_token_rotate,
)

VIA = "integration page"
# Seeing the page (status, counts, last sync; the secrets masked) needs the view permission;
# each POST action needs its own (checked in integration_page, declared here for the tests).
PAGE_PERMISSIONS = ("integrations.view_integrationsettings",)
MANAGE = "integrations.change_integrationsettings"  # settings, and so the secrets
ACTION_PERMISSIONS = {
    "save_tracking": (MANAGE,),
    "save_metrics": (MANAGE,),
    "save_warehouse": (MANAGE,),
    "rotate_token": ("integrations.rotate_tenant_token",),
    # The browser key is seen and rotated by whoever may do so with the tenant token.
    "rotate_browser_key": ("integrations.rotate_tenant_token",),
    "add_metric": ("integrations.add_metricdefinition",),
    # "Remove" archives (history kept, restorable); deleting the values is its own action.
    "archive_metric": ("integrations.change_metricdefinition",),
    "restore_metric": ("integrations.change_metricdefinition",),
    "purge_metric": ("integrations.delete_metricdefinition",),
    "push": ("warehouse_sync.push_to_segment",),
    "send_test_event": (MANAGE,),
}

# Where on the page each action's result is shown: the spot beside the button that was
# pressed (``?at=<spot>#<spot>-result`` after the redirect), not the top of a long page.
ACTION_SPOTS = {
    "save_tracking": "tracking",
    "send_test_event": "tracking",
    "rotate_token": "token",
    "rotate_browser_key": "token",  # the browser key sits under the token (_dropin.html)
    "save_metrics": "metrics",
    "add_metric": "metrics",
    "archive_metric": "metrics",
    "restore_metric": "metrics",
    "purge_metric": "metrics",
    "save_warehouse": "warehouse",
    "push": "warehouse",
}

SECTION_FORMS = {
    "save_tracking": UserTrackingForm,
    "save_metrics": CompanyMetricsForm,
    "save_warehouse": WarehouseForm,
}


def page_url() -> str:
    return reverse("admin:segment_integration")


def spot_url(spot: str) -> str:
    return f"{page_url()}?at={spot}#{spot}-result"


def integration_page(request: HttpRequest) -> HttpResponse:
    from .page_context import page_context

    integration = integration_ensure()
    bound: dict = {}
    spot = request.GET.get("at", "")
    if request.method == "POST":
        action = request.POST.get("action", "")
        handler = _ACTIONS.get(action)
        if handler is None:
            messages.error(request, f"Unknown action {action!r}.")
            return HttpResponseRedirect(page_url())
        if not request.user.has_perms(ACTION_PERMISSIONS[action]):
            raise PermissionDenied
        result = handler(request, integration)
        spot = ACTION_SPOTS[action]
        if isinstance(result, HttpResponseRedirect):
            return HttpResponseRedirect(spot_url(spot))
        if isinstance(result, HttpResponse):
            return result
        bound = result  # forms with errors, re-rendered below
        integration = integration_ensure()
    return TemplateResponse(
        request,
        "integrations/segment_page.html",
        page_context(request, integration, bound, spot=spot),
        status=400 if bound else 200,
    )


def _save_section(request: HttpRequest, integration: IntegrationSettings):
    form_class = SECTION_FORMS[request.POST["action"]]
    # A fresh instance: a failed form must not leak unsaved values into the other sections.
    form = form_class(request.POST, instance=IntegrationSettings.objects.get(pk=integration.pk))
    if not form.is_valid():
        messages.error(request, "Nothing was saved: please correct the errors below.")
        return {request.POST["action"]: form}
    before = integration_snapshot(integration)
    try:
        with transaction.atomic():
            integration_update(integration=integration, **form.changes())
            integration_change_record(
                user=request.user, before=before, integration=integration, via=VIA
            )
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
        return {request.POST["action"]: form}
    messages.success(request, "Saved.")
    return HttpResponseRedirect(page_url())


def _rotate_token(request: HttpRequest, integration: IntegrationSettings):
    with transaction.atomic():
        row = tenant_token_rotate()
        token_rotation_record(user=request.user, integration=row, via=VIA)
    messages.success(
        request,
        "New tenant token issued. Update Segment now: the previous token keeps working until "
        f"{timezone.localtime(row.previous_token_valid_until):%Y-%m-%d %H:%M %Z}.",
    )
    return HttpResponseRedirect(page_url() + "#tracking")


def _rotate_browser_key(request: HttpRequest, integration: IntegrationSettings):
    with transaction.atomic():
        row = browser_key_rotate()
        browser_key_rotation_record(user=request.user, integration=row, via=VIA)
    messages.success(
        request,
        "New browser key issued. Update your site's analytics.js snippet now: the previous key "
        f"keeps working until {row.previous_browser_key_valid_until:%Y-%m-%d %H:%M} UTC.",
    )
    return HttpResponseRedirect(page_url() + "#tracking")


def _add_metric(request: HttpRequest, integration: IntegrationSettings):
    form = MetricDefinitionForm(request.POST)
    if not form.is_valid():
        return {"add_metric": form}
    try:
        with transaction.atomic():
            metric = metric_definition_create(**form.cleaned_data)
            metric_definition_record(user=request.user, metric=metric, flag=ADDITION, via=VIA)
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
        return {"add_metric": form}
    messages.success(request, f"Metric '{metric.key}' added.")
    return HttpResponseRedirect(page_url() + "#metrics")


def _metric_id(request: HttpRequest) -> int | None:
    try:
        return int(request.POST.get("metric_id", ""))
    except ValueError:
        messages.error(request, "No metric was chosen.")
        return None


def _set_metric_archived(request: HttpRequest, *, archived: bool):
    """Archive (remove, values kept) or restore the posted metric: one flow, two services."""
    metric_id = _metric_id(request)
    if metric_id is None:
        return HttpResponseRedirect(page_url())
    change = metric_definition_archive if archived else metric_definition_restore
    with transaction.atomic():
        metric = change(metric_id=metric_id)
        if metric is not None:
            metric_definition_archive_record(
                user=request.user, metric=metric, archived=archived, via=VIA
            )
    if metric is None:
        messages.error(request, "This metric no longer exists.")
    elif archived:
        messages.success(
            request,
            f"Metric '{metric.key}' removed: new values are no longer recorded, and its stored "
            "values are kept. Restore it from “Archived metrics” below.",
        )
    else:
        messages.success(request, f"Metric '{metric.key}' restored: new values are recorded.")
    return HttpResponseRedirect(page_url())


def _archive_metric(request: HttpRequest, integration: IntegrationSettings):
    return _set_metric_archived(request, archived=True)


def _restore_metric(request: HttpRequest, integration: IntegrationSettings):
    return _set_metric_archived(request, archived=False)


def _purge_metric(request: HttpRequest, integration: IntegrationSettings):
    metric_id = _metric_id(request)
    if metric_id is None:
        return HttpResponseRedirect(page_url())
    try:
        confirm_values = int(request.POST.get("confirm_values", ""))
    except ValueError:
        messages.error(request, "Nothing was deleted: the number of values was not confirmed.")
        return HttpResponseRedirect(page_url())
    metric = MetricDefinition.objects.filter(pk=metric_id).first()
    try:
        with transaction.atomic():
            deleted = metric_definition_purge(metric_id=metric_id, confirm_values=confirm_values)
            metric_definition_record(user=request.user, metric=metric, flag=DELETION, via=VIA)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return HttpResponseRedirect(page_url())
    messages.success(request, f"Metric '{metric.key}' and its {deleted} stored values deleted.")
    return HttpResponseRedirect(page_url())


def _push(request: HttpRequest, integration: IntegrationSettings):
    from warehouse_sync.services import SyncRefused, sync_run_start

    full = request.POST.get("full") == "1"
    kind = "full" if full else "incremental"
    try:
        run = sync_run_start(trigger="manual", full=full)
    except SyncRefused as exc:
        messages.error(request, f"Push not started: {exc}")
    else:
        audit_record(
            user=request.user, obj=run, flag=ADDITION, message=f"Started a {kind} push ({VIA})."
        )
        messages.success(request, f"Push data to Segment started ({kind} run #{run.pk}).")
    return HttpResponseRedirect(page_url() + "#warehouse")


def _send_test_event(request: HttpRequest, integration: IntegrationSettings):
    from usage.sample_events import sample_events_send

    outcomes = sample_events_send()
    for outcome in outcomes:
        level = messages.SUCCESS if outcome.ok else messages.WARNING
        messages.add_message(request, level, f"Test {outcome.kind}: {outcome.summary}")
    return HttpResponseRedirect(page_url() + "#tracking")


_ACTIONS = {
    "save_tracking": _save_section,
    "save_metrics": _save_section,
    "save_warehouse": _save_section,
    "rotate_token": _rotate_token,
    "rotate_browser_key": _rotate_browser_key,
    "add_metric": _add_metric,
    "archive_metric": _archive_metric,
    "restore_metric": _restore_metric,
    "purge_metric": _purge_metric,
    "push": _push,
    "send_test_event": _send_test_event,
}
