"""An alert handled in a real Chromium: the inbox filtered to open alerts, the alert's page
with its figures and deliveries, Acknowledge, then Resolve with a note; the company's page
lists its alerts. (`make screenshots` saves docs/alert.png and docs/alert-inbox.png.)"""

from __future__ import annotations

import pytest

from health.alerts import alerts_evaluate
from health.models import Alert, HealthScore
from health.models_alerts import AlertStatus, Resolution
from tests.health.alert_helpers import TODAY, company, drop_rule, falling

from .conftest import screenshot

pytestmark = pytest.mark.django_db(transaction=True)


def test_alert_acknowledged_and_resolved_in_the_inbox_screenshots(logged_in_page):
    page = logged_in_page
    page.set_viewport_size({"width": 1500, "height": 1000})
    drop_rule(name="Usage halved", email_recipients=["cs@example.com"])
    acme = company(name="Acme Corp", external_id="ACME-001")
    falling(acme)
    HealthScore.objects.create(company=acme, day=TODAY, score=2.8, band="red")
    alerts_evaluate(day=TODAY)
    alert = Alert.objects.get()

    page.goto("/admin/health/alert/?status__exact=open")
    row = page.locator("#result_list tbody tr")
    assert row.count() == 1
    text = row.inner_text()
    assert "Acme Corp" in text
    assert "activities down 80.0 %" in text
    assert "red" in text
    screenshot(page, "alert-inbox")

    page.get_by_role("link", name="activities down 80.0 %", exact=False).first.click()
    page.wait_for_url(f"**/admin/health/alert/{alert.pk}/change/**")
    assert "drop_percent" in page.locator("#content").inner_text()
    screenshot(page, "alert")
    page.locator("#alert-acknowledge").click()
    page.wait_for_load_state()
    assert "Alert acknowledged." in page.locator(".messagelist").inner_text()
    alert.refresh_from_db()
    assert alert.status == AlertStatus.ACKNOWLEDGED
    assert alert.acknowledged_by.username == "cs-admin"

    page.fill("#alert-resolve-note", "Spoke to Acme: a team moved to another tool.")
    page.locator("#alert-resolve").click()
    page.wait_for_load_state()
    assert "Alert resolved." in page.locator(".messagelist").inner_text()
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
    assert alert.resolution == Resolution.PERSON
    assert alert.resolution_note == "Spoke to Acme: a team moved to another tool."
    assert page.locator("#alert-acknowledge").count() == 0  # resolved: no more buttons

    page.goto(f"/admin/planhat_segment/company/{acme.pk}/change/")
    panel = page.locator("#company-alerts")
    assert "No active alert." in panel.inner_text()
    panel.get_by_role("link", name="All alerts of this company").click()
    page.wait_for_load_state()
    assert page.locator("#result_list tbody tr").count() == 1
