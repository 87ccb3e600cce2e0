"""An Airbyte-style sender (bulk activities in chunks of 10,000, and dimension data) against
the live server, accounted for exactly: every record is an activity, a metric value, a
duplicate or an error, and the database agrees with the answers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from planhat_segment.models import EndUser
from tests.factories import CompanyFactory
from usage.ingest.auth import integration_cache_clear
from usage.models import Activity, InboxEvent, InboxStatus, MetricValue
from usage.services import inbox_drain

SENDER = Path(__file__).with_name("airbyte_style_sender.py")
COMPANIES = 20
USERS = 500


def records() -> tuple[list[dict], dict]:
    """20,500 activity records (25 bad, 10 exact repeats) and 300 metrics (3 bad)."""
    out: list[dict] = []
    for i in range(20_500):
        user = i % USERS
        data = {
            "email": f"user{user}@c{user % COMPANIES}.example",
            "id": f"user-{user}",
            "cId": f"C{user % COMPANIES}",
            "action": ("Logged in", "Exported", "Viewed report")[i % 3],
            "date": f"2026-02-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{(i // 60) % 60:02d}Z",
            "weight": 1 + i % 3,
            "info": {"n": i},
        }
        if i % 1000 == 999:
            del data["action"]  # 20 bad: no action
        if i % 4000 == 2000:
            data = {"email": "nobody", "action": "x"}  # 5 more bad: not an email, no id
        out.append({"stream": "activities", "data": data})
    for i in range(10):  # exact repeats of good records: the same activity, counted once
        out.append(out[i * 7])
    for i in range(300):
        data = {
            "dimensionId": ("mrr_usage", "seats_used")[i % 2],
            "value": i,
            "externalId": f"C{i % COMPANIES}",
            "date": f"2026-02-{1 + i % 28:02d}T00:00:{i % 60:02d}Z",
        }
        if i % 100 == 50:
            data["value"] = "lots"
        out.append({"stream": "metrics", "data": data})
    expected = {"activities_bad": 25, "repeats": 10, "metrics_bad": 3}
    return out, expected


def test_airbyte_style_sender_is_accounted_for_exactly(live_server, transactional_db, integration):
    integration_cache_clear()
    for n in range(COMPANIES):
        CompanyFactory(external_id=f"C{n}")
    lines, expected = records()
    done = subprocess.run(
        [
            sys.executable,
            str(SENDER),
            "--base-url",
            live_server.url,
            "--token",
            integration.tenant_token,
        ],
        input="\n".join(json.dumps(r) for r in lines),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    summary = json.loads(done.stdout)
    activities, metrics = summary["activities"], summary["metrics"]
    assert activities["records"] == 20_510 and activities["requests"] == 3  # 10k, 10k, 510
    assert activities["errors"] == expected["activities_bad"]
    assert activities["processed"] == 20_510 - expected["activities_bad"]
    assert (metrics["records"], metrics["requests"], metrics["errors"]) == (300, 1, 3)
    assert metrics["processed"] == 297

    distinct_good = 20_500 - expected["activities_bad"]
    assert InboxEvent.objects.filter(type="track").count() == distinct_good
    inbox_drain()
    assert set(InboxEvent.objects.values_list("status", flat=True)) == {InboxStatus.PROCESSED}
    assert Activity.objects.count() == distinct_good
    assert EndUser.objects.count() == USERS
    assert MetricValue.objects.count() == 297
    assert MetricValue.objects.filter(metric__key="seats_used").count() == 150
    assert MetricValue.objects.filter(metric__key="mrr_usage").count() == 147
    weights = {w for (w,) in Activity.objects.values_list("weight").distinct()}
    assert weights == {1.0, 2.0, 3.0}
