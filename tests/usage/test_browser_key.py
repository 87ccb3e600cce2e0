"""The browser key on /v1 and the analytics.js settings GET."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from integrations.services import browser_key_rotate, tenant_token_rotate
from tests.usage.conftest import basic
from usage.ingest.auth import integration_cache_clear
from usage.models import InboxEvent

pytestmark = pytest.mark.django_db


def post(client, path, body, **extra):
    return client.generic(
        "POST", path, json.dumps(body).encode(), content_type="text/plain", **extra
    )


def call(kind, message_id, **extra):
    fields = {"type": kind, "userId": "u-1", "messageId": message_id, **extra}
    if kind == "track":
        fields.setdefault("event", "Clicked")
    if kind == "group":
        fields.setdefault("groupId", "ACME")
    return fields


@pytest.fixture
def browser_key(integration) -> str:
    return integration.browser_key


@pytest.mark.parametrize(
    "path",
    ["/v1/identify", "/v1/i", "/v1/track", "/v1/t", "/v1/page", "/v1/p", "/v1/screen", "/v1/s"],
)
def test_browser_key_may_send_user_calls_as_basic_or_write_key(client, browser_key, path):
    kind = {"i": "identify", "t": "track", "p": "page", "s": "screen"}.get(
        path.rsplit("/", 1)[1], path.rsplit("/", 1)[1]
    )
    by_header = post(client, path, call(kind, "h-1"), HTTP_AUTHORIZATION=basic(browser_key))
    assert by_header.status_code == 200, by_header.content
    by_body = post(client, path, {**call(kind, "b-1"), "writeKey": browser_key})
    assert by_body.json() == {"accepted": 1, "duplicates": 0, "rejected": [], "rejected_count": 0}
    assert set(InboxEvent.objects.values_list("message_id", flat=True)) == {"h-1", "b-1"}


@pytest.mark.parametrize("path", ["/v1/group", "/v1/g", "/v1/alias", "/v1/a"])
def test_browser_key_is_refused_for_group_and_alias(client, browser_key, path):
    kind = "group" if "g" in path else "alias"
    answer = post(client, path, {**call(kind, "x-1"), "writeKey": browser_key})
    assert answer.status_code == 403
    assert "tenant token" in answer.json()["detail"]
    assert not InboxEvent.objects.exists()


def test_browser_key_batch_rejects_group_items_by_themselves(client, browser_key):
    body = {
        "writeKey": browser_key,
        "batch": [
            call("identify", "m-0"),
            call("group", "m-1"),
            call("track", "m-2"),
            call("alias", "m-3", previousId="anon"),
            {"type": "track", "userId": "u"},  # invalid: no event, keeps its own reason
            call("page", "m-5"),
        ],
    }
    answer = post(client, "/v1/b", body)
    assert answer.status_code == 200
    result = answer.json()
    assert (result["accepted"], result["duplicates"]) == (3, 0)
    reasons = {r["index"]: r["reason"] for r in result["rejected"]}
    assert reasons == {
        1: "browser_key_not_allowed",
        3: "browser_key_not_allowed",
        4: "invalid_message",
    }
    assert "group" in result["rejected"][0]["detail"]
    assert set(InboxEvent.objects.values_list("message_id", flat=True)) == {"m-0", "m-2", "m-5"}


def test_browser_key_never_opens_dock_segment(client, browser_key):
    answer = client.post(
        "/dock/segment",
        call("track", "d-1"),
        content_type="application/json",
        HTTP_AUTHORIZATION=basic(browser_key),
    )
    assert answer.status_code == 401
    assert not InboxEvent.objects.exists()


def test_tenant_token_still_sends_group_on_v1(client, token):
    answer = post(client, "/v1/g", {**call("group", "g-1"), "writeKey": token})
    assert answer.json()["accepted"] == 1


def test_rotated_browser_key_works_within_grace_only(client, integration):
    old = integration.browser_key
    row = browser_key_rotate()
    integration_cache_clear()
    assert row.browser_key != old and row.tenant_token == integration.tenant_token
    assert post(client, "/v1/t", {**call("track", "r-1"), "writeKey": old}).status_code == 200
    assert client.get(f"/v1/projects/{old}/settings").status_code == 200
    row.previous_browser_key_valid_until = row.browser_key_rotated_at
    row.save()
    integration_cache_clear()
    assert post(client, "/v1/t", {**call("track", "r-2"), "writeKey": old}).status_code == 401
    assert client.get(f"/v1/projects/{old}/settings").status_code == 404
    assert (
        post(client, "/v1/t", {**call("track", "r-3"), "writeKey": row.browser_key}).status_code
        == 200
    )


# --- GET /v1/projects/{writeKey}/settings -------------------------------------------------------


@override_settings(PUBLIC_BASE_URL="https://planhat.example.com:8443")
def test_settings_answer_points_segment_io_at_this_host(client, browser_key):
    answer = client.get(f"/v1/projects/{browser_key}/settings")
    assert answer.status_code == 200
    assert answer["Access-Control-Allow-Origin"] == "*"
    segment_io = answer.json()["integrations"]["Segment.io"]
    assert segment_io["apiKey"] == browser_key
    assert segment_io["apiHost"] == "planhat.example.com:8443/v1"
    assert segment_io["protocol"] == "https"
    assert client.get(f"/v1/projects/{browser_key}/settings/").status_code == 200


@override_settings(PUBLIC_BASE_URL="http://127.0.0.1:8000/planhat")
def test_settings_keep_a_path_prefix_and_accept_the_tenant_token(client, token):
    answer = client.get(f"/v1/projects/{token}/settings")
    segment_io = answer.json()["integrations"]["Segment.io"]
    assert (segment_io["apiHost"], segment_io["protocol"]) == ("127.0.0.1:8000/planhat/v1", "http")


def test_settings_unknown_key_is_404_and_rotated_tenant_token_in_grace_works(client, integration):
    assert client.get("/v1/projects/unknown/settings").status_code == 404
    old = integration.tenant_token
    tenant_token_rotate()
    integration_cache_clear()
    assert client.get(f"/v1/projects/{old}/settings").status_code == 200
    preflight = client.options(f"/v1/projects/{old}/settings")
    assert preflight.status_code == 204 and preflight["Access-Control-Allow-Origin"] == "*"
    assert client.post(f"/v1/projects/{old}/settings").status_code == 405
