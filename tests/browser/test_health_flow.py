"""Health in a real Chromium: the company list sorted by health, a red company's breakdown,
and the health panel and charts drawn on its Trends page (rollups written directly)."""

from __future__ import annotations

import datetime as dt

import pytest

from health.services import health_defaults_ensure, health_scores_recompute
from tests.factories import CompanyFactory, EndUserFactory
from tests.usage.rollup_factories import usage_add
from usage.rollup_selectors import utc_today

from .conftest import screenshot

pytestmark = pytest.mark.django_db(transaction=True)


def _companies():
    health_defaults_ensure()
    today = utc_today()
    green = CompanyFactory(name="Steady Corp")
    for enduser in EndUserFactory.create_batch(10, company=green):
        for n in range(1, 61):
            usage_add(enduser=enduser, day=today - dt.timedelta(days=n), action="Logged in")
    red = CompanyFactory(name="Fading Inc")
    user = EndUserFactory(company=red)
    for n in range(31, 61):
        usage_add(enduser=user, day=today - dt.timedelta(days=n), action="Exported", count=8)
    usage_add(enduser=user, day=today - dt.timedelta(days=20), action="Exported")
    CompanyFactory(name="Brand New Ltd")
    for back in (2, 1, 0):
        health_scores_recompute(day=today - dt.timedelta(days=back))
    return green, red


def test_company_list_sorted_by_health_and_a_red_companys_breakdown(logged_in_page):
    page = logged_in_page
    _green, red = _companies()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto("/admin/planhat_segment/company/")
    page.get_by_role("link", name="Health", exact=True).click()  # sort by health
    page.wait_for_load_state()
    names = page.locator("#result_list tbody th.field-name a").all_inner_texts()
    scored = [n for n in names if n != "Brand New Ltd"]
    assert scored == ["Fading Inc", "Steady Corp"]  # worst first
    badge = page.locator("#result_list tbody tr", has_text="Fading Inc").locator(".health-badge")
    assert badge.get_attribute("data-band") == "red"
    screenshot(page, "company-list-health")

    page.get_by_role("link", name="Fading Inc").click()
    panel = page.get_by_test_id("health-panel")
    assert "Days since the last activity" in panel.get_by_test_id("health-breakdown").inner_text()
    assert panel.locator("[data-band=red]").count() == 1
    page.wait_for_function("window.Chart && Chart.getChart('chart-health') !== undefined")
    points = page.evaluate(
        "Chart.getChart('chart-health').data.datasets[0].data.filter(v => v !== null).length"
    )
    assert points == 3  # three daily rows

    page.goto(f"/admin/planhat_segment/company/{red.pk}/trends/?days=90")
    page.wait_for_function("window.Chart && Chart.getChart('chart-actions') !== undefined")
    assert page.evaluate("Chart.getChart('chart-health') !== undefined")
    labels = page.evaluate("Chart.getChart('chart-actions').data.datasets.map(d => d.label)")
    assert labels == ["Exported"]
    assert "Days are UTC days" in page.get_by_test_id("utc-note").inner_text()
    screenshot(page, "company-trends-health")
    assert errors == []
