"""The one ingest service: validate a request's messages, store them, ask for a drain.

``messages_ingest`` is what every way in calls (the endpoints, the integration page's test
event, the demo). ``inbox_store``: all accepted messages of a request in one INSERT … ON
CONFLICT DO NOTHING.

The rows travel as one JSON document unpacked by the database (``jsonb_array_elements`` on
PostgreSQL, ``json_each`` on SQLite): one statement and three parameters whatever the batch
size, so SQLite's 32,766-variable limit never applies and no chunking is needed, and
PostgreSQL parses each payload once. Measured against ``bulk_create(ignore_conflicts=True)``
in README.md ("Receiving Segment events").
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from usage.models import InboxEvent

from .messages import Message, Rejection, messages_validate
from .nudge import drain_soon

_TABLE = InboxEvent._meta.db_table
# Status, reason, detail and attempts are left to the columns' db_default (a pending row).

_POSTGRES_SQL = f"""
INSERT INTO {_TABLE} (message_id, request_id, type, payload, received_at, occurred_at)
SELECT r->>'m', %s, r->>'t', r->'p', %s, (r->>'o')::timestamptz
FROM jsonb_array_elements(%s::jsonb) AS r
ON CONFLICT (message_id) DO NOTHING
"""  # noqa: S608 - the table name is our own model's, not input

# One row (the single-event calls): plain VALUES, which PostgreSQL plans and runs measurably
# faster than unpacking a one-element document (README.md ("Receiving Segment events")).
_POSTGRES_ONE_SQL = f"""
INSERT INTO {_TABLE} (message_id, request_id, type, payload, received_at, occurred_at)
VALUES (%s, %s, %s, %s::jsonb, %s, %s::timestamptz)
ON CONFLICT (message_id) DO NOTHING
"""  # noqa: S608 - the table name is our own model's, not input

_SQLITE_SQL = f"""
INSERT INTO {_TABLE} (message_id, request_id, type, payload, received_at, occurred_at)
SELECT json_extract(value, '$.m'), %s, json_extract(value, '$.t'),
       json_extract(value, '$.p'), %s, json_extract(value, '$.o')
FROM json_each(%s) WHERE true
ON CONFLICT (message_id) DO NOTHING
"""  # noqa: S608 - "WHERE true" resolves SQLite's INSERT … SELECT … ON CONFLICT ambiguity


# PostgreSQL: a statement timeout of the ingest's own, for this one statement only. The three
# statements travel as one simple query (Django's psycopg cursor binds parameters client-side),
# which PostgreSQL runs as one implicit transaction: SET LOCAL lasts until its end, costs no
# extra round trip, and never applies to migrations or rebuilds. Inside an outer transaction
# (the test event), the trailing SET puts the session's own value back for what follows.
_TIMEOUT_BEFORE = "SET LOCAL statement_timeout = %s;\n"
_TIMEOUT_AFTER = ";\nSET LOCAL statement_timeout TO DEFAULT"


@dataclass(frozen=True)
class StoreResult:
    request_id: uuid.UUID
    accepted: int
    duplicates: int
    rejected: list[Rejection] = field(default_factory=list)


def messages_ingest(
    *, items: list[Any], received_at: datetime | None = None, check_each: bool = True
) -> StoreResult:
    """Validate raw Segment items, store the valid ones as one request, nudge a drain.

    ``check_each`` checks every item on its own for what cannot be stored (U+0000, nesting
    past ``messages.MAX_DEPTH``) and rejects that item alone; the endpoints turn it off when
    the raw body holds no ``\\u0000`` and nothing is nested too deep. The drain is asked for once the transaction commits (coalesced,
    ``nudge.drain_soon``), only when something new was stored. Raises DatabaseError when
    the database cannot take the write (one query otherwise).
    """
    received_at = received_at or timezone.now()
    messages, rejected = messages_validate(
        items=items, received_at=received_at, check_each=check_each
    )
    try:
        stored = inbox_store(messages=messages, received_at=received_at)
    except orjson.JSONEncodeError:
        # Not expected (depth and U+0000 are checked first); should a payload still fail to
        # serialise, find and reject the culprits rather than fail the request.
        messages, rejected = messages_validate(items=items, received_at=received_at)
        stored = inbox_store(messages=messages, received_at=received_at)
    if stored.accepted:
        drain_soon()
    return StoreResult(
        request_id=stored.request_id,
        accepted=stored.accepted,
        duplicates=stored.duplicates,
        rejected=rejected,
    )


def inbox_store(*, messages: list[Message], received_at: datetime) -> StoreResult:
    """Store messages as pending inbox rows of one request; duplicates are not stored.

    ``duplicates`` counts messages whose ``message_id`` already exists in the inbox or
    appears earlier in the same request. One statement, no explicit transaction: the
    INSERT is atomic by itself. On PostgreSQL it runs under ``INGEST_STATEMENT_TIMEOUT_MS``
    (``SET LOCAL``, this statement only). Raises DatabaseError when the database cannot take
    it (including a statement that ran out of time).
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
    elif vendor == "postgresql":
        sql, params = _POSTGRES_SQL, [request_id, received_at, _dumps(rows)]
    else:
        sql = _SQLITE_SQL
        params = [request_id.hex, _db_datetime(received_at, vendor), _dumps(rows)]
    timeout_ms = settings.INGEST_STATEMENT_TIMEOUT_MS if vendor == "postgresql" else 0
    with connection.cursor() as cursor:
        if timeout_ms > 0 and _binds_client_side(cursor):
            cursor.execute(_TIMEOUT_BEFORE + sql + _TIMEOUT_AFTER, [timeout_ms, *params])
            cursor.cursor.nextset()  # the INSERT's result, after the SET's
            inserted = cursor.cursor.rowcount
        elif timeout_ms > 0:
            # Server-side binding (OPTIONS server_side_binding): one statement per execute.
            with transaction.atomic():
                cursor.execute(
                    "SELECT set_config('statement_timeout', %s, true)", [str(timeout_ms)]
                )
                cursor.execute(sql, params)
                inserted = cursor.rowcount
        else:
            cursor.execute(sql, params)
            inserted = cursor.rowcount
    return StoreResult(
        request_id=request_id, accepted=inserted, duplicates=len(messages) - inserted
    )


def _binds_client_side(cursor) -> bool:
    import psycopg

    return isinstance(cursor.cursor, psycopg.ClientCursor)


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
