"""Bulk reads and writes with one SQL text on PostgreSQL and SQLite: rows travel as one JSON
document that the database unpacks.

Each statement takes its rows as a single parameter, read back as a table ``v``:
``json_to_recordset(%s::json) AS v(col type, …)`` on PostgreSQL, ``json_each(%s)`` with one
``json_extract`` per column on SQLite. The rest of the statement (``INSERT … SELECT … ON
CONFLICT``, ``UPDATE … FROM``, ``… IN (keys)``) is the same text on both, so each write has
one path, one statement whatever its size (SQLite's 32,766-variable limit never applies),
and no model instances. orjson writes a whole batch in one C call; an ``IN`` list of a
thousand placeholders costs more to bind than to run.

Table and column names, column types and missing values come from the models' ``_meta``:
a column left out of an INSERT gets its ``db_default`` from the database, or else the
field's ``default`` (evaluated once per statement). Values are adapted as Django stores them
(``get_db_prep_value``): on SQLite a datetime becomes naive UTC text
``YYYY-MM-DD HH:MM:SS[.ffffff]`` and a UUID 32 hex digits, or range filters and date
truncations through the ORM would silently miss the rows (``tests/usage/test_bulk.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
from django.db import connection
from django.db.models import Field, Model
from django.db.models.expressions import RawSQL
from django.db.models.fields import NOT_PROVIDED

# Field types whose Python values may not be what the database stores, with a sample each.
_SAMPLES: dict[str, Any] = {
    "DateTimeField": datetime(2001, 2, 3, 4, 5, 6, 7, tzinfo=UTC),
    "DateField": date(2001, 2, 3),
    "TimeField": time(4, 5, 6, 7),
    "UUIDField": UUID(int=1),
}


def quote(name: str) -> str:
    return connection.ops.quote_name(name)


def table(model: type[Model]) -> str:
    """The model's table, quoted."""
    return quote(model._meta.db_table)


def field_of(model: type[Model], name: str) -> Field:
    """A concrete field by name, attname (``company_id``) or ``pk``."""
    meta = model._meta
    if name == "pk":
        return meta.pk
    for field in meta.concrete_fields:
        if name in (field.name, field.attname):
            return field
    raise LookupError(f"{meta.label} has no column {name!r}")


def column(model: type[Model], name: str) -> str:
    """The quoted column of a field (``enduser`` and ``enduser_id`` give ``"enduser_id"``)."""
    return quote(field_of(model, name).column)


def _default(value: Any) -> str:
    # The fallback encoder (orjson refuses integers past 64 bits, which payloads may hold).
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID | Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError: an integer past 64 bits in some properties
        return json.dumps(value, default=_default)


def _adapter(field: Field) -> Callable[[Any], Any] | None:
    """How a field's values are written as Django writes them, or None when as they are.

    The field's own ``get_db_prep_value``, probed once on a sample: where the database
    takes the value unchanged (PostgreSQL's datetimes, dates and UUIDs, which orjson
    writes as ISO text), nothing is called per value (measured: adapting every datetime
    of a claim cost more than writing it).
    """
    sample = _SAMPLES.get(field.get_internal_type())
    if sample is None:
        return None

    def adapt(value: Any) -> Any:
        if value is None:
            return None
        return field.get_db_prep_value(value, connection, prepared=True)

    return None if adapt(sample) is sample else adapt


class _Dialect:
    """The only text that differs between the two databases: how a document becomes rows."""

    def recordset(self, columns: Sequence[tuple[str, Field]]) -> str:
        raise NotImplementedError

    def keys(self) -> str:
        raise NotImplementedError


class _Postgres(_Dialect):
    def recordset(self, columns: Sequence[tuple[str, Field]]) -> str:
        kinds = ", ".join(f"{quote(name)} {field.db_type(connection)}" for name, field in columns)
        return f"json_to_recordset(%s::json) AS v({kinds})"

    def keys(self) -> str:
        return "SELECT json_array_elements_text(%s::json)"


class _SQLite(_Dialect):
    def recordset(self, columns: Sequence[tuple[str, Field]]) -> str:
        picks = []
        for name, field in columns:
            value = f"json_extract(value, '$.{name}')"
            if field.get_internal_type() == "JSONField":
                # JSON text as Django stores it: json_quote keeps an object or array (JSON
                # already) and quotes a bare string, which json_extract would unwrap.
                value = f"json_quote({value})"
            picks.append(f"{value} AS {quote(name)}")
        return f"(SELECT {', '.join(picks)} FROM json_each(%s)) AS v"  # noqa: S608 — our names

    def keys(self) -> str:
        return "SELECT value FROM json_each(%s)"


_DIALECTS: dict[str, _Dialect] = {"postgresql": _Postgres(), "sqlite": _SQLite()}


def _dialect() -> _Dialect:
    try:
        return _DIALECTS[connection.vendor]
    except KeyError:
        raise NotImplementedError(f"no bulk SQL for {connection.vendor}") from None


def recordset(columns: Sequence[tuple[str, Field]], rows: Iterable[Sequence]) -> tuple[str, str]:
    """The ``FROM`` item ``v`` that reads ``rows`` back, and its one parameter.

    ``columns`` are (name in ``v``, the field whose type and storage the values take); each
    row holds one value per column, in that order.
    """
    names = [name for name, _ in columns]
    adapters = [(i, adapt) for i, (_, f) in enumerate(columns) if (adapt := _adapter(f))]
    records = []
    for row in rows:
        if adapters:
            row = list(row)
            for i, adapt in adapters:
                row[i] = adapt(row[i])
        records.append(dict(zip(names, row, strict=True)))
    return _dialect().recordset(columns), _dumps(records)


def keys_in(values: Iterable[Any]) -> RawSQL:
    """``(SELECT …)`` of the given keys (text) from one parameter, for ``field__in=``.

    ``IN (subquery)`` on one JSON parameter: one bind whatever the number of keys.
    """
    return RawSQL(_dialect().keys(), [_dumps(list(values))])  # noqa: S611 — a parameter


def _model_columns(model: type[Model], names: Sequence[str]) -> list[tuple[str, Field]]:
    return [(f.column, f) for f in (field_of(model, n) for n in names)]


def _defaults(model: type[Model], given: Sequence[str]) -> list[tuple[Field, Any]]:
    """Fields an INSERT leaves out that need a value from the model (not ``db_default``)."""
    named = {field_of(model, n).column for n in given}
    missing = []
    for field in model._meta.concrete_fields:
        if field.column in named or field.primary_key or field.db_default is not NOT_PROVIDED:
            continue
        if field.has_default():
            missing.append((field, field.get_default()))
        elif not field.null:
            raise ValueError(f"{model._meta.label}.{field.name} needs a value")
    return missing


def rows_insert(
    model: type[Model],
    fields: Sequence[str],
    rows: Iterable[Sequence],
    *,
    returning: Sequence[str] = (),
    conflict: Sequence[str] = (),
    increment: Sequence[str] = (),
    where: str = "true",
) -> list[tuple]:
    """``INSERT INTO t (…) SELECT … FROM v ON CONFLICT …``, one statement for all ``rows``.

    Without ``increment``: ``ON CONFLICT DO NOTHING``; ``returning`` then gives the named
    columns of the rows really inserted (PostgreSQL, and SQLite ≥ 3.35). With ``increment``:
    ``ON CONFLICT (conflict) DO UPDATE`` adding the new values to those columns (counters);
    ``returning`` then gives the rows inserted or added to. ``where`` keeps only the new
    rows ``v`` it holds for (SQLite's ``INSERT … SELECT … ON CONFLICT`` needs a WHERE to
    parse: "true" by default). Rows are inserted in the given order, so callers that upsert
    counters pass them sorted by key: two workers then lock overlapping keys in the same
    order and never deadlock.
    """
    rows = list(rows)
    if not rows:
        return []
    defaults = _defaults(model, fields)
    columns = _model_columns(model, fields) + [(f.column, f) for f, _ in defaults]
    if defaults:
        constant = tuple(value for _, value in defaults)
        rows = [(*row, *constant) for row in rows]
    source, param = recordset(columns, rows)
    names = ", ".join(quote(name) for name, _ in columns)
    picks = ", ".join(f"v.{quote(name)}" for name, _ in columns)
    target = table(model)
    if increment:
        sets = ", ".join(
            f"{column(model, n)} = {target}.{column(model, n)} + excluded.{column(model, n)}"
            for n in increment
        )
        keys = ", ".join(column(model, n) for n in conflict)
        on_conflict = f"ON CONFLICT ({keys}) DO UPDATE SET {sets}"
    else:
        on_conflict = "ON CONFLICT DO NOTHING"
    sql = f"INSERT INTO {target} ({names}) SELECT {picks} FROM {source} WHERE {where} {on_conflict}"  # noqa: S608
    if returning:
        sql += " RETURNING " + ", ".join(column(model, n) for n in returning)
    with connection.cursor() as cursor:
        cursor.execute(sql, [param])
        return cursor.fetchall() if returning else []


def rows_update(
    model: type[Model],
    fields: Sequence[str],
    rows: Iterable[Sequence],
    *,
    extra: Sequence[tuple[str, str]] = (),
    extra_params: Sequence[Any] = (),
    where: str = "",
    where_params: Sequence[Any] = (),
) -> int:
    """``UPDATE t SET col = v.col, … FROM v WHERE t.pk = v.pk``: one statement for all rows.

    ``fields[0]`` is the key (the primary key); each row holds one value per field.
    ``extra`` adds (column, SQL expression) assignments (``v.<column>`` may appear in
    them) with ``extra_params``; ``where`` narrows the rows written. Returns the rows
    written. (Django's ``bulk_update`` is one CASE expression per field: quadratic on
    PostgreSQL and chunked by 999 variables on SQLite.)
    """
    rows = list(rows)
    if not rows:
        return 0
    columns = _model_columns(model, fields)
    source, param = recordset(columns, rows)
    target = table(model)
    key = quote(columns[0][0])
    sets = [f"{quote(name)} = v.{quote(name)}" for name, _ in columns[1:]]
    sets += [f"{column(model, name)} = {expression}" for name, expression in extra]
    condition = f"{target}.{key} = v.{key}" + (f" AND {where}" if where else "")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {target} SET {', '.join(sets)} FROM {source} WHERE {condition}",  # noqa: S608
            [*extra_params, param, *where_params],
        )
        return cursor.rowcount


def rows_where_in(model: type[Model], columns: Sequence[str], **keys: Iterable) -> list[tuple]:
    """``columns`` of the rows whose ``key`` is one of its (text) values, for any of ``keys``.

    One query: ``… WHERE key IN (keys) UNION …`` (UNION rather than OR: an OR of two
    key sets makes PostgreSQL's planner scan the table). Keys without values are skipped.
    """
    select = f"SELECT {', '.join(column(model, c) for c in columns)} FROM {table(model)}"  # noqa: S608
    parts, params = [], []
    for key, values in keys.items():
        values = list(values)
        if values:
            subquery = keys_in(values)
            parts.append(f"{select} WHERE {column(model, key)} IN ({subquery.sql})")
            params.extend(subquery.params)
    if not parts:
        return []
    with connection.cursor() as cursor:
        cursor.execute(" UNION ".join(parts), params)
        return cursor.fetchall()
