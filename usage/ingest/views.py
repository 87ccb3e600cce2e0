"""The ingest views: thin translations of HTTP into the ingest steps (DESIGN.md §4.1).

Order of checks: header token (before reading anything), body size, gunzip, JSON, the body's
``writeKey`` on /v1, X-Signature on /dock, validation, one INSERT, 200.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from django.conf import settings
from django.db import DatabaseError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from ..rejections import rejected_calls_count
from .auth import integration_cached, signature_valid, token_from_authorization, token_valid
from .body import BadBody, BodyTooLarge, body_decode, body_parse, body_read
from .messages import body_items, messages_validate
from .nudge import nudge
from .services import inbox_store

logger = logging.getLogger(__name__)

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
    limit = settings.INGEST_MAX_BODY_BYTES
    try:
        integration = integration_cached()
    except DatabaseError:
        return _unavailable("integration_read")
    header = request.META.get("HTTP_AUTHORIZATION", "")
    authenticated = bool(header) and token_valid(
        integration=integration, candidates=token_from_authorization(header)
    )
    if not authenticated and not v1:
        return _unauthorized(
            "Send the tenant token as HTTP Basic user name: Authorization: Basic base64(token:)."
            if not header
            else "The tenant token is wrong (or was rotated out more than its grace period ago)."
        )
    try:
        raw = body_read(request=request, limit=limit)
        data = body_decode(
            raw=raw, content_encoding=request.META.get("HTTP_CONTENT_ENCODING", ""), limit=limit
        )
        parsed = body_parse(data=data)
    except BodyTooLarge:
        return _json(
            413,
            {
                "error": "payload_too_large",
                "detail": f"The body is over {limit} bytes (after gunzip).",
            },
        )
    except BadBody as exc:
        if not authenticated:
            return _unauthorized("No valid write key: send it as Basic auth user name.")
        return _json(400, {"error": "bad_request", "detail": str(exc)})

    if not authenticated:
        write_key = parsed.get("writeKey") if isinstance(parsed, dict) else None
        if not (
            isinstance(write_key, str)
            and token_valid(integration=integration, candidates=[write_key])
        ):
            return _unauthorized(
                "No valid write key: send it as Basic auth user name or as writeKey in the body."
            )
    if not v1 and integration.shared_secret:
        presented = request.META.get("HTTP_X_SIGNATURE", "")
        if not signature_valid(
            secret=integration.shared_secret, data=data, parsed=parsed, presented=presented
        ):
            return _unauthorized(
                "X-Signature is missing or wrong: hex HMAC-SHA1 of the body with the shared secret."
            )

    items = body_items(parsed=parsed, path_type=path_type)
    messages, rejected = messages_validate(items=items, check_each=b"\\u0000" in data)
    try:
        try:
            stored = inbox_store(messages=messages, received_at=timezone.now())
        except orjson.JSONEncodeError:
            # Rare (nesting orjson reads but will not write): find and reject the culprits.
            messages, rejected = messages_validate(items=items, check_each=True)
            stored = inbox_store(messages=messages, received_at=timezone.now())
    except DatabaseError:
        return _unavailable("inbox_store")
    if stored.accepted:
        transaction.on_commit(nudge, robust=True)
    if rejected:  # counted for the event log (reason only; never a payload)
        rejected_calls_count(details=[r.detail for r in rejected])
    return _json(
        200,
        {
            "accepted": stored.accepted,
            "duplicates": stored.duplicates,
            "rejected": [r.as_dict() for r in rejected],
        },
    )


def _unavailable(step: str) -> HttpResponse:
    logger.exception("ingest_database_unavailable", extra={"step": step})
    retry_after = str(settings.INGEST_RETRY_AFTER_SECONDS)
    return _json(
        503,
        {"error": "unavailable", "detail": "The database cannot take the write; retry later."},
        Retry_After=retry_after,
    )
