"""inbox_store: all accepted messages of a request in one INSERT … ON CONFLICT DO NOTHING.

The rows travel as one JSON document unpacked by the database (``jsonb_array_elements`` on
PostgreSQL, ``json_each`` on SQLite): one statement and three parameters whatever the batch
size, so SQLite's 32,766-variable limit never applies and no chunking is needed, and
PostgreSQL parses each payload once. Measured against ``bulk_create(ignore_conflicts=True)``
in README.md ("Receiving Segment events").
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from django.db import connection

from usage.models import InboxEvent, InboxStatus

from .messages import Message

_TABLE = InboxEvent._meta.db_table

_POSTGRES_SQL = f"""
INSERT INTO {_TABLE} (message_id, request_id, type, payload, received_at, occurred_at,
                      status, reason, detail, attempts)
SELECT r->>'m', %s, r->>'t', r->'p', %s, (r->>'o')::timestamptz, %s, '', '', 0
FROM jsonb_array_elements(%s::jsonb) AS r
ON CONFLICT (message_id) DO NOTHING
"""  # noqa: S608 - the table name is our own model's, not input

# One row (the single-event calls): plain VALUES, which PostgreSQL plans and runs measurably
# faster than unpacking a one-element document (README.md ("Receiving Segment events")).
_POSTGRES_ONE_SQL = f"""
INSERT INTO {_TABLE} (message_id, request_id, type, payload, received_at, occurred_at,
                      status, reason, detail, attempts)
VALUES (%s, %s, %s, %s::jsonb, %s, %s::timestamptz, %s, '', '', 0)
ON CONFLICT (message_id) DO NOTHING
"""  # noqa: S608 - the table name is our own model's, not input

_SQLITE_SQL = f"""
INSERT INTO {_TABLE} (message_id, request_id, type, payload, received_at, occurred_at,
                      status, reason, detail, attempts)
SELECT json_extract(value, '$.m'), %s, json_extract(value, '$.t'),
       json_extract(value, '$.p'), %s, json_extract(value, '$.o'), %s, '', '', 0
FROM json_each(%s) WHERE true
ON CONFLICT (message_id) DO NOTHING
"""  # noqa: S608 - "WHERE true" resolves SQLite's INSERT … SELECT … ON CONFLICT ambiguity


@dataclass(frozen=True)
class StoreResult:
    request_id: uuid.UUID
    accepted: int
    duplicates: int


def inbox_store(*, messages: list[Message], received_at: datetime) -> StoreResult:
    """Store messages as pending inbox rows of one request; duplicates are not stored.

    ``duplicates`` counts messages whose ``message_id`` already exists in the inbox or
    appears earlier in the same request. One statement, no explicit transaction: the
    INSERT is atomic by itself. Raises DatabaseError when the database cannot take it.
    """
    request_id = uuid.uuid4()
    if not messages:
        return StoreResult(request_id=request_id, accepted=0, duplicates=0)
    vendor = connection.vendor
    rows = []
    seen: set[str] = set()
    for message in messages:
        if message.message_id in seen:
            continue
        seen.add(message.message_id)
        occurred = message.occurred_at or received_at
        rows.append(
            {
                "m": message.message_id,
                "t": message.type,
                "o": _db_datetime(occurred, vendor),
                "p": message.payload,
            }
        )
    if vendor == "postgresql" and len(rows) == 1:
        row = rows[0]
        sql = _POSTGRES_ONE_SQL
        params = [row["m"], request_id, row["t"], _dumps(row["p"]), received_at, row["o"]]
        params.append(InboxStatus.PENDING)
    elif vendor == "postgresql":
        document = _dumps(rows)
        sql, params = _POSTGRES_SQL, [request_id, received_at, InboxStatus.PENDING, document]
    else:
        document = _dumps(rows)
        sql = _SQLITE_SQL
        params = [request_id.hex, _db_datetime(received_at, vendor), InboxStatus.PENDING]
        params.append(document)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        inserted = cursor.rowcount
    return StoreResult(
        request_id=request_id, accepted=inserted, duplicates=len(messages) - inserted
    )


def _db_datetime(value: datetime, vendor: str) -> str:
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    if vendor == "postgresql":
        return value.isoformat()
    # Django's SQLite format: naive UTC text, as DateTimeField stores it under USE_TZ.
    return value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _dumps(rows: list[dict] | dict) -> str:
    # Payloads came from orjson.loads and already passed orjson.dumps in validation.
    return orjson.dumps(rows).decode()
