"""The admin's day, end to end in a real Chromium.

log in → enable the warehouse section → copy the token → add a metric → post identify /
track / group over HTTP → see them in the event log and on the company's charts → press
"Push data to Segment" against the local sink → see the last-sync table → rotate the token
and see the grace period.

The processing and the push run in this test's thread (the same calls the Celery tasks make)
because SQLite's in-memory test database is shared only with the live server's thread; the
real-worker paths have tests of their own.
"""

from __future__ import annotations

import base64

import pytest
import requests

from integrations.models import IntegrationSettings
from planhat_segment.models import Company
from tests.usage.rollup_factories import rollups_recount
from usage.models import Activity, InboxEvent, MetricValue

from .conftest import in_viewport, screenshot

pytestmark = pytest.mark.django_db(transaction=True)

PAGE = "/admin/integrations/segment/"


def _post(live_server, token: str, body: dict) -> requests.Response:
    auth = base64.b64encode(f"{token}:".encode()).decode()
    return requests.post(
        f"{live_server.url}/dock/segment",
        json=body,
        headers={"Authorization": f"Basic {auth}"},
        timeout=10,
    )


def test_admin_flow_from_setup_to_push(logged_in_page, live_server, sink, settings):
    from usage.services import inbox_drain
    from warehouse_sync.models import SyncRun
    from warehouse_sync.services import sync_run_execute

    settings.WAREHOUSE_PUSH_MAX_EVENTS_PER_SECOND = 0
    settings.INGEST_SETTINGS_CACHE_SECONDS = 0
    page = logged_in_page
    Company.objects.create(name="Acme Corp", external_id="ACME-001")

    page.goto(PAGE)
    assert page.get_by_test_id("status-badge").inner_text() == "OFF"

    # Section 3 on, pointed at the local sink.
    form = page.get_by_test_id("warehouse-form")
    form.locator("#id_warehouse_enabled").check()
    form.locator("#id_write_key").fill(sink.write_key)
    form.locator("#id_region").select_option("custom")
    form.locator("#id_custom_base_url").fill(sink.url)
    with page.expect_navigation():
        form.get_by_role("button", name="Save data warehouse").click()
    assert page.get_by_test_id("status-badge").inner_text() == "ON"
    saved = page.get_by_test_id("flash-warehouse")
    assert saved.inner_text() == "Saved."
    assert in_viewport(saved)  # shown where the click was, not at the top of the page

    # Copy the token with the page's button, as an admin would.
    page.locator("button[data-copy=tenant-token]").click()
    token = page.evaluate("navigator.clipboard.readText()")
    assert token == IntegrationSettings.objects.get().tenant_token

    # A metric, added with Enter.
    add = page.get_by_test_id("add-metric")
    add.locator("input[name=key]").fill("active_users")
    with page.expect_navigation():
        add.locator("input[name=key]").press("Enter")
    assert "active_users" in page.get_by_test_id("metrics-table").inner_text()
    assert in_viewport(page.get_by_test_id("flash-metrics").get_by_text("added"))

    # Segment delivers: identify (creates the enduser under ACME-001), track, group.
    identify = {
        "type": "identify",
        "messageId": "e2e-identify-1",
        "userId": "u-e2e",
        "traits": {
            "email": "peter@acme.example",
            "name": "Peter Gibbons",
            "company_id": "ACME-001",
        },
    }
    track = {
        "type": "track",
        "messageId": "e2e-track-1",
        "userId": "u-e2e",
        "event": "Report Downloaded",
        "properties": {"count": 2},
    }
    group = {
        "type": "group",
        "messageId": "e2e-group-1",
        "userId": "u-e2e",
        "groupId": "ACME-001",
        "traits": {"active_users": 42},
    }
    answer = _post(live_server, token, [identify, track, group])
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 3
    inbox_drain()
    rollups_recount()  # what processing writes once the rollup writer is merged (wt-proc)
    assert Activity.objects.filter(action="Report Downloaded", count=2).exists()
    assert MetricValue.objects.get().value == 42

    page.goto("/admin/usage/inboxevent/")
    log = page.locator("#result_list").inner_text()
    for kind in ("identify", "track", "group"):
        assert kind in log
    assert InboxEvent.objects.filter(status="processed").count() == 3

    company = Company.objects.get(external_id="ACME-001")
    page.goto(f"/admin/planhat_segment/company/{company.pk}/trends/")
    page.wait_for_function("window.Chart && Chart.getChart('chart-actions') !== undefined")
    assert (
        page.evaluate("Chart.getChart('chart-metric-0').data.datasets[0].label") == "Active users"
    )
    assert "Peter Gibbons" in page.get_by_test_id("top-endusers").inner_text()
    screenshot(page, "company-trends")

    # Push data to Segment; the run executes here, as the warehouse worker would.
    page.goto(PAGE)
    with page.expect_navigation():
        page.get_by_test_id("push-now").click()
    started = page.get_by_test_id("flash-warehouse")
    assert "Push data to Segment started" in started.inner_text()
    assert in_viewport(started)
    assert page.get_by_test_id("push-now").is_disabled()  # one push at a time
    run = SyncRun.objects.get()
    sync_run_execute(run_id=run.pk)
    # The page follows the run by itself (no reload): the outcome appears, buttons come back.
    outcome = page.get_by_test_id("push-outcome")
    outcome.wait_for()
    assert outcome.inner_text().startswith("Push finished: Succeeded")
    assert page.get_by_test_id("push-now").is_enabled()
    page.reload()
    company_row = page.locator("[data-testid=sync-table] tr[data-model=company] td")
    assert company_row.all_inner_texts() == ["Company", "1", "0"]
    enduser_row = page.locator("[data-testid=sync-table] tr[data-model=enduser] td")
    assert enduser_row.all_inner_texts() == ["Enduser", "1", "0"]
    assert "took" in page.get_by_test_id("last-sync").inner_text()
    groups = sink.of_type("group")
    assert [m["groupId"] for m in groups] == ["ACME-001"]
    assert [m["userId"] for m in sink.of_type("identify")] == ["u-e2e"]
    screenshot(page, "integration-page")

    # Rotate: confirm the dialog, see until when the previous token works, and use both.
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.get_by_test_id("rotate-token").click()
    assert "previous token still works until" in page.get_by_test_id("grace-notice").inner_text()
    assert in_viewport(page.get_by_test_id("flash-token").get_by_text("New tenant token issued"))
    new_token = page.get_by_test_id("tenant-token").input_value()
    assert new_token != token
    assert _post(live_server, token, {**track, "messageId": "e2e-old-token"}).status_code == 200
    assert _post(live_server, new_token, {**track, "messageId": "e2e-new-token"}).status_code == 200
    assert _post(live_server, "wrong", {**track, "messageId": "e2e-bad"}).status_code == 401
