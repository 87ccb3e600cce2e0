"""The integration admin page: what to paste into Segment, sections 1–3, and their errors."""

import base64
import html as html_lib

import pytest
from django.urls import reverse

from integrations.models import IntegrationSettings, MetricDefinition

pytestmark = pytest.mark.django_db


@pytest.fixture
def page_url():
    return reverse("admin:segment_integration")


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_page_requires_staff_login(client, page_url):
    response = client.get(page_url)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_page_shows_what_to_paste_into_segment(admin_client_logged_in, page_url, integration):
    response = admin_client_logged_in.get(page_url)
    assert response.status_code == 200
    html = html_lib.unescape(response.content.decode())
    expected_auth = "Basic " + base64.b64encode(f"{integration.tenant_token}:".encode()).decode()
    assert integration.tenant_token in html
    assert expected_auth in html
    assert "http://127.0.0.1:8000/dock/segment" in html
    assert 'analytics.host = "http://127.0.0.1:8000"' in html
    assert "Webhooks (Actions)" in html


def test_page_badge_is_off_until_warehouse_enabled(admin_client_logged_in, page_url, integration):
    html = admin_client_logged_in.get(page_url).content.decode()
    assert 'data-testid="status-badge">OFF<' in html
    response = admin_client_logged_in.post(
        page_url,
        {
            "action": "save_warehouse",
            "warehouse_enabled": "on",
            "write_key": "wk_live_123456789",
            "region": "eu",
            "synced_models": ["company", "enduser"],
        },
    )
    assert response.status_code == 302
    row = IntegrationSettings.objects.get()
    assert row.warehouse_enabled
    assert row.write_key == "wk_live_123456789"
    assert row.region == "eu"
    assert row.synced_models == ["company", "enduser"]
    html = admin_client_logged_in.get(page_url).content.decode()
    assert 'data-testid="status-badge">ON<' in html
    assert "wk_live_123456789" not in html  # the write key is masked
    assert "••••6789" in html


def test_enabling_warehouse_without_write_key_says_why(
    admin_client_logged_in, page_url, integration
):
    response = admin_client_logged_in.post(
        page_url, {"action": "save_warehouse", "warehouse_enabled": "on", "region": "us"}
    )
    assert response.status_code == 400
    assert "write key" in response.content.decode()
    assert not IntegrationSettings.objects.get().warehouse_enabled


def test_custom_region_needs_base_url(admin_client_logged_in, page_url, integration):
    response = admin_client_logged_in.post(
        page_url, {"action": "save_warehouse", "region": "custom"}
    )
    assert response.status_code == 400
    assert "custom region needs a base URL" in response.content.decode()


def test_save_tracking_keeps_secret_when_blank(admin_client_logged_in, page_url, integration):
    data = {
        "action": "save_tracking",
        "user_tracking_enabled": "on",
        "match_by_email_domain": "on",
        "unassigned_wait_hours": "48",
        "shared_secret": "s3cret-value",
    }
    assert admin_client_logged_in.post(page_url, data).status_code == 302
    row = IntegrationSettings.objects.get()
    assert row.shared_secret == "s3cret-value"
    assert row.create_endusers is False  # unchecked box
    assert row.unassigned_wait_hours == 48
    admin_client_logged_in.post(page_url, {**data, "shared_secret": ""})
    assert IntegrationSettings.objects.get().shared_secret == "s3cret-value"
    admin_client_logged_in.post(
        page_url, {**data, "shared_secret": "", "clear_shared_secret": "on"}
    )
    assert IntegrationSettings.objects.get().shared_secret == ""


def test_bad_wait_hours_is_a_clear_error(admin_client_logged_in, page_url, integration):
    response = admin_client_logged_in.post(
        page_url, {"action": "save_tracking", "unassigned_wait_hours": "soon"}
    )
    assert response.status_code == 400
    assert "Enter a whole number" in response.content.decode()


def test_add_and_remove_metric(admin_client_logged_in, page_url, integration):
    response = admin_client_logged_in.post(
        page_url, {"action": "add_metric", "key": "active_users", "label": ""}
    )
    assert response.status_code == 302
    metric = MetricDefinition.objects.get()
    assert metric.key == "active_users"
    assert metric.label == "Active users"
    # Remove archives: hidden from the list, values kept, restorable.
    response = admin_client_logged_in.post(
        page_url, {"action": "archive_metric", "metric_id": str(metric.pk)}, follow=True
    )
    metric.refresh_from_db()
    assert metric.archived_at is not None
    assert any("its stored values are kept" in m for m in _messages(response))
    html = response.content.decode()
    assert 'data-testid="archived-metrics"' in html
    assert 'data-testid="remove-metric"' not in html  # no metric in use any more
    admin_client_logged_in.post(page_url, {"action": "restore_metric", "metric_id": metric.pk})
    metric.refresh_from_db()
    assert metric.archived_at is None


@pytest.mark.parametrize(
    ("key", "error"),
    [("active users", "no spaces"), ("", "This field is required")],
)
def test_invalid_metric_key_is_refused_with_reason(
    admin_client_logged_in, page_url, integration, key, error
):
    response = admin_client_logged_in.post(page_url, {"action": "add_metric", "key": key})
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not MetricDefinition.objects.exists()


def test_duplicate_metric_key_is_refused(admin_client_logged_in, page_url, integration):
    MetricDefinition.objects.create(key="seats")
    response = admin_client_logged_in.post(page_url, {"action": "add_metric", "key": "seats"})
    assert response.status_code == 400
    assert "already exists" in response.content.decode()
    assert MetricDefinition.objects.count() == 1


def test_rotate_token_shows_grace_period(admin_client_logged_in, page_url, integration):
    old = integration.tenant_token
    response = admin_client_logged_in.post(page_url, {"action": "rotate_token"}, follow=True)
    row = IntegrationSettings.objects.get()
    assert row.tenant_token != old
    assert row.previous_token == old
    html = response.content.decode()
    assert row.tenant_token in html
    assert "previous token still works until" in html
    assert any("keeps working until" in m for m in _messages(response))


def test_push_refused_while_section_off(admin_client_logged_in, page_url, integration):
    response = admin_client_logged_in.post(page_url, {"action": "push"}, follow=True)
    assert any(m.startswith("Push not started:") for m in _messages(response))


def test_unknown_action_is_reported(admin_client_logged_in, page_url, integration):
    response = admin_client_logged_in.post(page_url, {"action": "explode"}, follow=True)
    assert any("Unknown action" in m for m in _messages(response))


# --- issue 12: feedback where the click was, validation in words, safe metric deletes -----


def _warehouse(**overrides) -> dict:
    data = {
        "action": "save_warehouse",
        "warehouse_enabled": "on",
        "write_key": "wk_typed_123456",
        "region": "custom",
        "custom_base_url": "https://proxy.example.com",
        "synced_models": ["company", "enduser"],
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def _error_of(response, field: str) -> str:
    return " ".join(response.context["warehouse_form"].errors.get(field, []))


def test_no_synced_model_is_an_error_on_that_field(admin_client_logged_in, page_url, integration):
    response = admin_client_logged_in.post(page_url, _warehouse(synced_models=None))
    assert response.status_code == 400
    assert "Tick at least one model" in _error_of(response, "synced_models")
    assert _error_of(response, "custom_base_url") == ""
    assert "This field cannot be blank" not in response.content.decode()


def test_non_http_custom_url_is_refused(admin_client_logged_in, page_url, integration):
    response = admin_client_logged_in.post(
        page_url, _warehouse(custom_base_url="ftp://proxy.example.com")
    )
    assert response.status_code == 400
    assert "must start with https://" in _error_of(response, "custom_base_url")
    assert not IntegrationSettings.objects.get().warehouse_enabled


def test_typed_write_key_is_kept_after_an_unrelated_error(
    admin_client_logged_in, page_url, integration
):
    response = admin_client_logged_in.post(page_url, _warehouse(custom_base_url="ftp://x.example"))
    assert response.status_code == 400
    assert 'value="wk_typed_123456"' in response.content.decode()


def test_absurd_hold_time_is_refused_in_words(admin_client_logged_in, page_url, integration):
    response = admin_client_logged_in.post(
        page_url,
        {
            "action": "save_tracking",
            "user_tracking_enabled": "on",
            "unassigned_wait_hours": "100000",
        },
    )
    assert response.status_code == 400
    errors = response.context["tracking_form"].errors["unassigned_wait_hours"]
    assert errors == ["Hold events for at most 720 hours (30 days)."]
    assert IntegrationSettings.objects.get().unassigned_wait_hours == 24


def test_duplicate_key_of_an_archived_metric_says_restore(
    admin_client_logged_in, page_url, integration
):
    from django.utils import timezone

    MetricDefinition.objects.create(key="seats", archived_at=timezone.now())
    response = admin_client_logged_in.post(page_url, {"action": "add_metric", "key": "seats"})
    assert response.status_code == 400
    assert response.context["metric_form"].errors["key"] == [
        "A metric with the key 'seats' already exists (archived): restore it instead."
    ]


@pytest.mark.parametrize(
    ("action", "spot"),
    [
        ({"action": "push"}, "warehouse"),
        ({"action": "rotate_token"}, "token"),
        ({"action": "add_metric", "key": "mau"}, "metrics"),
        ({"action": "save_metrics", "company_metrics_enabled": "on"}, "metrics"),
    ],
)
def test_result_is_shown_beside_the_button(
    admin_client_logged_in, page_url, integration, action, spot
):
    response = admin_client_logged_in.post(page_url, action)
    assert response.status_code == 302
    assert response["Location"] == f"{page_url}?at={spot}#{spot}-result"
    page = admin_client_logged_in.get(response["Location"])
    html = page.content.decode()
    flash = html.split(f'id="{spot}-result"', 1)[1].split("</div>", 1)[0]
    assert "seg-msg" in flash  # the message is inside the spot, not at the top of the page
    assert '<ul class="messagelist">' not in html


def test_purging_a_metric_asks_for_its_count(admin_client_logged_in, page_url, integration):
    from django.utils import timezone

    from planhat_segment.models import Company
    from usage.models import MetricValue

    metric = MetricDefinition.objects.create(key="seats")
    company = Company.objects.create(name="Acme", external_id="ACME")
    now = timezone.now()
    MetricValue.objects.bulk_create(
        MetricValue(company=company, metric=metric, value=i, occurred_at=now, message_id=f"m{i}")
        for i in range(4)
    )
    html = admin_client_logged_in.get(page_url).content.decode()
    assert "Its 4 stored values are kept" in html  # Remove's confirmation names the count
    admin_client_logged_in.post(page_url, {"action": "archive_metric", "metric_id": metric.pk})
    html = admin_client_logged_in.get(page_url).content.decode()
    assert "Delete metric 'seats' and its 4 stored values?" in html
    response = admin_client_logged_in.post(
        page_url,
        {"action": "purge_metric", "metric_id": metric.pk, "confirm_values": 3},
        follow=True,
    )
    assert any("has 4 stored values, not 3" in m for m in _messages(response))
    assert MetricValue.objects.count() == 4
    admin_client_logged_in.post(
        page_url, {"action": "purge_metric", "metric_id": metric.pk, "confirm_values": 4}
    )
    assert not MetricDefinition.objects.exists() and not MetricValue.objects.exists()


def test_archived_metric_gets_no_new_values(integration):
    from django.utils import timezone

    from planhat_segment.models import Company
    from usage.models import InboxEvent, MetricValue
    from usage.services import inbox_drain

    Company.objects.create(name="Acme", external_id="ACME")
    seats = MetricDefinition.objects.create(key="seats")
    MetricDefinition.objects.create(key="mau", archived_at=timezone.now())
    InboxEvent.objects.create(
        message_id="g-archived",
        request_id="00000000-0000-0000-0000-000000000001",
        type="group",
        payload={
            "type": "group",
            "userId": "u",
            "groupId": "ACME",
            "traits": {"mau": 5, "seats": 2},
        },
    )
    InboxEvent.objects.create(
        message_id="g-only-archived",
        request_id="00000000-0000-0000-0000-000000000002",
        type="group",
        payload={"type": "group", "userId": "u", "groupId": "ACME", "traits": {"mau": 7}},
    )
    inbox_drain()
    assert list(MetricValue.objects.values_list("metric", "value")) == [(seats.pk, 2.0)]
    only_archived = InboxEvent.objects.get(message_id="g-only-archived")
    assert only_archived.status == "processed"
    assert "no metric recorded" in only_archived.detail


def test_health_lines_say_ingest_and_push_state_in_words(
    admin_client_logged_in, page_url, integration
):
    from django.utils import timezone

    from usage.models import InboxEvent
    from warehouse_sync.models import SyncRun

    InboxEvent.objects.create(
        message_id="failed-1",
        request_id="00000000-0000-0000-0000-000000000003",
        type="track",
        payload={},
        status="failed",
    )
    now = timezone.now()
    SyncRun.objects.create(
        trigger="manual",
        status="failed",
        started_at=now,
        finished_at=now,
        duration=now - now,
        error="write key rejected",
    )
    html = admin_client_logged_in.get(page_url).content.decode()
    assert "Ingest: 1 of 1 events in the last hour failed" in html
    assert "Last push: failed just now: write key rejected" in html
    assert 'class="health-bad" data-part="push"' in html


def test_progress_endpoint_reports_the_running_run(admin_client_logged_in, integration):
    from django.urls import reverse

    from warehouse_sync.models import SyncModelResult, SyncRun

    url = reverse("admin:warehouse_sync_syncrun_progress")
    assert admin_client_logged_in.get(url).status_code == 404
    run = SyncRun.objects.create(trigger="manual", synced_models=["company"], objects_synced=7)
    SyncModelResult.objects.create(run=run, model="company", objects_synced=7, errors=1)
    body = admin_client_logged_in.get(url).json()
    assert (body["id"], body["running"], body["objects_synced"]) == (run.pk, True, 7)
    assert body["models"] == [
        {"model": "company", "objects_synced": 7, "errors": 1, "error_messages": []}
    ]
    assert body["elapsed_seconds"] >= 0
    assert admin_client_logged_in.get(url, {"run": "x"}).status_code == 400
