"""Segment's analytics.js (@segment/analytics-next) in real Chromium, pointed at this
install by ``cdnURL`` alone: it fetches its settings here and sends identify and track here,
with the browser key; processing turns them into an enduser and an activity."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from planhat_segment.models import EndUser
from tests.factories import CompanyFactory
from usage.ingest.auth import integration_cache_clear
from usage.models import Activity, InboxEvent, InboxStatus
from usage.services import inbox_drain

SCRIPT = Path(__file__).parents[2] / "scripts" / "ensure_analytics_js.sh"


@pytest.fixture(scope="session")
def analytics_next_dir() -> Path:
    # `make test` runs the script first; running it here too covers a bare pytest.
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"needs @segment/analytics-next from the npm registry: {done.stderr.strip()}")
    return Path(done.stdout.strip().splitlines()[-1]).resolve()


@pytest.mark.urls("tests.browser.ajs_urls")
def test_analytics_js_sends_identify_and_track_with_the_browser_key(
    page, live_server, transactional_db, analytics_next_dir, monkeypatch, integration, settings
):
    from tests.browser import ajs_urls

    monkeypatch.setattr(ajs_urls, "BUNDLE_DIR", analytics_next_dir)
    # Where this install says it is reached: the settings' apiHost comes from it.
    settings.PUBLIC_BASE_URL = live_server.url
    integration_cache_clear()
    acme = CompanyFactory(external_id="ACME")
    key = integration.browser_key
    seen: list[tuple[str, str, str]] = []
    page.on(
        "request",
        lambda r: seen.append(
            (r.method, r.url.replace(live_server.url, ""), r.headers.get("content-type", ""))
        ),
    )
    page.goto(f"{live_server.url}/site/?key={key}")
    assert page.evaluate("window.sent") == "sent"

    # analytics.js asked this install for its settings, then posted both calls here.
    paths = [(method, url.split("?")[0]) for method, url, _ in seen]
    assert ("GET", f"/v1/projects/{key}/settings") in paths
    # Nothing else was fetched from this install: no bundle chunk, no telemetry.
    assert not [p for _, p in paths if p.startswith("/analytics-next/") or p == "/v1/m"]
    posts = [p for m, p in paths if m == "POST"]
    assert "/v1/i" in posts and "/v1/t" in posts
    deadline = time.monotonic() + 10
    while InboxEvent.objects.count() < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    rows = {r.type: r for r in InboxEvent.objects.all()}
    assert set(rows) == {"identify", "track"}
    assert "writeKey" not in rows["track"].payload
    assert rows["track"].payload["context"]["library"]["name"] == "analytics.js"

    inbox_drain()
    assert {r.status for r in InboxEvent.objects.all()} == {InboxStatus.PROCESSED}
    bea = EndUser.objects.get(external_id="u-browser")
    assert (bea.company, bea.email, bea.name) == (acme, "bea@acme.example", "Bea Browser")
    activity = Activity.objects.get()
    assert (activity.enduser, activity.action) == (bea, "Pricing Viewed")
    assert activity.properties == {"plan": "pro"}
