"""Planhat's open endpoints, as thin views over the one ingest service.

``POST /analytics/{tenantToken}`` (one activity), ``POST /analytics/bulk/{tenantToken}`` (an
array), ``PUT /analytics/stream/csv/{tenantToken}`` (CSV, streamed) and ``POST
/dimensiondata/{tenantToken}`` (one value or an array). The tenant token is in the path, as
Planhat has it, or in ``Authorization: Bearer <token>`` (Basic as for Segment works too);
never the browser key. Answers are Planhat's: ``200 {"processed": n, "errors": [{"index": i,
"error": "…"}]}``, with ``401`` / ``400`` / ``413`` / ``503`` as the Segment endpoints.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from ..auth import integration_cached, token_from_authorization, token_valid
from ..body import BadBody, BodyTooLarge, body_decode, body_parse, body_read
from ..deadline import database_deadline
from ..messages import MAX_DEPTH, items_shallow
from ..views import _too_many_values
from .csv_stream import csv_stream_ingest
from .items import activity_message, dimension_message
from .services import Translate, planhat_items_ingest

logger = logging.getLogger(__name__)


def _json(status: int, body: dict[str, Any], **headers: str) -> HttpResponse:
    response = HttpResponse(orjson.dumps(body), status=status, content_type="application/json")
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    response["Access-Control-Allow-Origin"] = settings.INGEST_CORS_ALLOW_ORIGIN
    return response


def _preflight(request: HttpRequest, methods: str) -> HttpResponse:
    response = HttpResponse(status=204)
    response["Access-Control-Allow-Methods"] = methods
    response["Access-Control-Allow-Headers"] = request.META.get(
        "HTTP_ACCESS_CONTROL_REQUEST_HEADERS", "Authorization, Content-Type, Content-Encoding"
    )
    response["Access-Control-Max-Age"] = "86400"
    response["Access-Control-Allow-Origin"] = settings.INGEST_CORS_ALLOW_ORIGIN
    return response


def _unavailable(step: str) -> HttpResponse:
    logger.exception("ingest_database_unavailable", extra={"step": step})
    return _json(
        503,
        {"error": "unavailable", "detail": "The database cannot take the write; retry later."},
        Retry_After=str(settings.INGEST_RETRY_AFTER_SECONDS),
    )


def _too_large(limit: int) -> HttpResponse:
    return _json(
        413,
        {"error": "payload_too_large", "detail": f"The body is over {limit} bytes (after gunzip)."},
    )


def _refusal(request: HttpRequest, token: str | None, method: str) -> HttpResponse | None:
    """An answer when the request may not go on (preflight, method, token), else None."""
    if request.method == "OPTIONS":
        return _preflight(request, f"{method}, OPTIONS")
    if request.method != method:
        return _json(
            405,
            {"error": "method_not_allowed", "detail": f"Use {method}."},
            Allow=f"{method}, OPTIONS",
        )
    try:
        integration = integration_cached()
    except DatabaseError:
        return _unavailable("integration_read")
    header = request.META.get("HTTP_AUTHORIZATION", "")
    candidates = [token] if token else token_from_authorization(header)
    if not candidates:
        return _json(
            401,
            {
                "error": "unauthorized",
                "detail": "Put the tenant token in the path (/analytics/<token>) or send "
                "Authorization: Bearer <token>.",
            },
            WWW_Authenticate='Bearer realm="planhat"',
        )
    if not token_valid(integration=integration, candidates=candidates):
        return _json(
            401,
            {
                "error": "unauthorized",
                "detail": "The tenant token is wrong (or was rotated out more than its grace "
                "period ago). The browser key is not accepted here.",
            },
            WWW_Authenticate='Bearer realm="planhat"',
        )
    return None


def _json_items(request: HttpRequest, token: str | None, translate: Translate) -> HttpResponse:
    # The Segment endpoints' bound on the request's database work (a hung database: 503).
    with database_deadline(settings.INGEST_DATABASE_DEADLINE_SECONDS):
        return _json_items_bounded(request, token, translate)


def _json_items_bounded(
    request: HttpRequest, token: str | None, translate: Translate
) -> HttpResponse:
    refused = _refusal(request, token, "POST")
    if refused is not None:
        return refused
    limit = settings.INGEST_MAX_BODY_BYTES
    try:
        raw = body_read(request=request, limit=limit)
        data = body_decode(
            raw=raw, content_encoding=request.META.get("HTTP_CONTENT_ENCODING", ""), limit=limit
        )
        # The Segment endpoints' bound on JSON values, counted before parsing (one rule).
        if too_many := _too_many_values(data):
            too_many["Access-Control-Allow-Origin"] = settings.INGEST_CORS_ALLOW_ORIGIN
            return too_many
        parsed = body_parse(data=data)
    except BodyTooLarge:
        return _too_large(limit)
    except BadBody as exc:
        return _json(400, {"error": "bad_request", "detail": str(exc)})
    items = parsed if isinstance(parsed, list) else [parsed]
    max_items = settings.INGEST_MAX_ITEMS
    if len(items) > max_items:  # the Segment endpoints' cap, one rule
        return _json(
            413,
            {
                "error": "too_many_items",
                "detail": f"The body holds {len(items):,} items; at most {max_items:,} are "
                "accepted in one request. Send them in smaller batches.",
            },
        )
    # As on the Segment endpoints: each item is checked for what cannot be stored only when
    # the body may hold U+0000 or nesting past the depth limit.
    deep = data.count(b"{") + data.count(b"[") > MAX_DEPTH and not items_shallow(items)
    try:
        result = planhat_items_ingest(
            items=enumerate(items), translate=translate, check_nul=deep or b"\\u0000" in data
        )
    except DatabaseError:
        return _unavailable("inbox_store")
    return _json(200, result.as_dict())


@csrf_exempt
def analytics(request: HttpRequest, token: str | None = None) -> HttpResponse:
    """``POST /analytics/{tenantToken}``: one activity (an array is taken as bulk)."""
    return _json_items(request, token, activity_message)


@csrf_exempt
def analytics_bulk(request: HttpRequest, token: str | None = None) -> HttpResponse:
    """``POST /analytics/bulk/{tenantToken}``: a JSON array of activities."""
    return _json_items(request, token, activity_message)


@csrf_exempt
def dimension_data(request: HttpRequest, token: str | None = None) -> HttpResponse:
    """``POST /dimensiondata/{tenantToken}``: one metric value or an array of them."""
    return _json_items(request, token, dimension_message)


@csrf_exempt
def analytics_csv(request: HttpRequest, token: str | None = None) -> HttpResponse:
    """``PUT /analytics/stream/csv/{tenantToken}``: activities as CSV, read as a stream."""
    refused = _refusal(request, token, "PUT")
    if refused is not None:
        return refused
    limit = settings.INGEST_MAX_BODY_BYTES
    try:
        result = csv_stream_ingest(request=request, limit=limit)
    except BodyTooLarge:
        return _too_large(limit)
    except BadBody as exc:
        return _json(400, {"error": "bad_request", "detail": str(exc)})
    except DatabaseError:
        return _unavailable("inbox_store")
    return _json(200, result.as_dict())
