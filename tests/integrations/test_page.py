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
