"""While a push runs, the integration page follows it by itself (issue 12): objects synced
per model and elapsed time update without a reload, the push buttons stay disabled, and the
outcome shows when the run ends. Against the local sink, slowed down."""

from __future__ import annotations

import pytest

from planhat_segment.models import Company
from tests.warehouse_sync.conftest import integration_aim_at
from warehouse_sync.models import SyncRun

from .conftest import in_viewport, run_in_thread

pytestmark = pytest.mark.django_db(transaction=True)

COMPANIES = 6


def test_push_progress_updates_while_it_runs(logged_in_page, sink, settings):
    from integrations.services import integration_update
    from warehouse_sync.services import sync_run_execute

    settings.WAREHOUSE_PUSH_MAX_EVENTS_PER_SECOND = 0
    settings.WAREHOUSE_PUSH_MAX_BATCH_MESSAGES = 2  # three batches of companies
    integration_update(integration=integration_aim_at(sink), synced_models=["company"])
    Company.objects.bulk_create(
        Company(name=f"Company {n}", external_id=f"C-{n}") for n in range(COMPANIES)
    )
    sink.script("slow", times=COMPANIES, delay=1.5)  # each batch takes 1.5 s at "Segment"

    page = logged_in_page
    page.goto("/admin/integrations/segment/")
    with page.expect_navigation():
        page.get_by_test_id("push-now").click()
    assert page.get_by_test_id("push-now").is_disabled()
    assert page.get_by_test_id("push-full").is_disabled()
    run = SyncRun.objects.get()
    worker = run_in_thread(sync_run_execute, run_id=run.pk)  # as the warehouse worker would

    synced = page.locator(
        "[data-testid=sync-table] tr[data-model=company] [data-field=objects_synced]"
    )
    # Part-way: some companies counted, not all, the run still running; nobody reloaded.
    page.wait_for_function(
        """([el, total]) => { const n = parseInt(el.textContent, 10); return n > 0 && n < total; }""",
        arg=[synced.element_handle(), COMPANIES],
    )
    assert page.get_by_test_id("sync-status").inner_text() == "Running"
    first_elapsed = page.get_by_test_id("sync-elapsed").inner_text()
    assert first_elapsed.startswith("running for ")
    page.wait_for_function(
        "([el, before]) => el.textContent !== before",
        arg=[page.get_by_test_id("sync-elapsed").element_handle(), first_elapsed],
    )
    assert page.get_by_test_id("push-now").is_disabled()

    outcome = page.get_by_test_id("push-outcome")
    outcome.wait_for(timeout=30_000)
    worker.join(timeout=30)
    assert worker.errors == []
    assert outcome.inner_text().startswith(
        f"Push finished: Succeeded — {COMPANIES} objects synced, 0 errors"
    )
    assert in_viewport(outcome)
    assert synced.inner_text() == str(COMPANIES)
    assert page.get_by_test_id("push-now").is_enabled()
    assert len(sink.of_type("group")) == COMPANIES
