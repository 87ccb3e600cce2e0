"""What a person sees after each click (issue 12): the result where the click was, the first
error in view, a warning before unsaved edits are lost, confirmations that name what goes."""

from __future__ import annotations

import pytest

from integrations.models import MetricDefinition
from integrations.services import integration_ensure
from planhat_segment.models import Company
from usage.models import InboxEvent, MetricValue

from .conftest import in_viewport

pytestmark = pytest.mark.django_db(transaction=True)

PAGE = "/admin/integrations/segment/"


def _values(metric: MetricDefinition, n: int) -> None:
    from django.utils import timezone

    company = Company.objects.get_or_create(name="Acme", external_id="ACME")[0]
    now = timezone.now()
    MetricValue.objects.bulk_create(
        MetricValue(company=company, metric=metric, value=i, occurred_at=now, message_id=f"v{i}")
        for i in range(n)
    )


def test_send_test_event_and_a_refused_push_answer_beside_their_buttons(logged_in_page):
    page = logged_in_page
    integration_ensure()
    page.goto(PAGE)
    with page.expect_navigation():
        page.get_by_test_id("send-test-event").click()
    result = page.get_by_test_id("flash-tracking")
    assert "Test identify" in result.inner_text() and "Test track" in result.inner_text()
    assert in_viewport(result.locator(".seg-msg").first)

    with page.expect_navigation():  # section 3 is off: refused, in words
        page.get_by_test_id("push-now").click()
    refused = page.get_by_test_id("flash-warehouse").locator(".seg-msg.error")
    assert refused.inner_text().startswith(
        "Push not started: The Segment data warehouse section is off"
    )
    assert in_viewport(refused)


def test_form_error_is_in_view_with_its_field_and_the_typed_key_is_kept(logged_in_page):
    page = logged_in_page
    integration_ensure()
    page.goto(PAGE)
    form = page.get_by_test_id("warehouse-form")
    form.locator("#id_warehouse_enabled").check()
    form.locator("#id_write_key").fill("wk_typed_123456")
    form.locator("#id_region").select_option("custom")
    form.locator("#id_custom_base_url").fill("ftp://proxy.example.com")
    with page.expect_navigation():
        form.get_by_role("button", name="Save data warehouse").click()
    error = page.locator("[data-field-row=custom_base_url] .errorlist")
    assert "must start with https://" in error.inner_text()
    assert in_viewport(error)  # scrolled to the first error, 1,000+ px down the page
    assert page.evaluate("document.activeElement.id") == "id_custom_base_url"
    assert form.locator("#id_write_key").input_value() == "wk_typed_123456"
    assert not integration_ensure().warehouse_enabled


def test_unsaved_setting_is_not_lost_silently_when_adding_a_metric(logged_in_page):
    page = logged_in_page
    integration_ensure()
    page.goto(PAGE)
    page.locator("#id_create_endusers").uncheck()
    assert page.get_by_test_id("unsaved-note").is_visible()
    dialogs = []

    def dismiss(dialog):
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    add = page.get_by_test_id("add-metric")
    add.locator("input[name=key]").fill("seats")
    add.locator("input[name=key]").press("Enter")
    page.wait_for_timeout(300)
    assert len(dialogs) == 1
    assert "unsaved changes in “1 · Segment user tracking”" in dialogs[0]
    assert not MetricDefinition.objects.exists()  # nothing was sent
    assert not page.locator("#id_create_endusers").is_checked()  # the edit is still there
    with page.expect_navigation():
        page.get_by_role("button", name="Save user tracking").click()
    assert integration_ensure().create_endusers is False


def test_removing_a_metric_archives_it_and_deleting_its_values_names_the_count(logged_in_page):
    page = logged_in_page
    integration_ensure()
    metric = MetricDefinition.objects.create(key="seats")
    _values(metric, 3)
    page.goto(PAGE)
    messages = []

    def accept(dialog):
        messages.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    with page.expect_navigation():
        page.locator("tr[data-metric=seats]").get_by_test_id("remove-metric").click()
    assert "Its 3 stored values are kept" in messages[-1]
    metric.refresh_from_db()
    assert metric.archived_at is not None and MetricValue.objects.count() == 3
    assert in_viewport(page.get_by_test_id("flash-metrics"))
    archived = page.get_by_test_id("archived-metrics")
    assert "seats" in archived.inner_text()

    page.once("dialog", lambda dialog: (messages.append(dialog.message), dialog.dismiss()))
    archived.get_by_test_id("purge-metric").click()
    page.wait_for_timeout(300)
    assert messages[-1] == "Delete metric 'seats' and its 3 stored values? This cannot be undone."
    assert MetricValue.objects.count() == 3  # dismissed: nothing went

    page.once("dialog", accept)
    with page.expect_navigation():
        archived.get_by_test_id("purge-metric").click()
    assert not MetricDefinition.objects.exists() and not MetricValue.objects.exists()
    done = page.get_by_test_id("flash-metrics")
    assert "its 3 stored values deleted" in done.inner_text()
    assert in_viewport(done)


def test_reprocess_from_the_event_page(logged_in_page):
    page = logged_in_page
    integration_ensure()
    event = InboxEvent.objects.create(
        message_id="g-nope",
        request_id="00000000-0000-0000-0000-000000000001",
        type="group",
        payload={"type": "group", "userId": "u", "groupId": "NOPE"},
        status="dropped",
        reason="unknown_company",
        company_key="NOPE",
    )
    page.goto(f"/admin/usage/inboxevent/{event.pk}/change/")
    assert "No company with external id NOPE." in page.locator("#content").inner_text()
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.get_by_test_id("reprocess-event").click()
    assert "queued for processing again" in page.locator(".messagelist").inner_text()
    event.refresh_from_db()
    assert event.status == "pending"


def test_time_zone_is_picked_in_the_admin(logged_in_page):
    page = logged_in_page
    acme = Company.objects.create(name="Acme", external_id="ACME")
    acme.endusers.create(external_id="U-1")
    page.goto("/admin/planhat_segment/enduser/")
    assert page.get_by_test_id("time-zone-link").inner_text() == "TIME ZONE: UTC"
    page.get_by_test_id("time-zone-link").click()
    page.fill("#id_time_zone", "Asia/Tokyo")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/admin/planhat_segment/enduser/")
    assert page.get_by_test_id("time-zone-link").inner_text() == "TIME ZONE: ASIA/TOKYO"
    assert "JST" in page.locator("#result_list").inner_text()


def test_unassigned_user_is_one_row_assigned_with_a_searchable_picker(logged_in_page):
    from usage.services import inbox_drain

    page = logged_in_page
    integration_ensure()
    Company.objects.create(name="Segment test company", external_id="t", is_test=True)
    acme = Company.objects.create(name="Acme Test Lab", external_id="ACME-LAB")
    for n, traits in enumerate([{"email": "ana@nowhere.example"}, {}]):
        InboxEvent.objects.create(
            message_id=f"w-{n}",
            request_id=f"00000000-0000-0000-0000-00000000000{n}",
            type="identify" if traits else "track",
            payload={
                "type": "identify" if traits else "track",
                "userId": "u-9",
                "event": "E",
                "traits": traits,
            },
        )
    inbox_drain()
    page.goto("/admin/")
    page.get_by_role("link", name="Unassigned users").first.click()
    page.wait_for_url("**/unassigned/")
    rows = page.get_by_test_id("unassigned-table").locator("tbody tr")
    assert rows.count() == 1  # the calls with and without an email are one user
    assert "ana@nowhere.example" in rows.first.inner_text()
    assert page.locator("#content h1").count() == 1
    rows.first.locator(".select2-selection").click()
    page.locator(".select2-search__field").fill("test")
    options = page.locator(".select2-results__option:not(.loading-results)")
    options.first.wait_for()
    assert options.all_inner_texts() == ["Acme Test Lab"]  # never the test company
    options.first.click()
    with page.expect_navigation():
        rows.first.locator("input[type=submit]").click()
    assert "assigned to Acme Test Lab" in page.locator(".messagelist").inner_text()
    assert InboxEvent.objects.filter(status="pending").count() == 2
    assert acme.endusers.get().external_id == "u-9"
