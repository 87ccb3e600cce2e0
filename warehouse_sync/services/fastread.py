"""Tuple reads on PostgreSQL through a raw psycopg cursor in binary mode (the push's hot path).

The ORM's ``values_list()`` on PostgreSQL parses every ``timestamptz`` with Django's pure-Python
time-zone loader and every ``jsonb`` with ``json.loads``, then runs each value through field
converters: at 350,000 objects that was over half of the push's CPU. Here the same SQL (compiled
from the same queryset, so filters cannot drift) is fetched in binary format, where psycopg's C
loaders build datetimes, dates and decimals directly, and ``jsonb`` goes through orjson. The
values are the ones the ORM returns (aware UTC datetimes, ``Decimal``, parsed JSON), so the
mapping and its bytes do not change. SQLite (local mode) keeps the ORM path.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import QuerySet
from psycopg import Cursor
from psycopg.adapt import Loader
from psycopg.pq import Format

# orjson turns an integer of more than 64 bits into a float where json.loads keeps an int:
# hand such documents (and anything orjson refuses) to json.loads, as the ORM would.
_LONG_DIGITS = re.compile(rb"\d{20}")


def json_loads(data: bytes) -> Any:
    if _LONG_DIGITS.search(data) is None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


class _JsonbBinaryLoader(Loader):
    format = Format.BINARY

    def load(self, data) -> Any:
        # Binary jsonb is a version byte (1) followed by the JSON text.
        return json_loads(bytes(data[1:]))


def available(using: str = "default") -> bool:
    """The fast path applies: PostgreSQL with the session in UTC (what the ORM returns)."""
    connection = connections[using]
    return (
        connection.vendor == "postgresql" and settings.USE_TZ and connection.timezone_name == "UTC"
    )


def fetch(sql: str, params: tuple | list = (), *, using: str = "default") -> list[tuple]:
    """Run ``sql`` on Django's connection (same transaction) and return tuples."""
    connection = connections[using]
    connection.ensure_connection()
    with Cursor(connection.connection) as cursor:
        cursor.adapters.register_loader("jsonb", _JsonbBinaryLoader)
        cursor.execute(sql, params, binary=True)
        return cursor.fetchall()


def fetch_queryset(qs: QuerySet) -> list[tuple]:
    """The rows of a ``values_list()`` queryset, as tuples in its column order."""
    try:
        sql, params = qs.query.sql_with_params()
    except EmptyResultSet:  # e.g. pk__in=[]: the ORM answers [] without a query too
        return []
    return fetch(sql, params, using=qs.db)
