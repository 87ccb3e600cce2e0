"""``{% company_alerts company %}``: a company's alerts on its admin page — the active ones
(up to ten) and a link to all of them in the alert inbox."""

from __future__ import annotations

from django import template
from django.urls import reverse

from ..models_alerts import ACTIVE_STATUSES, Alert

register = template.Library()
SHOWN = 10


@register.inclusion_tag("admin/health/alert/_company_alerts.html", takes_context=True)
def company_alerts(context, company) -> dict:
    request = context.get("request")
    allowed = request is None or request.user.has_perm("health.view_alert")
    if company is None or not getattr(company, "pk", None) or not allowed:
        return {"show": False}
    active = list(
        Alert.objects.filter(company_id=company.pk, status__in=ACTIVE_STATUSES)
        .select_related("rule")
        .order_by("-opened_at")[: SHOWN + 1]
    )
    return {
        "show": True,
        "alerts": active[:SHOWN],
        "more": len(active) > SHOWN,
        "all_url": reverse("admin:health_alert_changelist") + f"?company={company.pk}",
    }
