"""The ingest views: thin translations of HTTP into the ingest steps (DESIGN.md §4.1).

Order of checks: header token (before reading anything), body size, gunzip, JSON, the body's
``writeKey`` on /v1, X-Signature on /dock, validation, one INSERT, 200.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

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


def _ingest_bounded(request: HttpRequest, *, path_type: str | None, v1: bool) -> HttpResponse:
    try:
        integration = integration_cached()
    except DatabaseError:
        return _unavailable("integration_read")
    header = request.META.get("HTTP_AUTHORIZATION", "")
    browser = False
    if header:
        candidates = token_from_authorization(header)
        if not token_valid(integration=integration, candidates=candidates):
            # /v1 only: the browser key (analytics.js) authenticates a narrower set of calls.
            browser = v1 and browser_key_valid(integration=integration, candidates=candidates)
            if not browser:
                return _unauthorized(
                    "The key in the Authorization header is not valid: it is not this install's "
                    "tenant token (or was rotated out more than its grace period ago)."
                )
        limit = settings.INGEST_MAX_BODY_BYTES
        if browser:
            # A public key: browsers send small batches, so the pre-auth read bound applies.
            limit = min(settings.INGEST_UNAUTHENTICATED_MAX_BODY_BYTES, limit)
    elif not v1:
        return _unauthorized(
            "Send the tenant token as HTTP Basic user name: Authorization: Basic base64(token:)."
        )
    else:
        # The write key may be in the body (analytics.js): until it is checked, read no more
        # than a Segment batch can be (500 KB), with a margin.
        limit = min(settings.INGEST_UNAUTHENTICATED_MAX_BODY_BYTES, settings.INGEST_MAX_BODY_BYTES)
    authenticated = bool(header)
    try:
        raw = body_read(request=request, limit=limit)
        data = body_decode(
            raw=raw, content_encoding=request.META.get("HTTP_CONTENT_ENCODING", ""), limit=limit
        )
        if too_many := _too_many_values(data):
            return too_many
        parsed = body_parse(data=data)
    except BodyTooLarge:
        return _too_large(limit=limit, authenticated=authenticated)
    except BadBody as exc:
        if not authenticated:
            return _unauthorized("No valid write key: send it as Basic auth user name.")
        return _json(400, {"error": "bad_request", "detail": str(exc)})

    if not authenticated:
        write_key = parsed.get("writeKey") if isinstance(parsed, dict) else None
        if not isinstance(write_key, str) or not write_key:
            return _unauthorized(
                "No write key: send it as Basic auth user name or as writeKey in the body."
            )
        if not token_valid(integration=integration, candidates=[write_key]):
            browser = browser_key_valid(integration=integration, candidates=[write_key])
            if not browser:
                return _unauthorized(
                    "The writeKey in the body is not valid: it is not this install's tenant "
                    "token (or was rotated out more than its grace period ago)."
                )
    if browser and not browser_path_allowed(path_type):
        return _json(
            403,
            {
                "error": "forbidden",
                "detail": f"The browser key cannot send {path_type} calls: send them "
                "server-side with the tenant token.",
            },
        )
    if not v1 and integration.shared_secret:
        presented = request.META.get("HTTP_X_SIGNATURE", "")
        if not signature_valid(
            secret=integration.shared_secret, data=data, parsed=parsed, presented=presented
        ):
            return _unauthorized(
                "X-Signature is missing or wrong: hex HMAC-SHA1 of the body with the shared secret."
            )

    count = body_item_count(parsed=parsed, path_type=path_type)
    max_items = settings.INGEST_MAX_ITEMS
    if count > max_items:
        return _json(
            413,
            {
                "error": "too_many_messages",
                "detail": f"The body holds {count:,} messages; at most {max_items:,} are "
                "accepted in one request. Send them in smaller batches.",
            },
        )
    items = body_items(parsed=parsed, path_type=path_type)
    del parsed
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
