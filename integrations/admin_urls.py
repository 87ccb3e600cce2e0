"""Extra admin pages mounted by the admin site next to the integration page: Trends &
Analytics, and each person's time zone. Every route declares what it needs."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme

from planhat_segment.permissions import admin_view_permissions

from .models import available_time_zones
from .preferences import SESSION_KEY, user_time_zone, user_time_zone_set

# Any signed-in staff member picks their own zone: no permission beyond the admin's login.
ANY_STAFF: tuple[str, ...] = ()


def time_zone_view(request: HttpRequest) -> HttpResponse:
    """Pick the zone the admin shows times in (display only; days stay UTC days)."""
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = ""
    error = ""
    current = user_time_zone(user=request.user)
    if request.method == "POST":
        wanted = request.POST.get("time_zone", "")
        try:
            preference = user_time_zone_set(user=request.user, time_zone=wanted)
        except ValidationError as exc:
            error = " ".join(exc.message_dict.get("time_zone", exc.messages))
            current = wanted
        else:
            request.session[SESSION_KEY] = preference.time_zone
            messages.success(request, f"Times are now shown in {preference.time_zone}.")
            return HttpResponseRedirect(next_url or request.path)
    context = {
        **admin.site.each_context(request),
        "title": "Your time zone",
        "current": current,
        "zones": available_time_zones(),
        "error": error,
        "next": next_url,
    }
    return TemplateResponse(request, "admin/time_zone.html", context, status=400 if error else 200)


def extra_urls(site) -> list:
    from usage.trends_views import company_trends_view, enduser_trends_view, object_metrics_view

    company_needs = (
        "planhat_segment.view_company",
        "usage.view_activity",
        "usage.view_metricvalue",
    )
    enduser_needs = (
        "planhat_segment.view_enduser",
        "usage.view_activity",
        "usage.view_metricvalue",  # the enduser's metric values (dimension data) are shown
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
        path(
            "preferences/time-zone/",
            site.admin_view(admin_view_permissions(time_zone_view, GET=ANY_STAFF, POST=ANY_STAFF)),
            name="time_zone",
        ),
    ]
