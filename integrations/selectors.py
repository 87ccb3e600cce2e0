"""Reads about the integration: what to paste into Segment, and token state."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from .models import IntegrationSettings


@dataclass(frozen=True)
class ConnectionInstructions:
    """Everything an admin pastes into Segment to point it at this install."""

    destination_url: str  # Segment "Webhooks (Actions)" destination URL
    authorization_header: str  # its Authorization header value
    tracking_api_host: str  # host for any Segment SDK (/v1/*)
    python_snippet: str
    javascript_snippet: str
    curl_example: str
    # Planhat's open endpoints (the tenant token in the path) and analytics.js's settings.
    planhat_urls: dict[str, str] | None = None
    settings_url: str = ""


def basic_auth_value(token: str) -> str:
    return "Basic " + base64.b64encode(f"{token}:".encode()).decode()


def connection_instructions(*, integration: IntegrationSettings) -> ConnectionInstructions:
    base = settings.PUBLIC_BASE_URL
    token = integration.tenant_token
    auth = basic_auth_value(token)
    python_snippet = (
        "import segment.analytics as analytics\n"
        f'analytics.write_key = "{token}"\n'
        f'analytics.host = "{base}"\n'
        'analytics.identify("user-123", {"email": "ana@example.com", "company_id": "ACME-001"})\n'
        'analytics.track("user-123", "Report Downloaded")'
    )
    # analytics.js runs in visitors' browsers: it gets the browser key, never the token.
    browser_key = integration.browser_key
    javascript_snippet = (
        "// analytics.js (@segment/analytics-next): settings and events from this install\n"
        "AnalyticsBrowser.load({\n"
        f'  writeKey: "{browser_key}",\n'
        f'  cdnURL: "{base}",\n'
        "})"
    )
    curl_example = (
        f"curl -X POST {base}/dock/segment \\\n"
        f'  -H "Authorization: {auth}" -H "Content-Type: application/json" \\\n'
        '  -d \'{"type":"track","userId":"user-123","event":"Report Downloaded"}\''
    )
    return ConnectionInstructions(
        planhat_urls=planhat_urls(token=token),
        settings_url=f"{base}/v1/projects/{browser_key}/settings",
        destination_url=f"{base}/dock/segment",
        authorization_header=auth,
        tracking_api_host=base,
        python_snippet=python_snippet,
        javascript_snippet=javascript_snippet,
        curl_example=curl_example,
    )


def planhat_urls(*, token: str) -> dict[str, str]:
    """Planhat's open endpoints on this install, with the tenant token in the path."""
    base = settings.PUBLIC_BASE_URL
    return {
        "analytics": f"{base}/analytics/{token}",
        "analytics_bulk": f"{base}/analytics/bulk/{token}",
        "analytics_csv": f"{base}/analytics/stream/csv/{token}",
        "dimensiondata": f"{base}/dimensiondata/{token}",
    }


def previous_browser_key_valid_until(
    *, integration: IntegrationSettings, now: datetime | None = None
) -> datetime | None:
    """Until when the rotated-out browser key still works, or None when none does."""
    now = now or timezone.now()
    until = integration.previous_browser_key_valid_until
    if integration.previous_browser_key and until and until > now:
        return until
    return None


def previous_token_valid_until(
    *, integration: IntegrationSettings, now: datetime | None = None
) -> datetime | None:
    """Until when the rotated-out token still works, or None when none does."""
    now = now or timezone.now()
    until = integration.previous_token_valid_until
    if integration.previous_token and until and until > now:
        return until
    return None


def masked(secret: str) -> str:
    """Show that a secret is set without showing it: the last four characters only."""
    if not secret:
        return ""
    return "••••" + secret[-4:] if len(secret) > 8 else "••••"
