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
    host_no_scheme = base.split("://", 1)[-1]
    javascript_snippet = (
        "// analytics.js (AnalyticsBrowser from @segment/analytics-next)\n"
        "AnalyticsBrowser.load({\n"
        f'  writeKey: "{token}",\n'
        f'  cdnSettings: {{ integrations: {{ "Segment.io": {{ apiHost: "{host_no_scheme}/v1" }} }} }},\n'
        "})"
    )
    curl_example = (
        f"curl -X POST {base}/dock/segment \\\n"
        f'  -H "Authorization: {auth}" -H "Content-Type: application/json" \\\n'
        '  -d \'{"type":"track","userId":"user-123","event":"Report Downloaded"}\''
    )
    return ConnectionInstructions(
        destination_url=f"{base}/dock/segment",
        authorization_header=auth,
        tracking_api_host=base,
        python_snippet=python_snippet,
        javascript_snippet=javascript_snippet,
        curl_example=curl_example,
    )


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
