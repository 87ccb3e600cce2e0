"""The Segment integration admin page: sections 1–3 as in Planhat's page.

This module is the one place that composes the two flows: it reads ``usage`` and
``warehouse_sync`` selectors and calls their services (DESIGN.md §2). Each POST carries an
``action``; the view translates the form and calls one service, then redirects (PRG).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from planhat_segment.audit import audit_record
from planhat_segment.permissions import admin_view_permissions

from .audit import (
    ADDITION,
    DELETION,
    browser_key_rotation_record,
    integration_change_record,
    integration_snapshot,
    metric_definition_record,
    token_rotation_record,
)
from .forms import CompanyMetricsForm, MetricDefinitionForm, UserTrackingForm, WarehouseForm
from .models import IntegrationSettings, MetricDefinition
from .selectors import (
    connection_instructions,
    masked,
    planhat_urls,
    previous_browser_key_valid_until,
    previous_token_valid_until,
)
from .services import (
    MetricInUse,
    browser_key_rotate,
    integration_ensure,
    integration_update,
    metric_definition_create,
    metric_definition_delete,
    rotation_grace,
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
    "delete_metric": ("integrations.delete_metricdefinition",),
    "push": ("warehouse_sync.push_to_segment",),
    "send_test_event": (MANAGE,),
}

SECTION_FORMS = {
    "save_tracking": UserTrackingForm,
    "save_metrics": CompanyMetricsForm,
    "save_warehouse": WarehouseForm,
}


def page_url() -> str:
    return reverse("admin:segment_integration")


def integration_page(request: HttpRequest) -> HttpResponse:
    integration = integration_ensure()
    bound: dict = {}
    if request.method == "POST":
        action = request.POST.get("action", "")
        handler = _ACTIONS.get(action)
        if handler is None:
            messages.error(request, f"Unknown action {action!r}.")
            return HttpResponseRedirect(page_url())
        if not request.user.has_perms(ACTION_PERMISSIONS[action]):
            raise PermissionDenied
        result = handler(request, integration)
        if isinstance(result, HttpResponse):
            return result
        bound = result  # forms with errors, re-rendered below
        integration = integration_ensure()
    return TemplateResponse(
        request,
        "integrations/segment_page.html",
        _context(request, integration, bound),
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
        f"{row.previous_token_valid_until:%Y-%m-%d %H:%M} UTC.",
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


def _delete_metric(request: HttpRequest, integration: IntegrationSettings):
    try:
        metric_id = int(request.POST.get("metric_id", ""))
    except ValueError:
        messages.error(request, "No metric was chosen to remove.")
        return HttpResponseRedirect(page_url() + "#metrics")
    metric = MetricDefinition.objects.filter(pk=metric_id).first()
    try:
        with transaction.atomic():
            metric_definition_delete(metric_id=metric_id)
            if metric is not None:
                metric_definition_record(user=request.user, metric=metric, flag=DELETION, via=VIA)
    except MetricInUse as exc:
        messages.error(request, f"Metric not removed: {exc}")
        return HttpResponseRedirect(page_url() + "#metrics")
    messages.success(request, "Metric removed.")
    return HttpResponseRedirect(page_url() + "#metrics")


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
    "delete_metric": _delete_metric,
    "push": _push,
    "send_test_event": _send_test_event,
}


def _context(request: HttpRequest, integration: IntegrationSettings, bound: dict) -> dict:
    from django.contrib import admin

    from usage.selectors import inbox_counts_last_24h, metric_value_stats
    from warehouse_sync.selectors import last_sync_summary

    metrics = list(MetricDefinition.objects.all())
    stats = metric_value_stats()
    for metric in metrics:
        metric.stats = stats.get(metric.pk, {"count": 0, "last_value": None, "last_at": None})
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
    return {
        **admin.site.each_context(request),
        "title": "Segment integration",
        "integration": integration,
        "can_manage": can_manage,
        "may": {
            action: request.user.has_perms(perms) for action, perms in ACTION_PERMISSIONS.items()
        },
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
        "counts": inbox_counts_last_24h(),
        "last_sync": last_sync_summary(),
    }


def _read_only(form) -> None:
    """A settings form for someone who may not change it: disabled, without the secrets."""
    for name in ("shared_secret", "clear_shared_secret", "write_key"):
        form.fields.pop(name, None)
    for field in form.fields.values():
        field.disabled = True


def extra_urls(site) -> list:
    """Trends & Analytics pages, on the admin site next to the integration page."""
    from django.urls import path

    from usage.trends_views import company_trends_view, enduser_trends_view, object_metrics_view

    company_needs = (
        "planhat_segment.view_company",
        "usage.view_activity",
        "usage.view_metricvalue",
    )
    enduser_needs = (
        "planhat_segment.view_enduser",
        "usage.view_activity",
        "usage.view_metricvalue",
    )
    metrics_pages = [
        path(
            f"planhat_segment/{model}/<int:object_id>/metrics/",
            site.admin_view(
                admin_view_permissions(
                    object_metrics_view,
                    GET=(f"planhat_segment.view_{model}", "usage.view_metricvalue"),
                )
            ),
            {"model": model},
            # Named like the model admin's own pages, so tools that walk the admin (the
            # production test) treat it as one of the model's pages.
            name=f"planhat_segment_{model}_metrics",
        )
        for model in ("asset", "project")
    ]
    return [
        *metrics_pages,
        path(
            "planhat_segment/company/<int:company_id>/trends/",
            site.admin_view(admin_view_permissions(company_trends_view, GET=company_needs)),
            name="company_trends",
        ),
        path(
            "planhat_segment/enduser/<int:enduser_id>/trends/",
            site.admin_view(admin_view_permissions(enduser_trends_view, GET=enduser_needs)),
            name="enduser_trends",
        ),
    ]
