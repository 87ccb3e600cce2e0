"""``GET /v1/projects/{writeKey}/settings``: the settings analytics.js fetches before sending.

analytics.js (``@segment/analytics-next``) asks ``<cdnURL>/v1/projects/<writeKey>/settings``
first; a site that sets ``cdnURL`` to this install gets an answer whose ``Segment.io``
integration sends every call here (``apiHost`` = ``PUBLIC_BASE_URL``'s host + ``/v1``). The
browser key and the tenant token are both accepted (current, or previous within its grace);
an unknown key is a 404, as at Segment's CDN.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import orjson
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse

from .auth import integration_cached, token_valid
from .browser import browser_key_valid


def analytics_js_settings(*, write_key: str, public_base_url: str) -> dict:
    """The settings document: only what analytics-next needs to send to this host.

    No destinations run in the browser (``remotePlugins`` empty, no classic integrations),
    there is no tracking plan (``plan``: its schema filter is a chunk analytics.js would
    fetch from ``<cdnURL>/analytics-next/bundles/``) and its own telemetry (``metrics``) is
    off, so the page loads nothing else from here.
    """
    parts = urlsplit(public_base_url)
    path = parts.path.rstrip("/")
    return {
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": f"{parts.netloc}{path}/v1",
                "protocol": parts.scheme or "https",
                "unbundledIntegrations": [],
                "addBundledMetadata": False,
            }
        },
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
    }


def _cors(response: HttpResponse) -> HttpResponse:
    response["Access-Control-Allow-Origin"] = settings.INGEST_CORS_ALLOW_ORIGIN
    return response


def _json(status: int, body: dict) -> HttpResponse:
    return _cors(HttpResponse(orjson.dumps(body), status=status, content_type="application/json"))


def project_settings(request: HttpRequest, write_key: str) -> HttpResponse:
    """``GET /v1/projects/<writeKey>/settings`` (OPTIONS answered for CORS)."""
    if request.method == "OPTIONS":
        response = HttpResponse(status=204)
        response["Access-Control-Allow-Methods"] = "GET, OPTIONS"
        response["Access-Control-Allow-Headers"] = request.META.get(
            "HTTP_ACCESS_CONTROL_REQUEST_HEADERS", "Content-Type"
        )
        response["Access-Control-Max-Age"] = "86400"
        return _cors(response)
    if request.method not in ("GET", "HEAD"):
        response = _json(405, {"error": "method_not_allowed", "detail": "Use GET."})
        response["Allow"] = "GET, HEAD, OPTIONS"
        return response
    try:
        integration = integration_cached()
    except DatabaseError:
        response = _json(503, {"error": "unavailable", "detail": "Retry later."})
        response["Retry-After"] = str(settings.INGEST_RETRY_AFTER_SECONDS)
        return response
    known = browser_key_valid(integration=integration, candidates=[write_key]) or token_valid(
        integration=integration, candidates=[write_key]
    )
    if not known:
        return _json(404, {"error": "not_found", "detail": "No project has this write key."})
    response = _json(
        200,
        analytics_js_settings(write_key=write_key, public_base_url=settings.PUBLIC_BASE_URL),
    )
    # A rotation must reach browsers within the grace period: cache briefly only.
    response["Cache-Control"] = "public, max-age=60"
    return response
