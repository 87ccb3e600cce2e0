"""Every admin page fits a 1440 px laptop and a 390 px phone without sideways scrolling, and
no table scrolls sideways inside a page (issue 12); a phone's lists show the few columns
that matter."""

from __future__ import annotations

import pytest

from integrations.demo import demo_workspace_load
from planhat_segment.models import Company, EndUser
from tests.usage.rollup_factories import rollups_recount
from tests.warehouse_sync.conftest import integration_aim_at
from usage.models import InboxEvent
from usage.services import inbox_drain

from .conftest import LAPTOP, PHONE, overflow, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def workspace(sink, settings):
    from warehouse_sync.services import sync_run_execute, sync_run_start

    settings.WAREHOUSE_PUSH_MAX_EVENTS_PER_SECOND = 0
    demo_workspace_load(days=30)
    inbox_drain()
    rollups_recount()  # what processing writes once the rollup writer is merged (wt-proc)
    integration_aim_at(sink)
    run = sync_run_start(trigger="manual", enqueue=False)
    sync_run_execute(run_id=run.pk)
    return run


def admin_pages(run) -> list[str]:
    acme = Company.objects.get(external_id="ACME-001")
    enduser = EndUser.objects.filter(company=acme).first()
    event = InboxEvent.objects.filter(type="track").first()
    return [
        "/admin/",
        "/admin/integrations/segment/",
        "/admin/planhat_segment/company/",
        f"/admin/planhat_segment/company/{acme.pk}/change/",
        f"/admin/planhat_segment/company/{acme.pk}/trends/?days=90",
        "/admin/planhat_segment/enduser/",
        f"/admin/planhat_segment/enduser/{enduser.pk}/change/",
        f"/admin/planhat_segment/enduser/{enduser.pk}/trends/",
        "/admin/planhat_segment/license/",
        "/admin/usage/inboxevent/",
        f"/admin/usage/inboxevent/{event.pk}/change/",
        "/admin/usage/inboxevent/unassigned/",
        "/admin/usage/activity/",
        "/admin/usage/metricvalue/",
        "/admin/integrations/metricdefinition/",
        "/admin/warehouse_sync/syncrun/",
        f"/admin/warehouse_sync/syncrun/{run.pk}/change/",
        "/admin/admin/logentry/",
        "/admin/preferences/time-zone/",
    ]


@pytest.mark.parametrize("screen", [LAPTOP, PHONE], ids=["1440x900", "390x844"])
def test_every_admin_page_fits_the_screen(browser_context, admin_user, workspace, screen):
    page = browser_context(viewport=screen).new_page()
    page.set_default_timeout(15_000)
    sign_in(page)
    misfits = []
    for path in admin_pages(workspace):
        page.goto(path)
        page.wait_for_load_state("networkidle")
        found = overflow(page)
        if found["scroll"] > found["inner"] or found["tables"]:
            misfits.append((path, found))
    assert misfits == [], "\n".join(map(str, misfits))


def test_phone_company_list_shows_name_health_and_last_activity(
    browser_context, admin_user, workspace
):
    page = browser_context(viewport=PHONE).new_page()
    sign_in(page)
    page.goto("/admin/planhat_segment/company/")
    headers = [
        h.strip().lower()
        for h in page.locator("#result_list thead th:visible").all_inner_texts()
        if h.strip()
    ]
    assert headers[0] == "name"
    assert set(headers) <= {"name", "health", "last activity"}
    laptop = browser_context().new_page()
    sign_in(laptop)
    laptop.goto("/admin/planhat_segment/company/")
    assert len(laptop.locator("#result_list thead th:visible").all()) > len(headers) + 1
