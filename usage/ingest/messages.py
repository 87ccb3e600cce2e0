"""From a parsed body to messages ready for the inbox: shape, merge, validation, message ids.

Only the door's checks live here (DESIGN.md §4.1): an item is rejected as
``invalid_message`` with a precise detail, everything else is stored and left to processing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from usage.models import DropReason
from usage.processing.parse import has_identity

MESSAGE_TYPES = frozenset({"identify", "track", "group", "page", "screen", "alias"})
MAX_MESSAGE_ID = 100
# Deepest nesting a message may have (the message object itself is level 1). orjson writes at
# most 254 levels and every store or processing step wraps a payload in a few more (a row of
# a JSON document, a list of rows), so anything near that limit would fail later, far from
# the door; Segment messages use fewer than ten. Documented in README ("Answers").
MAX_DEPTH = 128
_ORJSON_MAX_DEPTH = 254
# Keys that change between two sends of the same event (a retry's new sentAt, the SDK's
# bookkeeping, a proxy's receipt time, the key): left out of a derived message id.
VOLATILE_KEYS = frozenset({"sentAt", "_metadata", "receivedAt", "writeKey", "messageId"})
# U+0000 as orjson writes it: \u0000 after an even number of backslashes (an odd number means
# the text itself holds a backslash followed by "u0000", which is storable).
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
# Keys of a batch envelope that merge into each message (the message's own keys win).
ENVELOPE_MERGED = ("context", "integrations")


class Message(NamedTuple):
    """One accepted message: its id, type, event time (UTC) and the payload to store.

    A NamedTuple rather than a frozen dataclass: as immutable, and built ~3× faster, which
    shows at 1,000 messages a request.
    """

    message_id: str
    type: str
    occurred_at: datetime | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class Rejection:
    index: int
    detail: str
    reason: str = DropReason.INVALID_MESSAGE.value

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "reason": self.reason, "detail": self.detail}


def body_items(*, parsed: dict | list, path_type: str | None) -> list[Any]:
    """The list of raw items in a body: one message, a ``batch`` envelope, or an array.

    ``path_type`` is the call type of a ``/v1/<type>`` route: it sets each item's ``type``.
    A batch's top-level ``context`` / ``integrations`` are merged into each message.
    """
    if isinstance(parsed, list):
        items: list[Any] = parsed
    elif isinstance(parsed.get("batch"), list) and path_type is None:
        items = [_merge_envelope(parsed, item) for item in parsed["batch"]]
    else:
        items = [parsed]
    if path_type is not None:
        items = [{**item, "type": path_type} if isinstance(item, dict) else item for item in items]
    return items


def body_item_count(*, parsed: dict | list, path_type: str | None) -> int:
    """How many items :func:`body_items` would return, without building them."""
    if isinstance(parsed, list):
        return len(parsed)
    if isinstance(parsed.get("batch"), list) and path_type is None:
        return len(parsed["batch"])
    return 1


def _merge_envelope(envelope: dict, item: Any) -> Any:
    if not isinstance(item, dict):
        return item
    merged = dict(item)
    for key in ENVELOPE_MERGED:
        outer = envelope.get(key)
        if isinstance(outer, dict):
            inner = item.get(key)
            merged[key] = {**outer, **inner} if isinstance(inner, dict) else inner or dict(outer)
    if "sentAt" not in merged and "sentAt" in envelope:
        merged["sentAt"] = envelope["sentAt"]
    return merged


def items_shallow(items: list[Any]) -> bool:
    """True when no item is nested deeper than :data:`MAX_DEPTH` (one C-speed serialisation).

    orjson refuses to write past 254 levels: the list of items wrapped in enough lists to put
    an item of ``MAX_DEPTH`` levels exactly at that limit serialises if and only if no item is
    deeper. Never recurses in Python, whatever the input.
    """
    try:
        orjson.dumps(_wrapped(items, _ORJSON_MAX_DEPTH - MAX_DEPTH - 1))
    except orjson.JSONEncodeError:
        return False
    return True


def _wrapped(value: Any, levels: int) -> Any:
    for _ in range(levels):
        value = [value]
    return value


def messages_validate(
    *, items: list[Any], received_at: datetime, check_each: bool = True
) -> tuple[list[Message], list[Rejection]]:
    """Split items into accepted messages and rejections, in body order.

    ``writeKey`` is stripped; a message without ``messageId`` gets one from
    :func:`message_id_derive`, so a retried body dedupes. ``check_each`` checks each message
    for what the database cannot store or orjson cannot write (U+0000, nesting deeper than
    :data:`MAX_DEPTH`) and rejects that message alone; the view turns it off when the raw
    body holds no ``\\u0000`` and :func:`items_shallow` says nothing is too deep.
    """
    accepted: list[Message] = []
    rejected: list[Rejection] = []
    for index, item in enumerate(items):
        problem = _problem(item)
        if problem:
            rejected.append(Rejection(index=index, detail=problem))
            continue
        payload = item
        if "writeKey" in item:
            payload = {k: v for k, v in item.items() if k != "writeKey"}
        problem = _unstorable(payload) if check_each else ""
        if problem:
            rejected.append(Rejection(index=index, detail=problem))
            continue
        occurred_at = _occurred_at(payload)
        accepted.append(
            Message(
                message_id=_message_id(payload, occurred_at=occurred_at, received_at=received_at),
                type=payload["type"],
                occurred_at=occurred_at,
                payload=payload,
            )
        )
    return accepted, rejected


def _unstorable(payload: dict) -> str:
    try:
        orjson.dumps(_wrapped(payload, _ORJSON_MAX_DEPTH - MAX_DEPTH))
        data = orjson.dumps(payload)
    except orjson.JSONEncodeError:
        return f"The message is nested deeper than {MAX_DEPTH} levels."
    if _NUL_ESCAPE.search(data):
        # PostgreSQL's jsonb cannot hold U+0000: storing it would fail the whole request.
        return "The message contains a NUL character (\\u0000)."
    return ""


def _problem(item: Any) -> str:
    """Why an item is not a storable Segment message, or "" when it is."""
    if not isinstance(item, dict):
        return f"Not a JSON object but {_json_kind(item)}."
    kind = item.get("type")
    if kind is None or kind == "":
        return "Missing type: expected one of " + ", ".join(sorted(MESSAGE_TYPES)) + "."
    if kind not in MESSAGE_TYPES:
        return (
            f"Unknown type {str(kind)[:40]!r}: expected one of "
            + ", ".join(sorted(MESSAGE_TYPES))
            + "."
        )
    if kind == "track" and not _present(item.get("event")):
        return "A track call needs an event name (event)."
    if kind == "group" and not _present(item.get("groupId")):
        return "A group call needs a groupId."
    if not has_identity(item):
        return (
            "No userId, anonymousId or email: the message identifies nobody (an id is a "
            "string or an integer of at most 255 characters; an email holds an @)."
        )
    message_id = item.get("messageId")
    if message_id is not None and not isinstance(message_id, str | int):
        return f"messageId must be a string, not {_json_kind(message_id)}."
    if message_id is not None and len(str(message_id)) > MAX_MESSAGE_ID:
        return f"messageId is {len(str(message_id))} characters long; at most 100 are allowed."
    return ""


def _present(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _message_id(payload: dict, *, occurred_at: datetime | None, received_at: datetime) -> str:
    given = payload.get("messageId")
    if given is not None and str(given).strip():
        return str(given)
    return message_id_derive(payload, occurred_at=occurred_at, received_at=received_at)


def message_id_derive(payload: dict, *, occurred_at: datetime | None, received_at: datetime) -> str:
    """The id of a message sent without ``messageId``: the same for every send of one event.

    ``auto-`` + the first 128 bits of SHA-256 (32 hex digits: as long as the UUIDs SDKs
    send, so the message-id indexes stay as compact as theirs) of the message without what
    changes between sends
    (:data:`VOLATILE_KEYS`: ``sentAt``, ``_metadata``, ``receivedAt``, ``writeKey``), keys in
    sorted order at every level, so the order of keys does not matter. The event's own time
    (``timestamp`` / ``originalTimestamp``) is part of the message, so two events that differ
    only in time stay two. A message without a time of its own (``occurred_at`` None) is
    hashed with its receive time rounded down to the second: two identical such messages
    received in the same second count once. Every endpoint derives ids here.
    """
    # A copy only when there is something to leave out (Planhat items never have any).
    volatile = not VOLATILE_KEYS.isdisjoint(payload)
    content = {k: v for k, v in payload.items() if k not in VOLATILE_KEYS} if volatile else payload
    second = None if occurred_at is not None else received_at.replace(microsecond=0).isoformat()
    canonical = orjson.dumps([content, second], option=orjson.OPT_SORT_KEYS)
    return "auto-" + hashlib.sha256(canonical).hexdigest()[:32]


def _occurred_at(payload: dict) -> datetime | None:
    """``timestamp``, else ``originalTimestamp``, as an aware UTC datetime (None: neither)."""
    for key in ("timestamp", "originalTimestamp"):
        value = payload.get(key)
        if isinstance(value, str) and value:
            parsed = parse_iso8601(value)
            if parsed is not None:
                return parsed
    return None


def parse_iso8601(value: str) -> datetime | None:
    """An ISO-8601 string as aware UTC; a naive time is taken as UTC; junk gives None."""
    text = value.strip()
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 shifted out of range
        return None
