"""Bodies: size limits (declared and chunked), gzip and gzip bombs, X-Signature on raw bytes."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import io
import json
import time
import zlib

import pytest

from integrations.services import integration_update
from usage.ingest.body import BadBody, BodyTooLarge, body_decode
from usage.models import InboxEvent

pytestmark = pytest.mark.django_db

SECRET = "s3cret-shared"


def post(client, path, data: bytes, **extra):
    return client.generic("POST", path, data, content_type="application/json", **extra)


def track(message_id="m-1", **extra):
    return {
        "type": "track",
        "userId": "u-1",
        "event": "Signed In",
        "messageId": message_id,
        **extra,
    }


def sign(data: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), data, hashlib.sha1).hexdigest()


def bomb(expanded: int) -> bytes:
    """A gzip of ``expanded`` zero bytes, built in pieces (never held expanded in memory)."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * (1 << 20)
    parts = [deflater.compress(block) for _ in range(expanded // len(block))]
    parts.append(deflater.flush())
    return b"".join(parts)


class ExplodingStream:
    """A wsgi.input that fails the test if anything reads it."""

    def read(self, *args):
        raise AssertionError("the body was read although Content-Length was over the limit")

    readline = read


class EndlessStream:
    """A chunked body that never ends (what a client streaming forever looks like)."""

    def __init__(self):
        self.served = 0

    def read(self, size=-1):
        size = 65536 if size is None or size < 0 else size
        self.served += size
        return b" " * size

    readline = read


# --- size --------------------------------------------------------------------------------


def test_content_length_over_limit_is_413_before_reading(client, auth, settings):
    settings.INGEST_MAX_BODY_BYTES = 1000
    response = client.generic(
        "POST",
        "/dock/segment",
        b"",
        CONTENT_LENGTH="5000",
        **{"wsgi.input": ExplodingStream()},
        **auth,
    )
    assert response.status_code == 413
    assert "over 1000 bytes" in response.json()["detail"]


def test_body_over_limit_is_413_and_under_it_is_stored(client, auth, settings):
    settings.INGEST_MAX_BODY_BYTES = 1000
    big = json.dumps(track(properties={"pad": "x" * 2000})).encode()
    assert post(client, "/dock/segment", big, **auth).status_code == 413
    small = json.dumps(track()).encode()
    assert post(client, "/dock/segment", small, **auth).status_code == 200
    assert InboxEvent.objects.count() == 1


def test_default_limit_takes_a_body_far_over_djangos_upload_limit(client, auth, settings):
    # 4 MB: over DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), which must not apply here.
    assert settings.INGEST_MAX_BODY_BYTES == 32 * 1024 * 1024
    items = [track(f"m-{i}", properties={"pad": "y" * 4000}) for i in range(1000)]
    data = json.dumps(items).encode()
    assert len(data) > 4_000_000
    response = post(client, "/dock/segment", data, **auth)
    assert response.status_code == 200
    assert response.json()["accepted"] == 1000


def test_chunked_body_is_read_with_the_limit_while_reading(client, auth, settings):
    settings.INGEST_MAX_BODY_BYTES = 100_000
    stream = EndlessStream()
    response = client.generic(
        "POST",
        "/dock/segment",
        b"",
        CONTENT_LENGTH="",
        **{"wsgi.input": stream, "wsgi.input_terminated": True},
        **auth,
    )
    assert response.status_code == 413
    # It stopped right after the limit, not at the end of a never-ending stream.
    assert 100_000 < stream.served <= 100_000 + 256 * 1024


def test_chunked_body_within_limit_is_stored(client, auth):
    data = json.dumps([track("c-1"), track("c-2")]).encode()
    response = client.generic(
        "POST",
        "/dock/segment",
        b"",
        CONTENT_LENGTH="",
        **{"wsgi.input": io.BytesIO(data), "wsgi.input_terminated": True},
        **auth,
    )
    assert response.status_code == 200
    assert response.json()["accepted"] == 2


# --- gzip --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/dock/segment", "/v1/batch"])
def test_gzip_body_is_decompressed(client, auth, path):
    body = {"batch": [track("g-1"), track("g-2")]}
    response = post(
        client, path, gzip.compress(json.dumps(body).encode()), HTTP_CONTENT_ENCODING="gzip", **auth
    )
    assert response.status_code == 200
    assert response.json()["accepted"] == 2


def test_gzip_bomb_is_413_without_expanding_past_the_limit(client, auth, settings):
    settings.INGEST_MAX_BODY_BYTES = 1_000_000
    data = bomb(64 << 20)  # 64 MB of zeros in about 64 KB
    assert len(data) < settings.INGEST_MAX_BODY_BYTES
    started = time.monotonic()
    response = post(client, "/dock/segment", data, HTTP_CONTENT_ENCODING="gzip", **auth)
    assert response.status_code == 413
    assert time.monotonic() - started < 2


def test_bounded_gunzip_stops_at_limit_plus_one():
    with pytest.raises(BodyTooLarge):
        body_decode(raw=bomb(8 << 20), content_encoding="gzip", limit=1 << 20)
    exact = gzip.compress(b"a" * 1000)
    assert body_decode(raw=exact, content_encoding="gzip", limit=1000) == b"a" * 1000
    with pytest.raises(BodyTooLarge):
        body_decode(raw=exact, content_encoding="gzip", limit=999)


def test_concatenated_gzip_members_are_one_body():
    data = gzip.compress(b'{"a":') + gzip.compress(b"1}")
    assert body_decode(raw=data, content_encoding="gzip", limit=100) == b'{"a":1}'


@pytest.mark.parametrize(
    ("raw", "encoding", "message"),
    [
        (b"not gzip", "gzip", "not valid gzip"),
        (gzip.compress(b'{"a": 1}')[:-12], "gzip", "truncated"),
        (b"{}", "br", "Unsupported Content-Encoding"),
    ],
)
def test_undecodable_bodies_are_bad(raw, encoding, message):
    with pytest.raises(BadBody, match=message):
        body_decode(raw=raw, content_encoding=encoding, limit=1000)


def test_bad_gzip_is_400(client, auth):
    response = post(
        client, "/dock/segment", b"\x1f\x8b garbage", HTTP_CONTENT_ENCODING="gzip", **auth
    )
    assert response.status_code == 400


# --- X-Signature -----------------------------------------------------------------------------


@pytest.fixture
def with_secret(integration):
    integration_update(integration=integration, shared_secret=SECRET)
    return integration


def test_signature_over_raw_bytes_of_single_message(client, auth, with_secret):
    # Unusual spacing and key order: a re-serialised body would not match this signature.
    data = b'{ "userId":"u-1",  "type":"track","event":"Caf\\u00e9 \xc3\xa9","messageId":"s-1"}'
    response = post(client, "/dock/segment", data, HTTP_X_SIGNATURE=sign(data), **auth)
    assert response.status_code == 200
    assert response.json()["accepted"] == 1


def test_signature_of_array_covers_raw_bytes_of_first_element(client, auth, with_secret):
    first = b'{"type":"track","userId":"u-1","event":"A \xe2\x82\xac","messageId":"a-1"}'
    second = json.dumps(track("a-2")).encode()
    data = b"[\n  " + first + b",\n  " + second + b"\n]"
    response = post(client, "/dock/segment", data, HTTP_X_SIGNATURE=sign(first), **auth)
    assert response.status_code == 200
    assert response.json()["accepted"] == 2
    # The whole body's HMAC is not what Segment sends for an array.
    response = post(client, "/dock/segment", data, HTTP_X_SIGNATURE=sign(data), **auth)
    assert response.status_code == 401


def test_signature_is_checked_after_gunzip(client, auth, with_secret):
    data = json.dumps(track("gz-1")).encode()
    response = post(
        client,
        "/dock/segment",
        gzip.compress(data),
        HTTP_CONTENT_ENCODING="gzip",
        HTTP_X_SIGNATURE=sign(data),
        **auth,
    )
    assert response.status_code == 200


@pytest.mark.parametrize("signature", [None, "", "00" * 20, sign(b"other body")])
def test_missing_or_wrong_signature_is_401(client, auth, with_secret, signature):
    data = json.dumps(track()).encode()
    extra = {} if signature is None else {"HTTP_X_SIGNATURE": signature}
    response = post(client, "/dock/segment", data, **extra, **auth)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Basic realm="segment"'
    assert "X-Signature" in response.json()["detail"]
    assert not InboxEvent.objects.exists()


def test_signature_with_wrong_secret_is_401(client, auth, with_secret):
    data = json.dumps(track()).encode()
    response = post(client, "/dock/segment", data, HTTP_X_SIGNATURE=sign(data, "other"), **auth)
    assert response.status_code == 401


def test_no_secret_no_signature_needed_and_v1_never_needs_one(client, auth, integration):
    data = json.dumps(track("n-1")).encode()
    assert post(client, "/dock/segment", data, **auth).status_code == 200
    integration_update(integration=integration, shared_secret=SECRET)
    from usage.ingest.auth import integration_cache_clear

    integration_cache_clear()
    assert post(client, "/v1/track", json.dumps(track("n-2")).encode(), **auth).status_code == 200
    assert (
        post(client, "/dock/segment", json.dumps(track("n-3")).encode(), **auth).status_code == 401
    )
