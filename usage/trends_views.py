"""Admin views of Trends & Analytics (mounted by the admin site; charts drawn by Chart.js).

Other apps add panels to a company's Trends page through :func:`company_trends_panel_register`
(e.g. ``health`` adds its score, breakdown and health-over-time chart), so ``usage`` never
imports them: a panel is a callable ``(request, company, days) -> HTML or None``.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils.safestring import SafeString

from integrations.models import MetricDefinition
from integrations.services import integration_ensure
from planhat_segment.models import Asset, Company, EndUser, Project

from .trends import RANGES, Buckets, Series, company_trends, enduser_trends, object_metrics

CompanyPanel = Callable[[HttpRequest, Company, int], SafeString | None]
_company_panels: list[CompanyPanel] = []


def company_trends_panel_register(panel: CompanyPanel) -> CompanyPanel:
    """Add a panel to every company's Trends page (above the charts). Idempotent."""
    if panel not in _company_panels:
        _company_panels.append(panel)
    return panel


def _panels(request: HttpRequest, company: Company, days: int) -> list[SafeString]:
    rendered = (panel(request, company, days) for panel in _company_panels)
    return [html for html in rendered if html]


def _chart(series: list[Series]) -> list[dict]:
    # Not dataclasses.asdict: it deep-copies every value (~70 ms for a 365-day page).
    return [{"label": s.label, "values": s.values} for s in series]


def _axis(buckets: Buckets) -> dict:
    return {
        "bucket": buckets.bucket,
        "labels": buckets.labels,
        "partial": buckets.partial_index,
    }


def _days(request: HttpRequest) -> int:
    try:
        days = int(request.GET.get("days", RANGES[0]))
    except ValueError:
        return RANGES[0]
    return days if days in RANGES else RANGES[0]


def _guidance(company: Company) -> dict:
    """What the empty state needs to say what to do: which sections are on, which traits
    become metrics, where to look."""
    integration = integration_ensure()
    return {
        "user_tracking": integration.user_tracking_enabled,
        "company_metrics": integration.company_metrics_enabled,
        "metric_keys": list(
            MetricDefinition.objects.filter(archived_at__isnull=True).values_list("key", flat=True)
        ),
        "external_id": company.external_id,
    }


def company_trends_view(request: HttpRequest, company_id: int) -> HttpResponse:
    company = get_object_or_404(Company, pk=company_id)
    days = _days(request)
    trends = company_trends(company=company, days=days)
    chart_data = {
        **_axis(trends.buckets),
        "metrics": _chart(trends.metric_series),
        "actions": _chart(trends.action_series),
        "active": _chart([trends.active_endusers] if trends.active_endusers else []),
    }
    return TemplateResponse(
        request,
        "usage/company_trends.html",
        {
            **admin.site.each_context(request),
            "title": f"Trends & Analytics · {company.name}",
            "company": company,
            "trends": trends,
            "ranges": RANGES,
            "chart_data": chart_data,
            "guidance": None if trends.has_data else _guidance(company),
            "panels": _panels(request, company, days),
        },
    )


def enduser_trends_view(request: HttpRequest, enduser_id: int) -> HttpResponse:
    enduser = get_object_or_404(EndUser.objects.select_related("company"), pk=enduser_id)
    trends = enduser_trends(enduser=enduser, days=_days(request))
    chart_data = {
        **_axis(trends.buckets),
        "activities": _chart([trends.activities]),
        "metrics": _chart(trends.metric_series),
    }
    return TemplateResponse(
        request,
        "usage/enduser_trends.html",
        {
            **admin.site.each_context(request),
            "title": f"Activity · {enduser.display_name}",
            "enduser": enduser,
            "trends": trends,
            "ranges": RANGES,
            "chart_data": chart_data,
        },
    )


def object_metrics_view(request: HttpRequest, model: str, object_id: int) -> HttpResponse:
    """An asset's or a project's metric values (dimension data): a chart and the latest."""
    model_class = {"asset": Asset, "project": Project}[model]
    obj = get_object_or_404(model_class.objects.select_related("company"), pk=object_id)
    metrics = object_metrics(obj=obj, days=_days(request))
    chart_data = {**_axis(metrics.buckets), "metrics": _chart(metrics.metric_series)}
    meta = model_class._meta
    return TemplateResponse(
        request,
        "usage/object_metrics.html",
        {
            **admin.site.each_context(request),
            "title": f"Metrics · {obj}",
            "obj": obj,
            "opts": meta,
            "changelist_url": f"admin:{meta.app_label}_{meta.model_name}_changelist",
            "change_url": f"admin:{meta.app_label}_{meta.model_name}_change",
            "metrics": metrics,
            "ranges": RANGES,
            "chart_data": chart_data,
        },
    )
