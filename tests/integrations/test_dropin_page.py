"""The integration page and API: the browser key, Planhat's URLs, metric sources."""

from __future__ import annotations

import html as html_lib

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from integrations.models import IntegrationSettings, MetricDefinition, MetricSource
from integrations.services import integration_ensure

pytestmark = pytest.mark.django_db
PAGE = "admin:segment_integration"


def test_page_shows_browser_key_planhat_urls_and_settings_url(admin_client_logged_in, integration):
    html = html_lib.unescape(admin_client_logged_in.get(reverse(PAGE)).content.decode())
    token, key = integration.tenant_token, integration.browser_key
    assert key and key != token
    assert f'value="{key}" id="browser-key"' in html
    for url in (
        f"http://127.0.0.1:8000/analytics/{token}",
        f"http://127.0.0.1:8000/analytics/bulk/{token}",
        f"http://127.0.0.1:8000/analytics/stream/csv/{token}",
        f"http://127.0.0.1:8000/dimensiondata/{token}",
        f"http://127.0.0.1:8000/v1/projects/{key}/settings",
    ):
        assert f'value="{url}"' in html
    # The analytics.js snippet carries the browser key and cdnURL, never the tenant token.
    assert f'writeKey: "{key}"' in html and 'cdnURL: "http://127.0.0.1:8000"' in html
    assert f'writeKey: "{token}"' not in html


def test_rotate_browser_key_on_the_page_keeps_the_old_one_in_grace(
    admin_client_logged_in, integration
):
    old = integration.browser_key
    answer = admin_client_logged_in.post(reverse(PAGE), {"action": "rotate_browser_key"})
    assert answer.status_code == 302
    row = IntegrationSettings.objects.get()
    assert row.browser_key != old and row.previous_browser_key == old
    assert row.tenant_token == integration.tenant_token  # the token is left alone
    html = admin_client_logged_in.get(reverse(PAGE)).content.decode()
    assert 'data-testid="browser-grace-notice"' in html
    assert LogEntry.objects.filter(change_message__startswith="Browser key rotated").exists()


@pytest.mark.parametrize(
    ("role", "status"),
    [("Viewer", 403), ("CS manager", 403), ("Integration admin", 302)],
)
def test_rotate_browser_key_needs_the_token_rotation_permission(
    client_in_role, integration, role, status
):
    answer = client_in_role(role).post(reverse(PAGE), {"action": "rotate_browser_key"})
    assert answer.status_code == status
    rotated = IntegrationSettings.objects.get().browser_key != integration.browser_key
    assert rotated is (status == 302)


def test_viewer_sees_browser_key_and_token_urls_masked(client_in_role, integration):
    html = client_in_role("Viewer").get(reverse(PAGE)).content.decode()
    assert integration.browser_key not in html and integration.tenant_token not in html
    assert "••••" + integration.browser_key[-4:] in html
    assert "/analytics/bulk/&lt;tenant token&gt;" in html


def test_metric_list_shows_each_metric_source(admin_client_logged_in, integration):
    MetricDefinition.objects.create(key="seats")
    MetricDefinition.objects.create(key="logins", source=MetricSource.DIMENSION_DATA)
    html = admin_client_logged_in.get(reverse(PAGE)).content.decode()
    assert "Segment group traits (predefined)" in html
    assert "Dimension data (created on first value)" in html


def test_api_shows_browser_key_to_managers_and_rotates_it(api_client_in_role, integration):
    admin = api_client_in_role("Integration admin")
    data = admin.get("/api/integration/").json()
    assert data["browser_key"] == integration.browser_key
    assert data["previous_browser_key_valid_until"] is None
    viewer = api_client_in_role("Viewer").get("/api/integration/").json()
    assert viewer["browser_key"] == "••••" + integration.browser_key[-4:]
    refused = api_client_in_role("CS manager").post("/api/integration/rotate-browser-key/")
    assert refused.status_code == 403
    rotated = admin.post("/api/integration/rotate-browser-key/").json()
    row = integration_ensure()
    assert rotated["browser_key"] == row.browser_key != integration.browser_key
    assert rotated["previous_browser_key_valid_until"]


def test_api_metric_definitions_show_source_read_only(api_client_in_role):
    admin = api_client_in_role("Integration admin")
    made = admin.post(
        "/api/metric-definitions/", {"key": "nps", "source": "dimension_data"}, format="json"
    )
    assert made.status_code == 201
    assert made.json()["source"] == "segment"  # made by a person: a Segment group trait


def test_a_row_without_browser_key_gets_one(integration):
    IntegrationSettings.objects.update(browser_key="")
    assert integration_ensure().browser_key
