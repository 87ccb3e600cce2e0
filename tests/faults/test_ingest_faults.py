"""Faults found by fault-injection runs at the ingest door, each reproduced first (issue 9)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest

from integrations.services import integration_update
from tests.usage.conftest import basic
from usage.ingest.messages import MAX_DEPTH, message_id_derive
from usage.models import InboxEvent

pytestmark = pytest.mark.django_db


def post(client, path, body, *, content_type="application/json", **extra):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.generic("POST", path, data, content_type=content_type, **extra)


def nested(depth: int) -> dict:
    """An object ``depth`` levels deep (the outermost counts as one); json.dumps of it
    recurses, so keep it under Python's recursion limit."""
    node: dict = {}
    for _ in range(depth - 1):
        node = {"a": node}
    return node


# --- derived message ids ----------------------------------------------------------------------


def sdk_batch(sent_at: str, *, n: int = 200) -> dict:
    # What an SDK retries: the same events, a new sentAt (and _metadata) on the envelope.
    events = [
        {
            "type": "track",
            "userId": f"u-{i}",
            "event": "Clicked",
            "properties": {"i": i},
            "timestamp": f"2026-11-05T10:{i // 60:02d}:{i % 60:02d}Z",
            "_metadata": {"bundled": ["Segment.io"], "sentAt": sent_at},
        }
        for i in range(n)
    ]
    return {"batch": events, "sentAt": sent_at, "context": {"library": {"name": "sdk"}}}


def test_events_without_message_id_retried_with_new_sent_at_are_stored_once(client, auth):
    first = post(client, "/v1/batch", sdk_batch("2026-11-05T10:05:00Z"), **auth).json()
    retry = post(client, "/v1/batch", sdk_batch("2026-11-05T10:05:31Z"), **auth).json()
    assert (first["accepted"], first["duplicates"]) == (200, 0)
    assert (retry["accepted"], retry["duplicates"]) == (0, 200)
    assert InboxEvent.objects.count() == 200


def test_the_dock_and_v1_derive_the_same_id_for_the_same_event(client, auth):
    event = {"type": "track", "userId": "u-1", "event": "E", "timestamp": "2026-11-05T10:00:00Z"}
    post(client, "/dock/segment", {**event, "sentAt": "2026-11-05T10:00:01Z"}, **auth)
    again = post(client, "/v1/track", {**event, "writeKey": auth_token(auth)}).json()
    assert again["duplicates"] == 1
    assert InboxEvent.objects.count() == 1


def auth_token(auth: dict) -> str:
    return base64.b64decode(auth["HTTP_AUTHORIZATION"].split()[1]).decode().rstrip(":")


def test_derived_id_ignores_key_order_and_what_changes_between_sends():
    received = datetime(2026, 11, 5, 10, 0, 0, 100000, tzinfo=UTC)
    at = datetime(2026, 11, 5, 9, 0, tzinfo=UTC)
    one = {"type": "track", "event": "E", "properties": {"a": 1, "b": 2}, "timestamp": "x"}
    other = {
        "timestamp": "x",
        "properties": {"b": 2, "a": 1},
        "event": "E",
        "type": "track",
        "sentAt": "later",
        "receivedAt": "proxy",
        "_metadata": {"n": 1},
        "writeKey": "k",
    }
    assert message_id_derive(one, occurred_at=at, received_at=received) == message_id_derive(
        other, occurred_at=at, received_at=received + timedelta(minutes=5)
    )
    # The event's own time is part of it: another time is another event.
    later = {**one, "timestamp": "y"}
    assert message_id_derive(later, occurred_at=at, received_at=received) != message_id_derive(
        one, occurred_at=at, received_at=received
    )


def test_event_without_a_time_of_its_own_uses_its_receive_second():
    event = {"type": "track", "userId": "u-1", "event": "E"}
    second = datetime(2026, 11, 5, 10, 0, 0, tzinfo=UTC)
    same = [
        message_id_derive(event, occurred_at=None, received_at=second + timedelta(microseconds=us))
        for us in (0, 999_999)
    ]
    assert same[0] == same[1]
    next_second = message_id_derive(
        event, occurred_at=None, received_at=second + timedelta(seconds=1)
    )
    assert next_second != same[0]


# --- depth ------------------------------------------------------------------------------------


def test_deep_item_without_message_id_is_rejected_alone_and_the_other_kept(client, auth):
    # Found: nesting 300 inside one item without messageId was a 500 (TypeError), and the
    # valid item of the same batch was lost.
    deep = b'{"type": "track", "userId": "u-1", "event": "Deep", "properties": '
    deep += b'{"a": ' * 299 + b"{}" + b"}" * 299 + b"}"
    body = b'[{"type": "track", "userId": "u-2", "event": "Fine"}, ' + deep + b"]"
    response = post(client, "/dock/segment", body, **auth)
    assert response.status_code == 200
    answer = response.json()
    assert answer["accepted"] == 1
    assert answer["rejected"] == [
        {
            "index": 1,
            "reason": "invalid_message",
            "detail": f"The message is nested deeper than {MAX_DEPTH} levels.",
        }
    ]
    assert InboxEvent.objects.get().payload["event"] == "Fine"


@pytest.mark.parametrize("depth", [MAX_DEPTH, MAX_DEPTH + 1])
def test_depth_limit_is_exact(client, auth, depth):
    # The message is level 1, properties level 2: the whole message is ``depth`` deep.
    item = {"type": "track", "userId": "u-1", "event": "E", "properties": nested(depth - 1)}
    answer = post(client, "/dock/segment", item, **auth).json()
    assert answer["accepted"] == (1 if depth <= MAX_DEPTH else 0)


def test_a_body_that_parses_is_never_a_5xx_whatever_its_depth(client, auth):
    # orjson parses up to 1,024 levels: every item of such a body is judged on its own.
    for depth in (200, 255, 600, 1000):
        body = b'{"batch": [' + b'{"a": ' * (depth - 1) + b"{}" + b"}" * (depth - 1) + b"]}"
        response = post(client, "/v1/batch", body, **auth)
        assert response.status_code == 200, depth
        assert response.json()["rejected_count"] == 1


def test_signature_over_a_first_element_990_levels_deep_is_checked_not_a_500(
    client, auth, integration
):
    # Found: the signature check re-parsed the first element with Python's json, which
    # recurses: 990 levels raised RecursionError (a 500).
    integration_update(integration=integration, shared_secret="s3cret")
    first = b"[" * 990 + b"]" * 990
    body = b"[" + first + b', {"type": "track", "userId": "u-1", "event": "E"}]'
    good = hmac.new(b"s3cret", first, hashlib.sha1).hexdigest()
    wrong = post(client, "/dock/segment", body, HTTP_X_SIGNATURE="00" * 20, **auth)
    assert wrong.status_code == 401
    right = post(client, "/dock/segment", body, HTTP_X_SIGNATURE=good, **auth)
    assert right.status_code == 200
    assert (right.json()["accepted"], right.json()["rejected_count"]) == (1, 1)


# --- amplification ----------------------------------------------------------------------------


def test_items_over_the_cap_are_a_413_naming_the_limit(client, auth, settings):
    settings.INGEST_MAX_ITEMS = 10_000
    body = b"[" + b",".join([b"0"] * 10_001) + b"]"
    response = post(client, "/dock/segment", body, **auth)
    assert response.status_code == 413
    detail = response.json()["detail"]
    assert "10,001 messages" in detail and "at most 10,000" in detail
    assert InboxEvent.objects.count() == 0


def test_rejected_list_is_capped_never_echoes_items_and_counts_them_all(client, auth):
    secret = "do-not-echo-" + "x" * 50
    body = [{"type": "nope", "userId": "u", "payload": secret}] * 5_000 + [
        {"type": "track", "userId": "u-1", "event": "E"}
    ]
    response = post(client, "/dock/segment", body, **auth)
    answer = response.json()
    assert answer["accepted"] == 1
    assert answer["rejected_count"] == 5_000
    assert [r["index"] for r in answer["rejected"]] == list(range(100))
    assert secret not in response.content.decode()
    assert len(response.content) < 20_000


# --- identity: one rule at the door and in the matcher -----------------------------------------


def test_email_in_properties_only_is_an_identity_for_the_door_and_the_matcher(
    client, auth, integration
):
    from planhat_segment.models import Company, EndUser
    from usage.services import inbox_drain

    company = Company.objects.create(name="Acme", external_id="ACME")
    event = {
        "type": "track",
        "event": "Clicked",
        "properties": {"email": "Ana@Acme.com", "company_id": "ACME"},
    }
    answer = post(client, "/dock/segment", event, **auth).json()
    assert answer["accepted"] == 1
    inbox_drain()
    row = InboxEvent.objects.get()
    assert (row.status, row.email_key) == ("processed", "ana@acme.com")
    assert EndUser.objects.get(company=company).email == "ana@acme.com"


def test_an_unusable_email_is_no_identity_at_the_door_either(client, auth):
    event = {"type": "track", "event": "E", "properties": {"email": "not an email"}}
    answer = post(client, "/dock/segment", event, **auth).json()
    assert answer["accepted"] == 0
    assert "identifies nobody" in answer["rejected"][0]["detail"]


# --- the door before authentication -------------------------------------------------------------


def test_unauthenticated_v1_body_is_read_no_further_than_a_segment_batch(client, token, settings):
    settings.INGEST_UNAUTHENTICATED_MAX_BODY_BYTES = 600_000
    padding = "p" * 700_000
    body = {"type": "track", "userId": "u", "event": "E", "writeKey": token, "x": padding}
    response = post(client, "/v1/track", body)
    assert response.status_code == 413
    assert "Basic auth" in response.json()["detail"]
    # The same body with the key in the header is read in full (32 MB limit).
    ok = post(client, "/v1/track", body, HTTP_AUTHORIZATION=basic(token))
    assert ok.status_code == 200 and ok.json()["accepted"] == 1


def test_wrong_basic_auth_on_v1_says_the_key_is_not_valid(client, token):
    body = {"type": "track", "userId": "u", "event": "E", "writeKey": token}
    response = post(client, "/v1/track", body, HTTP_AUTHORIZATION=basic("wrong"))
    assert response.status_code == 401
    assert "not valid" in response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Basic")
    assert InboxEvent.objects.count() == 0


def test_a_body_of_too_many_tiny_values_is_refused_before_parsing(client, auth, settings):
    # Found: 2 MB of one million tiny items took +476 MB in the worker; the parse alone
    # costs ~100 bytes per value, so values are bounded on the raw bytes first.
    settings.INGEST_MAX_JSON_VALUES = 50_000
    body = b"[" + b",".join([b"{}"] * 60_000) + b"]"
    response = post(client, "/dock/segment", body, **auth)
    assert response.status_code == 413
    assert "more than 50,000 JSON values" in response.json()["detail"]
    ok = b"[" + b",".join([b'{"type": "track", "userId": "u", "event": "E"}'] * 10) + b"]"
    assert post(client, "/dock/segment", ok, **auth).json()["accepted"] == 1  # same id, deduped
