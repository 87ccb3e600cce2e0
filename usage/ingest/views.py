"""The ingest views: thin translations of HTTP into the ingest steps (DESIGN.md §4.1).

Order of checks: header token (before reading anything), body size, gunzip, JSON, the body's
``writeKey`` on /v1, X-Signature on /dock, validation, one INSERT, 200.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from integrations.models import IntegrationSettings

from ..rejections import rejected_calls_count
from .auth import integration_cached, signature_valid, token_from_authorization, token_valid
from .body import BadBody, BodyTooLarge, body_decode, body_parse, body_read
from .browser import browser_key_valid, browser_messages_ingest, browser_path_allowed
from .deadline import database_deadline
from .messages import MAX_DEPTH, body_item_count, body_items, items_shallow
from .services import messages_ingest

logger = logging.getLogger(__name__)

# The answer lists the first rejections only (with their indexes), and how many there were:
# a body of a million invalid items must not become a huge answer.
MAX_REJECTED_SHOWN = 100

# /v1 path segment → call type (the short forms are analytics.js's and the mobile SDKs').
V1_TYPES = {
    "identify": "identify",
    "i": "identify",
    "track": "track",
    "t": "track",
    "group": "group",
    "g": "group",
    "page": "page",
    "p": "page",
    "screen": "screen",
    "s": "screen",
    "alias": "alias",
    "a": "alias",
    "batch": None,
    "b": None,
}


def _json(status: int, body: dict[str, Any], **headers: str) -> HttpResponse:
    response = HttpResponse(orjson.dumps(body), status=status, content_type="application/json")
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _unauthorized(detail: str) -> HttpResponse:
    return _json(
        401, {"error": "unauthorized", "detail": detail}, WWW_Authenticate='Basic realm="segment"'
    )


@csrf_exempt
def dock_segment(request: HttpRequest) -> HttpResponse:
    """``POST /dock/segment``: what Segment's Webhooks destination (and Planhat's) calls."""
    if request.method != "POST":
        return _json(405, {"error": "method_not_allowed", "detail": "Use POST."}, Allow="POST")
    return _ingest(request, path_type=None, v1=False)


@csrf_exempt
def v1_call(request: HttpRequest, call: str) -> HttpResponse:
    """``POST /v1/<call>``: the Segment Tracking API, for SDKs pointed at this install."""
    if request.method == "OPTIONS":
        response = HttpResponse(status=204)
        response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = request.META.get(
            "HTTP_ACCESS_CONTROL_REQUEST_HEADERS",
            "Authorization, Content-Type, Content-Encoding",
        )
        response["Access-Control-Max-Age"] = "86400"
    elif request.method != "POST":
        response = _json(
            405, {"error": "method_not_allowed", "detail": "Use POST."}, Allow="POST, OPTIONS"
        )
    else:
        response = _ingest(request, path_type=V1_TYPES[call], v1=True)
    response["Access-Control-Allow-Origin"] = settings.INGEST_CORS_ALLOW_ORIGIN
    return response


def _ingest(request: HttpRequest, *, path_type: str | None, v1: bool) -> HttpResponse:
    # Every database call of the request runs under one client-side bound: a database that
    # hangs gives a fast 503 (Segment retries) instead of a pile of waiting requests.
    with database_deadline(settings.INGEST_DATABASE_DEADLINE_SECONDS):
        return _ingest_bounded(request, path_type=path_type, v1=v1)


class _Answered(Exception):
    """A step's answer before anything is stored (a refusal): the request ends with it."""

    def __init__(self, response: HttpResponse) -> None:
        super().__init__(response.status_code)
        self.response = response


@dataclass(frozen=True)
class _HeaderAuth:
    """What the Authorization header settled, before a byte of the body is read."""

    authenticated: bool  # a valid key in the header; False: no header (/v1 only)
    browser: bool  # the key is the browser key (analytics.js), not the tenant token
    limit: int  # body bytes that may be read (after gunzip)


def _ingest_bounded(request: HttpRequest, *, path_type: str | None, v1: bool) -> HttpResponse:
    try:
        integration = integration_cached()
    except DatabaseError:
        return _unavailable("integration_read")
    try:
        auth = _header_authenticate(request, integration=integration, v1=v1)
        data, parsed = _body_read_and_parse(request, auth=auth)
        browser = auth.browser
        if not auth.authenticated:
            browser = _body_write_key_authenticate(parsed, integration=integration)
        if browser and not browser_path_allowed(path_type):
            raise _Answered(_browser_path_forbidden(path_type))
        if not v1 and integration.shared_secret:
            _signature_check(request, integration=integration, data=data, parsed=parsed)
        items = _items_within_cap(parsed, path_type=path_type)
    except _Answered as answered:
        return answered.response
    # Only the items are needed from here: let the rest of the parsed body go before the INSERT.
    del parsed
    return _items_store(items, data=data, browser=browser)


def _header_authenticate(
    request: HttpRequest, *, integration: IntegrationSettings, v1: bool
) -> _HeaderAuth:
    """The tenant token (or, on /v1, the browser key) in the Authorization header, and the
    body limit that follows; no header is allowed on /v1 only (the write key may be in the
    body)."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        candidates = token_from_authorization(header)
        browser = False
        if not token_valid(integration=integration, candidates=candidates):
            # /v1 only: the browser key (analytics.js) authenticates a narrower set of calls.
            browser = v1 and browser_key_valid(integration=integration, candidates=candidates)
            if not browser:
                raise _Answered(
                    _unauthorized(
                        "The key in the Authorization header is not valid: it is not this "
                        "install's tenant token (or was rotated out more than its grace period "
                        "ago)."
                    )
                )
        limit = settings.INGEST_MAX_BODY_BYTES
        if browser:
            # A public key: browsers send small batches, so the pre-auth read bound applies.
            limit = min(settings.INGEST_UNAUTHENTICATED_MAX_BODY_BYTES, limit)
        return _HeaderAuth(authenticated=True, browser=browser, limit=limit)
    if not v1:
        raise _Answered(
            _unauthorized(
                "Send the tenant token as HTTP Basic user name: "
                "Authorization: Basic base64(token:)."
            )
        )
    # The write key may be in the body (analytics.js): until it is checked, read no more
    # than a Segment batch can be (500 KB), with a margin.
    limit = min(settings.INGEST_UNAUTHENTICATED_MAX_BODY_BYTES, settings.INGEST_MAX_BODY_BYTES)
    return _HeaderAuth(authenticated=False, browser=False, limit=limit)


def _body_read_and_parse(request: HttpRequest, *, auth: _HeaderAuth) -> tuple[bytes, Any]:
    """The body within ``auth.limit``: its raw (gunzipped) bytes and its parsed JSON."""
    try:
        raw = body_read(request=request, limit=auth.limit)
        data = body_decode(
            raw=raw,
            content_encoding=request.META.get("HTTP_CONTENT_ENCODING", ""),
            limit=auth.limit,
        )
        if too_many := _too_many_values(data):
            raise _Answered(too_many)
        return data, body_parse(data=data)
    except BodyTooLarge:
        raise _Answered(_too_large(limit=auth.limit, authenticated=auth.authenticated)) from None
    except BadBody as exc:
        if not auth.authenticated:
            # Without a key, a body that cannot be read cannot name one either.
            raise _Answered(
                _unauthorized("No valid write key: send it as Basic auth user name.")
            ) from None
        raise _Answered(_json(400, {"error": "bad_request", "detail": str(exc)})) from None


def _body_write_key_authenticate(parsed: Any, *, integration: IntegrationSettings) -> bool:
    """The body's ``writeKey`` (no Authorization header): True when it is the browser key,
    False when it is the tenant token."""
    write_key = parsed.get("writeKey") if isinstance(parsed, dict) else None
    if not isinstance(write_key, str) or not write_key:
        raise _Answered(
            _unauthorized(
                "No write key: send it as Basic auth user name or as writeKey in the body."
            )
        )
    if token_valid(integration=integration, candidates=[write_key]):
        return False
    if not browser_key_valid(integration=integration, candidates=[write_key]):
        raise _Answered(
            _unauthorized(
                "The writeKey in the body is not valid: it is not this install's tenant "
                "token (or was rotated out more than its grace period ago)."
            )
        )
    return True


def _browser_path_forbidden(path_type: str | None) -> HttpResponse:
    return _json(
        403,
        {
            "error": "forbidden",
            "detail": f"The browser key cannot send {path_type} calls: send them "
            "server-side with the tenant token.",
        },
    )


def _signature_check(
    request: HttpRequest, *, integration: IntegrationSettings, data: bytes, parsed: Any
) -> None:
    """/dock with a shared secret: X-Signature must sign the body."""
    presented = request.META.get("HTTP_X_SIGNATURE", "")
    if not signature_valid(
        secret=integration.shared_secret, data=data, parsed=parsed, presented=presented
    ):
        raise _Answered(
            _unauthorized(
                "X-Signature is missing or wrong: hex HMAC-SHA1 of the body with the shared secret."
            )
        )


def _items_within_cap(parsed: Any, *, path_type: str | None) -> list[Any]:
    """The body's messages, refused as a whole when there are more than INGEST_MAX_ITEMS."""
    count = body_item_count(parsed=parsed, path_type=path_type)
    max_items = settings.INGEST_MAX_ITEMS
    if count > max_items:
        raise _Answered(
            _json(
                413,
                {
                    "error": "too_many_messages",
                    "detail": f"The body holds {count:,} messages; at most {max_items:,} are "
                    "accepted in one request. Send them in smaller batches.",
                },
            )
        )
    return body_items(parsed=parsed, path_type=path_type)


def _items_store(items: list[Any], *, data: bytes, browser: bool) -> HttpResponse:
    """One INSERT of the accepted messages; the 200 answer counts them and lists rejections."""
    # Each item is checked on its own only when the body may hold U+0000 (PostgreSQL cannot
    # store it) or nesting past the depth limit; a body with fewer brackets than the limit
    # cannot nest that deep, which spares the usual request even the one-pass check.
    deep = data.count(b"{") + data.count(b"[") > MAX_DEPTH and not items_shallow(items)
    ingest = browser_messages_ingest if browser else messages_ingest
    try:
        stored = ingest(items=items, check_each=deep or b"\\u0000" in data)
    except DatabaseError:
        return _unavailable("inbox_store")
    if stored.rejected:  # counted for the event log (reason only; never a payload)
        rejected_calls_count(details=[r.detail for r in stored.rejected])
    shown = stored.rejected[:MAX_REJECTED_SHOWN]
    return _json(
        200,
        {
            "accepted": stored.accepted,
            "duplicates": stored.duplicates,
            "rejected": [r.as_dict() for r in shown],
            "rejected_count": len(stored.rejected),
        },
    )


def _too_many_values(data: bytes) -> HttpResponse | None:
    """Parsing costs about 100 bytes of memory per JSON value, whatever the body's size: a
    32 MB body of tiny values would take gigabytes. Values are bounded before parsing by
    counting what separates and opens them on the raw bytes (commas and brackets inside
    strings count too: an over-estimate, never an under-estimate). Segment's own bodies
    (at most 500 KB) never come near the default."""
    cap = settings.INGEST_MAX_JSON_VALUES
    if len(data) <= cap:
        return None  # fewer bytes than the cap: fewer values too
    values = data.count(b",") + data.count(b"{") + data.count(b"[")
    if values <= cap:
        return None
    return _json(
        413,
        {
            "error": "too_many_values",
            "detail": f"The body holds more than {cap:,} JSON values (commas and brackets "
            "counted); at most that many are read in one request. Send smaller batches.",
        },
    )


def _too_large(*, limit: int, authenticated: bool) -> HttpResponse:
    detail = f"The body is over {limit} bytes (after gunzip)."
    if not authenticated:
        detail += (
            " Before the write key is checked no more is read; send it as Basic auth user "
            f"name (Authorization header) for bodies up to {settings.INGEST_MAX_BODY_BYTES:,} "
            "bytes."
        )
    return _json(413, {"error": "payload_too_large", "detail": detail})


def _unavailable(step: str) -> HttpResponse:
    logger.exception("ingest_database_unavailable", extra={"step": step})
    retry_after = str(settings.INGEST_RETRY_AFTER_SECONDS)
    return _json(
        503,
        {"error": "unavailable", "detail": "The database cannot take the write; retry later."},
        Retry_After=retry_after,
    )
