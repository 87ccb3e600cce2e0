"""Planhat's open-API items, read and turned into inbox messages (no HTTP, no database).

An activity (``/analytics``, ``/analytics/bulk``, a CSV row) becomes a Segment-shaped
``track`` message, so processing treats it exactly as a Segment track call (matching,
enduser creation, late binding, section 1's switch); what Segment has no field for travels
under ``planhat`` (``weight``, ``count``). A dimension-data item (``/dimensiondata``)
becomes a message of its own type, ``dimension``, processed into a metric value (section 2's
switch). A bad item raises :class:`ItemError` with a message for the sender.

Items carry no message id: each gets one derived from its translated content by the rule
every endpoint uses (``messages.message_id_derive``), so an exact resend is a duplicate.
An item's ``date`` is part of its content; an item without one is hashed with its receive
time rounded down to the second: two identical activities without a date sent in the same
second count once.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import orjson

from integrations.models import METRIC_KEY_RE
from usage.processing.parse import MAX_COUNT, as_email, as_key

from ..messages import Message, _json_kind, _unstorable, message_id_derive, parse_iso8601

ACTIVITY_LIBRARY = {"name": "planhat-open-api"}
DIMENSION_TYPE = "dimension"
# Planhat's ``model`` values (case-insensitive here), to the canonical spelling.
MODELS = {"company": "Company", "enduser": "EndUser", "asset": "Asset", "project": "Project"}
MAX_DIMENSION_ID = 128


class ItemError(ValueError):
    """Why one item cannot be stored; the others of the request are unaffected."""


def _text(value: Any, limit: int = 255) -> str:
    if isinstance(value, str):
        return value.strip()[:limit]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)[:limit]
    return ""


def _time(item: dict) -> datetime | None:
    """The item's ``date`` (ISO-8601) as aware UTC; None when it gives none."""
    raw = item.get("date")
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise ItemError(f"date must be an ISO-8601 string, not {_json_kind(raw)}.")
    parsed = parse_iso8601(raw)
    if parsed is None:
        raise ItemError(f"date {raw[:40]!r} is not an ISO-8601 date or time.")
    return parsed


def _number(value: Any, name: str) -> float:
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise ItemError(f"{name} must be a number, not {str(value)[:40]!r}.")
    return number


def _count(value: Any) -> int:
    if value is None or value == "":
        return 1
    if type(value) is int and 1 <= value <= MAX_COUNT:  # the usual case, checked cheaply
        return value
    number = _number(value, "count")
    if not number.is_integer() or number < 1 or number > MAX_COUNT:
        raise ItemError(f"count must be a positive whole number, not {str(value)[:40]!r}.")
    return int(number)


def _weight(value: Any) -> float:
    if value is None or value == "":
        return 1.0
    if (type(value) is int or type(value) is float) and 0 <= value < math.inf:  # usual case
        return float(value)
    weight = _number(value, "weight")
    if weight < 0:
        raise ItemError(f"weight must not be negative ({value!r}).")
    return weight


def _first(item: dict, *names: str) -> Any:
    """The first of ``names`` present with a value (Planhat's name, then its bulk name)."""
    for name in names:
        value = item.get(name)
        if value is not None and value != "":
            return value
    return None


def _with_id(
    payload: dict, occurred_at: datetime | None, received_at: datetime, kind: str, check_nul: bool
) -> Message:
    """The message, its id derived by the one rule of every endpoint (``message_id_derive``).

    An item with a ``date`` has it as ``timestamp`` (the time is part of the content); one
    without is hashed with its receive second and stored without a time of its own (the
    inbox row takes the receive time). No copy of the payload is made.
    """
    # U+0000 is looked for only when the raw body holds one (as the Segment endpoints do).
    problem = _unstorable(payload) if check_nul else ""
    if problem:
        raise ItemError(problem)
    try:
        message_id = message_id_derive(payload, occurred_at=occurred_at, received_at=received_at)
    except orjson.JSONEncodeError as exc:  # nesting orjson will not write
        raise ItemError(f"Cannot store this item: {exc}.") from exc
    return Message(message_id=message_id, type=kind, occurred_at=occurred_at, payload=payload)


def activity_message(item: Any, *, received_at: datetime, check_nul: bool = True) -> Message:
    """One Planhat activity as a Segment ``track`` message.

    Fields: ``action`` (required), ``email`` (required without ``externalId``),
    ``externalId`` or bulk ``id`` (the user's id), ``companyExternalId`` or bulk ``cId``,
    ``name``, ``date`` (ISO; receive time when absent), ``weight`` (default 1), ``count``
    (default 1), ``info`` (an object, kept as the activity's properties).
    """
    if not isinstance(item, dict):
        raise ItemError(f"Not a JSON object but {_json_kind(item)}.")
    action = _text(item.get("action"))
    if not action:
        raise ItemError("action is required: the name of what the user did.")
    user_id = as_key(_first(item, "externalId", "id"))
    email_raw = item.get("email")
    email = as_email(email_raw)
    if email_raw not in (None, "") and email is None:
        raise ItemError(f"email {str(email_raw)[:60]!r} is not an email address.")
    if not user_id and not email:
        raise ItemError("An activity needs email or externalId (the user's id).")
    company = as_key(_first(item, "companyExternalId", "cId"))
    info = item.get("info")
    if info is not None and not isinstance(info, dict):
        raise ItemError(f"info must be a JSON object, not {_json_kind(info)}.")
    occurred_at = _time(item)
    traits: dict[str, str] = {}
    if email:
        traits["email"] = email
    if name := _text(item.get("name")):
        traits["name"] = name
    context: dict[str, Any] = {"library": ACTIVITY_LIBRARY}
    if traits:
        context["traits"] = traits
    if company:
        context["groupId"] = company
    payload: dict[str, Any] = {"type": "track", "event": action}
    if user_id:
        payload["userId"] = user_id
    payload["context"] = context
    payload["properties"] = info or {}
    payload["planhat"] = {"weight": _weight(item.get("weight")), "count": _count(item.get("count"))}
    if occurred_at is not None:
        payload["timestamp"] = item["date"]
    return _with_id(payload, occurred_at, received_at, "track", check_nul)


def dimension_message(item: Any, *, received_at: datetime, check_nul: bool = True) -> Message:
    """One Planhat dimension-data item (a custom metric value) as a ``dimension`` message.

    Fields: ``dimensionId`` (required; the metric's key, no spaces), ``value`` (a number,
    required), ``externalId`` (required: the object's external id), ``model`` (``Company``
    by default; ``EndUser``, ``Asset``, ``Project``), ``date`` (ISO; receive time if absent).
    """
    if not isinstance(item, dict):
        raise ItemError(f"Not a JSON object but {_json_kind(item)}.")
    dimension = item.get("dimensionId")
    if not isinstance(dimension, str) or not dimension.strip():
        raise ItemError("dimensionId is required: the metric's id, e.g. active_users.")
    dimension = dimension.strip()
    if len(dimension) > MAX_DIMENSION_ID or not METRIC_KEY_RE.match(dimension):
        raise ItemError(
            f"dimensionId {dimension[:60]!r} is not valid: use letters, digits, '_', '-' or "
            f"'.', no spaces, at most {MAX_DIMENSION_ID} characters."
        )
    if "value" not in item or item["value"] is None or isinstance(item["value"], bool):
        raise ItemError("value is required: a number.")
    value = _number(item["value"], "value")
    external_id = as_key(item.get("externalId"))
    if not external_id:
        raise ItemError("externalId is required: the external id of the object.")
    model_raw = item.get("model") or "Company"
    model = MODELS.get(str(model_raw).strip().lower()) if isinstance(model_raw, str) else None
    if model is None:
        raise ItemError(
            f"model {str(model_raw)[:40]!r} is not one of Company, EndUser, Asset, Project."
        )
    occurred_at = _time(item)
    payload = {
        "type": DIMENSION_TYPE,
        "dimensionId": dimension,
        "value": value,
        "externalId": external_id,
        "model": model,
    }
    if occurred_at is not None:
        payload["timestamp"] = item["date"]
    return _with_id(payload, occurred_at, received_at, DIMENSION_TYPE, check_nul)
