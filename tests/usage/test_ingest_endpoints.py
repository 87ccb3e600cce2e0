"""The ingest endpoints' answers: shapes, routes, auth, validation, dedupe, CORS, 503."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from integrations.services import integration_update, tenant_token_rotate
from tests.conftest import load_fixture
from tests.usage.conftest import basic
from usage.models import InboxEvent, InboxStatus

pytestmark = pytest.mark.django_db


def post(client, path, body, *, content_type="application/json", **extra):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.generic("POST", path, data, content_type=content_type, **extra)


def track(message_id="m-1", **extra):
    return {
        "type": "track",
        "userId": "u-1",
        "event": "Signed In",
        "messageId": message_id,
        **extra,
    }


# --- the three sample shapes --------------------------------------------------------------


@pytest.mark.parametrize("name", ["identify.json", "track.json", "group.json", "page.json"])
def test_dock_single_message_fixture_is_stored_pending(client, auth, name):
    message = load_fixture(name)
    response = post(client, "/dock/segment", message, **auth)
    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": [], "rejected_count": 0}
    row = InboxEvent.objects.get()
    assert row.message_id == message["messageId"]
    assert row.type == message["type"]
    assert row.status == InboxStatus.PENDING
    assert row.payload == message
    assert row.occurred_at == datetime.fromisoformat(message["timestamp"])
    assert row.request_id is not None


def test_v1_batch_fixture_merges_envelope_context_into_each_message(client, auth):
    body = load_fixture("tracking_api_batch.json")
    response = post(client, "/v1/batch", body, **auth)
    assert response.status_code == 200
    assert response.json() == {"accepted": 4, "duplicates": 0, "rejected": [], "rejected_count": 0}
    rows = {r.message_id: r for r in InboxEvent.objects.all()}
    assert set(rows) == {"b-1", "b-2", "b-3", "b-4"}
    assert len({r.request_id for r in rows.values()}) == 1
    for row in rows.values():
        assert row.payload["context"]["library"] == {"name": "analytics-python", "version": "2.4.0"}
        assert row.payload["sentAt"] == "2026-11-03T10:02:01Z"
        assert "batch" not in row.payload
    assert [rows[m].type for m in ("b-1", "b-2", "b-3", "b-4")] == [
        "identify",
        "track",
        "track",
        "group",
    ]
    assert rows["b-3"].occurred_at == datetime(2026, 11, 3, 10, 1, tzinfo=UTC)


def test_batch_message_own_context_keys_win_over_envelope(client, auth):
    body = {
        "batch": [track("m-1", context={"ip": "1.2.3.4", "library": {"name": "mine"}})],
        "context": {"library": {"name": "envelope"}, "locale": "en-US"},
        "integrations": {"All": False},
    }
    assert post(client, "/v1/batch", body, **auth).status_code == 200
    payload = InboxEvent.objects.get().payload
    assert payload["context"] == {"ip": "1.2.3.4", "library": {"name": "mine"}, "locale": "en-US"}
    assert payload["integrations"] == {"All": False}


def test_dock_webhook_array_fixture_is_stored(client, auth):
    body = load_fixture("webhook_batch.json")
    response = post(client, "/dock/segment", body, **auth)
    assert response.status_code == 200
    assert response.json() == {"accepted": 3, "duplicates": 0, "rejected": [], "rejected_count": 0}
    assert set(InboxEvent.objects.values_list("message_id", flat=True)) == {"wh-1", "wh-2", "wh-3"}


def test_dock_accepts_batch_envelope(client, auth):
    response = post(client, "/dock/segment", {"batch": [track("m-1"), track("m-2")]}, **auth)
    assert response.json() == {"accepted": 2, "duplicates": 0, "rejected": [], "rejected_count": 0}


# --- validation ------------------------------------------------------------------------------


def test_mixed_batch_stores_good_items_and_rejects_each_bad_one_precisely(client, auth):
    items = [
        track("ok-1"),
        5,
        {"type": "purchase", "userId": "u-1", "messageId": "bad-type"},
        {"type": "track", "userId": "u-1", "messageId": "no-event"},
        {"type": "group", "userId": "u-1", "messageId": "no-group"},
        {"type": "track", "event": "X", "messageId": "nobody"},
        track("x" * 101),
        {"type": "identify", "traits": {"email": "a@b.example"}, "messageId": "ok-email"},
        {"userId": "u-1", "messageId": "no-type"},
        track("nul", properties={"note": "a\u0000b"}),
        track("x" * 100),
    ]
    response = post(client, "/dock/segment", items, **auth)
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 3
    assert body["duplicates"] == 0
    rejected = {r["index"]: r for r in body["rejected"]}
    assert sorted(rejected) == [1, 2, 3, 4, 5, 6, 8, 9]
    assert all(r["reason"] == "invalid_message" for r in body["rejected"])
    assert "Not a JSON object but a number" in rejected[1]["detail"]
    assert "Unknown type 'purchase'" in rejected[2]["detail"]
    assert "track call needs an event" in rejected[3]["detail"]
    assert "group call needs a groupId" in rejected[4]["detail"]
    assert "No userId, anonymousId or email" in rejected[5]["detail"]
    assert "101 characters" in rejected[6]["detail"]
    assert "Missing type" in rejected[8]["detail"]
    assert "NUL" in rejected[9]["detail"]
    assert set(InboxEvent.objects.values_list("message_id", flat=True)) == {
        "ok-1",
        "ok-email",
        "x" * 100,
    }


def test_invalid_single_object_is_a_200_with_its_rejection(client, auth):
    response = post(client, "/dock/segment", {"hello": "world"}, **auth)
    assert response.status_code == 200
    assert response.json()["accepted"] == 0
    assert response.json()["rejected"][0]["index"] == 0
    assert not InboxEvent.objects.exists()


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"not json at all", "not valid JSON"),
        (b'{"type": "track",', "not valid JSON"),
        (b'"just a string"', "not an object or an array"),
        (b"42", "not an object or an array"),
        (b"null", "not an object or an array"),
        (b"", "empty"),
    ],
)
def test_body_that_is_not_an_object_or_array_is_400(client, auth, body, detail):
    response = post(client, "/dock/segment", body, **auth)
    assert response.status_code == 400
    assert detail in response.json()["detail"]


# --- routes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "stored_type"),
    [
        ("/v1/identify", "identify"),
        ("/v1/track/", "track"),
        ("/v1/group", "group"),
        ("/v1/page/", "page"),
        ("/v1/screen", "screen"),
        ("/v1/alias/", "alias"),
        ("/v1/i", "identify"),
        ("/v1/t/", "track"),
        ("/v1/g", "group"),
        ("/v1/p/", "page"),
        ("/v1/s", "screen"),
        ("/v1/a/", "alias"),
    ],
)
def test_v1_type_routes_set_type_from_path_with_and_without_slash(client, auth, path, stored_type):
    # A message claiming another type: the path wins, as at Segment.
    message = {
        "type": "identify",
        "userId": "u-1",
        "event": "E",
        "groupId": "G",
        "previousId": "p",
        "messageId": "m-1",
    }
    response = post(client, path, message, **auth)
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 1
    assert InboxEvent.objects.get().type == stored_type


@pytest.mark.parametrize("path", ["/dock/segment", "/dock/segment/", "/v1/batch/", "/v1/b"])
def test_routes_answer_200_without_redirect(client, auth, path):
    body = {"batch": [track()]} if path.startswith("/v1") else track()
    response = post(client, path, body, **auth)
    assert response.status_code == 200
    assert InboxEvent.objects.count() == 1


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_any_content_type_is_accepted(client, auth, content_type):
    response = post(client, "/v1/track", track(), content_type=content_type, **auth)
    assert response.status_code == 200
    assert InboxEvent.objects.count() == 1


def test_get_is_405(client, auth):
    assert client.get("/dock/segment", **auth).status_code == 405


# --- auth ----------------------------------------------------------------------------------


def test_wrong_token_is_401_with_www_authenticate(client, integration):
    response = post(client, "/dock/segment", track(), HTTP_AUTHORIZATION=basic("nope"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Basic realm="segment"'
    assert not InboxEvent.objects.exists()


@pytest.mark.parametrize("path", ["/dock/segment", "/v1/track"])
def test_missing_token_is_401(client, integration, path):
    response = post(client, path, track())
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")


def test_bare_base64_token_without_colon_is_accepted(client, token):
    response = post(client, "/dock/segment", track(), HTTP_AUTHORIZATION=basic(token, colon=False))
    assert response.status_code == 200


def test_write_key_in_body_authenticates_v1_and_is_stripped(client, token):
    response = post(client, "/v1/track", {**track(), "writeKey": token}, content_type="text/plain")
    assert response.status_code == 200
    assert "writeKey" not in InboxEvent.objects.get().payload


def test_write_key_in_batch_envelope_is_stripped_from_every_message(client, token):
    body = {"batch": [{**track("m-1"), "writeKey": token}, track("m-2")], "writeKey": token}
    assert post(client, "/v1/batch", body).json()["accepted"] == 2
    assert all("writeKey" not in r.payload for r in InboxEvent.objects.all())


def test_wrong_write_key_in_body_is_401(client, integration):
    response = post(client, "/v1/track", {**track(), "writeKey": "nope"})
    assert response.status_code == 401
    assert not InboxEvent.objects.exists()


def test_write_key_in_body_does_not_authenticate_dock(client, token):
    assert post(client, "/dock/segment", {**track(), "writeKey": token}).status_code == 401


def test_rotated_out_token_works_in_grace_and_is_refused_after(client, token):
    now = timezone.now()
    tenant_token_rotate(now=now)
    assert (
        post(client, "/dock/segment", track("m-1"), HTTP_AUTHORIZATION=basic(token)).json()[
            "accepted"
        ]
        == 1
    )
    # The grace period ends: the old token is refused, the new one still works.
    from integrations.models import IntegrationSettings

    IntegrationSettings.objects.update(previous_token_valid_until=now - timedelta(seconds=1))
    from usage.ingest.auth import integration_cache_clear

    integration_cache_clear()
    response = post(client, "/dock/segment", track("m-2"), HTTP_AUTHORIZATION=basic(token))
    assert response.status_code == 401
    new_token = IntegrationSettings.objects.get().tenant_token
    assert (
        post(client, "/dock/segment", track("m-3"), HTTP_AUTHORIZATION=basic(new_token)).status_code
        == 200
    )
    assert set(InboxEvent.objects.values_list("message_id", flat=True)) == {"m-1", "m-3"}


def test_settings_cache_serves_tokens_for_its_ttl(client, token, settings):
    settings.INGEST_SETTINGS_CACHE_SECONDS = 5
    assert (
        post(client, "/dock/segment", track("m-1"), HTTP_AUTHORIZATION=basic(token)).status_code
        == 200
    )
    tenant_token_rotate()
    from integrations.models import IntegrationSettings

    IntegrationSettings.objects.update(previous_token="", previous_token_valid_until=None)
    # Still cached: the old token passes for up to INGEST_SETTINGS_CACHE_SECONDS ...
    assert (
        post(client, "/dock/segment", track("m-2"), HTTP_AUTHORIZATION=basic(token)).status_code
        == 200
    )
    # ... and with the cache off, the database's view applies at once.
    settings.INGEST_SETTINGS_CACHE_SECONDS = 0
    assert (
        post(client, "/dock/segment", track("m-3"), HTTP_AUTHORIZATION=basic(token)).status_code
        == 401
    )


# --- dedupe and message ids ----------------------------------------------------------------


def test_duplicate_message_id_in_second_request_is_counted_as_duplicate(client, auth):
    assert post(client, "/dock/segment", track("dup"), **auth).json()["accepted"] == 1
    response = post(client, "/dock/segment", [track("dup"), track("new")], **auth)
    assert response.json() == {"accepted": 1, "duplicates": 1, "rejected": [], "rejected_count": 0}
    assert InboxEvent.objects.count() == 2


def test_duplicates_within_one_request_are_counted(client, auth):
    response = post(client, "/dock/segment", [track("a"), track("a"), track("b")], **auth)
    assert response.json() == {"accepted": 2, "duplicates": 1, "rejected": [], "rejected_count": 0}


def test_message_without_id_gets_deterministic_id_and_dedupes(client, auth):
    message = {
        "type": "track",
        "userId": "u-1",
        "event": "Clicked",
        "properties": {"b": 1, "a": 2},
        "timestamp": "2026-11-05T10:00:00Z",
    }
    first = post(client, "/dock/segment", message, **auth).json()
    # The same content with keys in another order is the same message.
    reordered = json.dumps(dict(reversed(list(message.items())))).encode()
    second = post(client, "/dock/segment", reordered, **auth).json()
    assert first["accepted"] == 1
    assert second == {"accepted": 0, "duplicates": 1, "rejected": [], "rejected_count": 0}
    row = InboxEvent.objects.get()
    assert row.message_id.startswith("auto-") and len(row.message_id) == 37
    post(client, "/dock/segment", {**message, "event": "Other"}, **auth)
    assert InboxEvent.objects.count() == 2


# --- times -----------------------------------------------------------------------------------


def test_occurred_at_from_timestamp_else_original_timestamp_else_received(client, auth):
    items = [
        track("tz", timestamp="2026-11-02T12:00:00+02:00"),
        track("orig", originalTimestamp="2026-11-02T09:00:00.123456Z"),
        track("naive", timestamp="2026-11-02T08:00:00"),
        track("junk", timestamp="yesterday"),
        track("none"),
    ]
    before = timezone.now()
    post(client, "/dock/segment", items, **auth)
    rows = {r.message_id: r for r in InboxEvent.objects.all()}
    assert rows["tz"].occurred_at == datetime(2026, 11, 2, 10, tzinfo=UTC)
    assert rows["orig"].occurred_at == datetime(2026, 11, 2, 9, 0, 0, 123456, tzinfo=UTC)
    assert rows["naive"].occurred_at == datetime(2026, 11, 2, 8, tzinfo=UTC)
    assert rows["junk"].occurred_at == rows["junk"].received_at
    assert rows["none"].occurred_at == rows["none"].received_at >= before


# --- CORS, sections, 503 -------------------------------------------------------------------


def test_cors_preflight_is_answered_without_auth(client):
    response = client.options(
        "/v1/batch",
        HTTP_ORIGIN="https://app.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type, authorization",
    )
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert response["Access-Control-Allow-Headers"] == "content-type, authorization"


def test_cors_origin_header_on_answers(client, auth):
    ok = post(client, "/v1/t", track(), HTTP_ORIGIN="https://app.example.com", **auth)
    assert ok["Access-Control-Allow-Origin"] == "*"
    denied = post(client, "/v1/t", track(), HTTP_ORIGIN="https://app.example.com")
    assert denied.status_code == 401
    assert denied["Access-Control-Allow-Origin"] == "*"


def test_switched_off_sections_still_answer_200_and_store(client, auth, integration):
    integration_update(
        integration=integration, user_tracking_enabled=False, company_metrics_enabled=False
    )
    body = [track("t-1"), {"type": "group", "groupId": "G", "userId": "u", "messageId": "g-1"}]
    response = post(client, "/dock/segment", body, **auth)
    assert response.json() == {"accepted": 2, "duplicates": 0, "rejected": [], "rejected_count": 0}
    assert InboxEvent.objects.filter(status=InboxStatus.PENDING).count() == 2


def test_database_refusing_the_write_is_503_with_retry_after(client, auth, monkeypatch):
    import usage.ingest.services

    def refuse(**kwargs):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(usage.ingest.services, "inbox_store", refuse)
    response = post(client, "/dock/segment", track(), **auth)
    assert response.status_code == 503
    assert response["Retry-After"] == "10"
    assert not InboxEvent.objects.exists()


def test_database_unreachable_for_settings_is_503(client, monkeypatch):
    import usage.ingest.auth

    def refuse():
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(usage.ingest.auth, "integration_ensure", refuse)
    response = post(client, "/dock/segment", track(), HTTP_AUTHORIZATION=basic("x"))
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0


def test_basic_header_helper_matches_segment_format(token):
    # Guards the helper the other tests rely on: Segment's exact header shape.
    assert basic(token) == "Basic " + base64.b64encode(f"{token}:".encode()).decode()


def test_message_nested_deeper_than_storable_is_rejected_alone(client, auth):
    deep: dict = {}
    node = deep
    for _ in range(300):  # orjson reads up to 1,024 levels but writes at most 254
        node["a"] = {}
        node = node["a"]
    body = [track("deep-ok"), track("too-deep", properties=deep)]
    response = post(client, "/dock/segment", body, **auth)
    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    assert response.json()["rejected"][0]["index"] == 1
    assert "nested deeper than 128 levels" in response.json()["rejected"][0]["detail"]
    assert InboxEvent.objects.get().message_id == "deep-ok"


def test_text_holding_a_backslash_u0000_is_not_a_nul(client, auth):
    message = track("bs", properties={"path": "C:\\u0000dir"})
    response = post(client, "/dock/segment", message, **auth)
    assert response.json()["accepted"] == 1
    assert InboxEvent.objects.get().payload["properties"]["path"] == "C:\\u0000dir"
