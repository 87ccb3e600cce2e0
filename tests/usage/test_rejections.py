"""Calls rejected at the endpoint are counted per reason for the event log (issue 12)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from usage.ingest.messages import messages_validate
from usage.models import InboxEvent, RejectedCallCount
from usage.rejections import (
    rejected_calls_count,
    rejected_calls_last_24h,
    rejected_counts_purge,
    rejection_reason,
)

pytestmark = pytest.mark.django_db

INVALID = {
    "track_without_event": {"type": "track", "userId": "u"},
    "group_without_group_id": {"type": "group", "userId": "u"},
    "no_identity": {"type": "identify", "traits": {}},
    "missing_type": {"userId": "u"},
    "unknown_type": {"type": "teleport", "userId": "u"},
    "not_an_object": 42,
    "bad_message_id": {"type": "identify", "userId": "u", "messageId": "x" * 101},
    "unstorable": {"type": "identify", "userId": "u", "traits": {"name": "a\u0000b"}},
}


@pytest.mark.parametrize("code", sorted(INVALID))
def test_each_rejection_of_ingest_has_its_reason(code):
    _accepted, rejected = messages_validate(
        items=[INVALID[code]], received_at=timezone.now(), check_each=True
    )
    assert [rejection_reason(r.detail) for r in rejected] == [code]


def test_endpoint_counts_its_rejections_per_reason(client, auth):
    body = [
        {"type": "track", "userId": "u-1", "messageId": "t-1"},
        {"type": "track", "userId": "u-1", "messageId": "t-2"},
        {"type": "group", "userId": "u-1", "messageId": "g-1"},
        {"type": "track", "userId": "u-1", "event": "Fine", "messageId": "ok-1"},
    ]
    answer = client.post("/dock/segment", json.dumps(body), content_type="application/json", **auth)
    assert answer.status_code == 200
    assert answer.json()["accepted"] == 1
    assert list(InboxEvent.objects.values_list("message_id", flat=True)) == ["ok-1"]
    counts = {row.code: row.count for row in rejected_calls_last_24h()}
    assert counts == {"track_without_event": 2, "group_without_group_id": 1}
    client.post("/v1/track", json.dumps({"userId": "u-2"}), content_type="application/json", **auth)
    assert {r.code: r.count for r in rejected_calls_last_24h()}["track_without_event"] == 3
    assert RejectedCallCount.objects.count() == 2  # one row per reason and hour


def test_a_request_without_rejections_writes_no_counter(client, auth):
    body = {"type": "track", "userId": "u-1", "event": "Fine", "messageId": "ok-2"}
    client.post("/v1/track", json.dumps(body), content_type="application/json", **auth)
    assert not RejectedCallCount.objects.exists()


def test_last_24h_leaves_older_hours_out_and_purge_drops_them():
    now = dt.datetime(2026, 3, 2, 12, 30, tzinfo=dt.UTC)
    rejected_calls_count(details=["A track call needs an event name (event)."], now=now)
    rejected_calls_count(
        details=["A track call needs an event name (event)."] * 4, now=now - dt.timedelta(hours=30)
    )
    assert [(r.code, r.count) for r in rejected_calls_last_24h(now=now)] == [
        ("track_without_event", 1)
    ]
    assert rejected_counts_purge(older_than_days=1, now=now) == 1
    assert RejectedCallCount.objects.count() == 1


def test_event_log_shows_the_rejections(admin_client_logged_in):
    rejected_calls_count(details=["A group call needs a groupId."] * 2)
    html = admin_client_logged_in.get(reverse("admin:usage_inboxevent_changelist")).content.decode()
    counts = html.split('data-testid="rejected-counts"', 1)[1].split("</p>", 1)[0]
    assert "Group without groupId 2" in counts
