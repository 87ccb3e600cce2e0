"""The health panel (score, band, breakdown, health over time) shown on a company's admin
page and, through usage's panel registry, on its Trends page (usage never imports health)."""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from planhat_segment.models import Company
from usage.rollup_selectors import utc_today

from .selectors import company_health_history, company_latest_score


def health_panel(
    request: HttpRequest, company: Company, days: int, *, include_chart_js: bool = False
) -> SafeString | None:
    """The panel's HTML for one company; None for test companies (never scored)."""
    if company.is_test:
        return None
    today = utc_today()
    latest = company_latest_score(company_id=company.pk)
    history = company_health_history(
        company_id=company.pk, first=today - dt.timedelta(days=days - 1), last=today
    )
    labels = [(today - dt.timedelta(days=days - 1 - i)).isoformat() for i in range(days)]
    context = {
        "company": company,
        "latest": latest,
        "factors": (latest.breakdown.get("factors", []) if latest else []),
        "note": (latest.breakdown.get("note", "") if latest else ""),
        "days": days,
        "chart": {
            "labels": labels,
            "series": [
                {
                    "label": "Health score",
                    "points": [(day.isoformat(), score) for day, score, _ in history],
                }
            ],
        },
        "include_chart_js": include_chart_js,
        "request": request,
    }
    return SafeString(render_to_string("health/company_health_panel.html", context, request))


def trends_panel(request: HttpRequest, company: Company, days: int) -> SafeString | None:
    """Registered with usage's Trends page (which includes Chart.js itself)."""
    return health_panel(request, company, days)
