"""The demo workspace in a real browser: the pages a newcomer sees, with their charts drawn.

`make screenshots` runs this with SCREENSHOTS_DIR=docs to refresh docs/*.png for README.
"""

from __future__ import annotations

import pytest

from health.services import health_scores_recompute
from integrations.demo import demo_workspace_load
from planhat_segment.models import Company
from tests.usage.rollup_factories import rollups_recount
from tests.warehouse_sync.conftest import integration_aim_at
from usage.models import InboxEvent
from usage.rejections import rejected_calls_count
from usage.services import inbox_drain

from .conftest import PHONE, screenshot, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_screenshots_of_demo_workspace(logged_in_page, browser_context, sink, settings):
    from warehouse_sync.services import sync_run_execute, sync_run_start

    settings.WAREHOUSE_PUSH_MAX_EVENTS_PER_SECOND = 0
    page = logged_in_page
    page.set_viewport_size({"width": 1280, "height": 1000})
    demo_workspace_load(days=90)
    inbox_drain()
    rollups_recount()  # what processing writes once the rollup writer is merged (wt-proc)
    integration_aim_at(sink)
    run = sync_run_start(trigger="manual", enqueue=False)
    sync_run_execute(run_id=run.pk)
    health_scores_recompute()  # the daily scores, so the health panel has one to show

    page.goto("/admin/integrations/segment/")
    assert page.get_by_test_id("status-badge").inner_text() == "ON"
    assert "Last push: succeeded" in page.get_by_test_id("health-push").inner_text()
    rows = page.locator("[data-testid=sync-table] tbody tr")
    assert rows.count() == 5
    screenshot(page, "integration-page")

    # Two calls that did not become usage: one stored and dropped, one refused at the door.
    InboxEvent.objects.create(
        message_id="shot-nope",
        request_id="00000000-0000-0000-0000-000000000042",
        type="group",
        payload={"type": "group", "userId": "u-7", "groupId": "NOPE", "traits": {"seats": 3}},
    )
    inbox_drain()
    rejected_calls_count(details=["A track call needs an event name (event)."] * 2)
    page.goto("/admin/usage/inboxevent/")
    assert "Track without event 2" in page.get_by_test_id("rejected-counts").inner_text()
    assert "No company with external id NOPE." in page.locator("#result_list").inner_text()
    screenshot(page, "event-log", max_height=900)

    acme = Company.objects.get(external_id="ACME-001")
    page.goto(f"/admin/planhat_segment/company/{acme.pk}/trends/?days=90")
    page.wait_for_function("window.Chart && Chart.getChart('chart-actions') !== undefined")
    # Each metric on its own scale (a chart each), weekly buckets for 90 days, the last partial.
    labels = page.evaluate(
        "[0, 1, 2].map(i => Chart.getChart('chart-metric-' + i).data.datasets[0].label)"
    )
    assert sorted(labels) == ["Active users", "Seats", "Storage (GB)"]
    weeks = page.evaluate("Chart.getChart('chart-active').data.labels")
    assert 13 <= len(weeks) <= 14 and weeks[-1].endswith("(so far)")
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    screenshot(page, "company-trends")

    phone = browser_context(viewport=PHONE).new_page()
    sign_in(phone)
    phone.goto("/admin/integrations/segment/")
    assert phone.evaluate("document.documentElement.scrollWidth <= innerWidth")
    screenshot(phone, "integration-page-phone", full_page=True, max_height=1700)
