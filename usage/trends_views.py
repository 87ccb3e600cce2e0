"""Admin views of Trends & Analytics (mounted by the admin site; charts drawn by Chart.js)."""

from __future__ import annotations

from dataclasses import asdict

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse

from planhat_segment.models import Asset, Company, EndUser, Project

from .trends import RANGES, company_trends, enduser_trends, object_metrics


def _days(request: HttpRequest) -> int:
    try:
        days = int(request.GET.get("days", RANGES[0]))
    except ValueError:
        return RANGES[0]
    return days if days in RANGES else RANGES[0]


def company_trends_view(request: HttpRequest, company_id: int) -> HttpResponse:
    company = get_object_or_404(Company, pk=company_id)
    trends = company_trends(company=company, days=_days(request))
    chart_data = {
        "labels": trends.labels,
        "metrics": [asdict(s) for s in trends.metric_series],
        "actions": [asdict(s) for s in trends.action_series],
        "activePerDay": [asdict(s) for s in trends.active_per_day],
        "activePerWeek": [asdict(s) for s in trends.active_per_week],
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
        },
    )


def enduser_trends_view(request: HttpRequest, enduser_id: int) -> HttpResponse:
    enduser = get_object_or_404(EndUser.objects.select_related("company"), pk=enduser_id)
    trends = enduser_trends(enduser=enduser, days=_days(request))
    chart_data = {
        "labels": trends.labels,
        "perDay": [asdict(s) for s in trends.per_day],
        "metrics": [asdict(s) for s in trends.metric_series],
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
    chart_data = {
        "labels": metrics.labels,
        "metrics": [asdict(s) for s in metrics.metric_series],
    }
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
