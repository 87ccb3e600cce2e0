"""Database reads and writes of one claim: a fixed number of queries whatever its size.

Lookups are one query per kind; inserts are bulk and conflict tolerant (reprocessing a row
never duplicates its outputs, two workers never create the same enduser twice); the inbox
rows get their outcomes in one bulk update.

On PostgreSQL the hot path skips the ORM: lookups are ``= ANY(%s)`` with one array
parameter (an ``IN`` list of a thousand placeholders costs more to bind than to run), and
inserts / updates read their rows from one JSON parameter (``… FROM json_to_recordset(%s)``)
through a raw cursor, one statement each, without building model instances. SQLite keeps
the ORM path.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import orjson
from django.db import connection
from django.db.models import Model, Q

from integrations.models import IntegrationSettings, MetricDefinition
from planhat_segment.models import Asset, Company, CompanyDomain, EndUser, Project
from usage.models import Activity, InboxEvent, InboxStatus, MetricValue

from .matching import (
    PROFILE_FIELDS,
    ActivitySpec,
    Lookups,
    MetricValueSpec,
    Outcome,
    Rules,
    UserRef,
)
from .parse import EventFacts, email_domain, facts_of

_USER_COLUMNS = ("pk", "company_id", "external_id", "email", *PROFILE_FIELDS)


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def rules_load(integration: IntegrationSettings) -> Rules:
    return Rules(
        user_tracking=integration.user_tracking_enabled,
        company_metrics=integration.company_metrics_enabled,
        create_endusers=integration.create_endusers,
        match_by_email_domain=integration.match_by_email_domain,
        unassigned_wait_hours=integration.unassigned_wait_hours,
    )


def _table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_us(column: str) -> str:
    """SQL for a timestamptz column as whole microseconds since the epoch (exact: numeric).

    Raw claim rows carry times this way: a Python integer sum is several times cheaper than
    the ORM connection's timestamptz text loader, and processing reads two per row.
    """
    return f"(extract(epoch FROM {column}) * 1000000)::bigint"


def _when(value: datetime | int | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return _EPOCH + timedelta(microseconds=value)


def claimed_events_of(rows: Iterable[tuple]) -> list[EventFacts]:
    """Facts of claimed rows: (id, message id, type, payload, received at, occurred at,
    attempts). Raw SQL gives the payload as JSON text and times as ``epoch_us``; the ORM
    gives them decoded."""
    return [
        facts_of(
            row_id=row_id,
            message_id=message_id,
            type_=type_,
            # ``json``, as the ORM's JSONField decodes: orjson would turn integers past 64
            # bits into floats (and is no faster here once that is guarded against).
            payload=json.loads(payload) if isinstance(payload, str | bytes) else payload,
            received_at=_when(received_at),
            occurred_at=_when(occurred_at),
            attempts=attempts,
        )
        for row_id, message_id, type_, payload, received_at, occurred_at, attempts in rows
    ]


def claimed_events_load(*, claim_id: UUID) -> list[EventFacts]:
    """The rows of a leased claim (SQLite), read once (values, not model instances)."""
    rows = InboxEvent.objects.filter(claim_id=claim_id, status=InboxStatus.PROCESSING).values_list(
        "id", "message_id", "type", "payload", "received_at", "occurred_at", "attempts"
    )
    return claimed_events_of(rows)


def _user_ref(values: tuple) -> UserRef:
    pk, company_id, external_id, email, name, first_name, last_name, title = values
    return UserRef(
        pk=pk,
        company_id=company_id,
        external_id=external_id,
        email=email.lower() if email else None,
        name=name,
        first_name=first_name,
        last_name=last_name,
        title=title,
    )


def _rows_where_in(model: type[Model], columns: Sequence[str], **keys: Iterable) -> list[tuple]:
    """``columns`` of the rows whose ``key`` is one of its values, for any of ``keys``.

    One query. PostgreSQL: ``… WHERE key = ANY(%s) UNION …`` with the values as one array
    parameter each; elsewhere the ORM's ``__in``. Columns are field names (``pk`` and
    ``<fk>_id`` work on both paths).
    """
    if not _is_postgres():
        match = Q()
        for key, values in keys.items():
            match |= Q(**{f"{key}__in": values})
        return list(model.objects.filter(match).values_list(*columns))
    meta = model._meta
    quote = connection.ops.quote_name

    def column(name: str) -> str:
        field = meta.pk if name == "pk" else meta.get_field(name)
        return quote(field.column)

    select = f"SELECT {', '.join(column(c) for c in columns)} FROM {_table(model)}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(
            # UNION rather than OR: an OR of two ANY() makes the planner scan the table.
            " UNION ".join(f"{select} WHERE {column(key)} = ANY(%s)" for key in keys),
            [list(values) for values in keys.values()],
        )
        return cursor.fetchall()


def lookups_load(*, events: list[EventFacts], rules: Rules) -> Lookups:
    """Everything matching needs, one query per kind (skipped when there is nothing to ask)."""
    company_keys = {e.company_key for e in events if e.company_key}
    user_keys = {e.user_key for e in events if e.user_key}
    emails = {e.email_key for e in events if e.email_key}
    asset_keys = {e.asset_key for e in events if e.asset_key}
    project_keys = {e.project_key for e in events if e.project_key}
    lookups = Lookups()
    if company_keys:
        lookups.companies = dict(
            _rows_where_in(Company, ("external_id", "pk"), external_id=company_keys)
        )
    domains = {email_domain(e.email_key) for e in events if e.email_key and not e.company_key}
    domains.discard(None)
    if rules.match_by_email_domain and domains:
        lookups.domains = dict(
            _rows_where_in(CompanyDomain, ("domain", "company_id"), domain=domains)
        )
    if user_keys or emails:
        # One query for both: external ids and normalised emails are each unique, so every
        # key maps to one row whichever way the row was found.
        for values in _rows_where_in(
            EndUser, _USER_COLUMNS, external_id=user_keys, email_normalized=emails
        ):
            lookups.user_register(_user_ref(values))
    if asset_keys:
        lookups.assets = dict(_rows_where_in(Asset, ("external_id", "pk"), external_id=asset_keys))
    if project_keys:
        lookups.projects = dict(
            _rows_where_in(Project, ("external_id", "pk"), external_id=project_keys)
        )
    if any(e.type == "group" for e in events):
        lookups.metrics = dict(
            MetricDefinition.objects.filter(archived_at__isnull=True).values_list("key", "pk")
        )
    return lookups


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _recordset(columns: Sequence[tuple[str, str]], rows: Iterable[tuple]) -> tuple[str, str]:
    """PostgreSQL: rows as one JSON parameter, and the ``FROM`` item that reads them back.

    ``json_to_recordset(%s::json) AS v(col type, …)``: orjson writes the whole batch in one
    C call and the server parses it in one go, where a dozen array parameters cost a Python
    loop per element to quote (Django's psycopg cursor binds on the client).
    """
    names = [name for name, _ in columns]
    records = [dict(zip(names, row, strict=True)) for row in rows]
    try:
        text = orjson.dumps(records).decode()
    except TypeError:  # orjson.JSONEncodeError: an integer past 64 bits in some properties
        text = json.dumps(records, default=_iso)
    kinds = ", ".join(f"{name} {kind}" for name, kind in columns)
    return f"json_to_recordset(%s::json) AS v({kinds})", text


def _insert_records(
    model: type[Model], columns: Sequence[tuple[str, str]], rows: Iterable[tuple], *, constant=()
) -> None:
    """PostgreSQL: ``INSERT … SELECT … FROM json_to_recordset(%s) ON CONFLICT DO NOTHING``.

    ``columns`` are (column, SQL type) pairs matching each row's values; ``constant`` adds
    (column, SQL expression) pairs computed by the server for every row.
    """
    names = [name for name, _ in columns]
    select = [f"v.{name}" for name in names]
    for name, expression in constant:
        names.append(name)
        select.append(expression)
    source, param = _recordset(columns, rows)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_table(model)} ({', '.join(names)})"  # noqa: S608 — our own names
            f" SELECT {', '.join(select)} FROM {source} ON CONFLICT DO NOTHING",
            [param],
        )


def endusers_create(*, users: list[UserRef], now: datetime) -> list[UserRef]:
    """Insert planned endusers, tolerating conflicts, and bind each plan to the stored row.

    ON CONFLICT DO NOTHING then a re-read by external id and email: when another worker
    created the same enduser first, we bind to its row instead of creating a second one.
    Returns the plans that could not be bound (deleted meanwhile; their events fail).
    """
    if not users:
        return []
    # A stable order keeps two workers inserting overlapping sets from deadlocking.
    users = sorted(users, key=lambda u: (u.external_id or "", u.email or ""))
    ext_ids = [u.external_id for u in users if u.external_id]
    emails = [u.email for u in users if u.email]
    if _is_postgres():
        _insert_records(
            EndUser,
            (
                ("company_id", "bigint"),
                ("external_id", "text"),
                ("email", "text"),
                ("name", "text"),
                ("first_name", "text"),
                ("last_name", "text"),
                ("title", "text"),
                ("created_at", "timestamptz"),
            ),
            [
                (
                    u.company_id,
                    u.external_id,
                    u.email,
                    u.name,
                    u.first_name,
                    u.last_name,
                    u.title,
                    now,
                )
                for u in users
            ],
            constant=(
                ("email_normalized", "v.email"),
                ("updated_at", "v.created_at"),
                ("source", f"'{EndUser.Source.SEGMENT.value}'"),
                ("custom", "'{}'::jsonb"),
                ("is_test", "false"),
            ),
        )
    else:
        EndUser.objects.bulk_create(
            [
                EndUser(
                    company_id=u.company_id,
                    external_id=u.external_id,
                    email=u.email,
                    email_normalized=u.email,
                    name=u.name,
                    first_name=u.first_name,
                    last_name=u.last_name,
                    title=u.title,
                    source=EndUser.Source.SEGMENT,
                    created_at=now,
                    updated_at=now,
                )
                for u in users
            ],
            ignore_conflicts=True,
        )
    stored = _rows_where_in(
        EndUser,
        ("pk", "company_id", "external_id", "email_normalized"),
        external_id=ext_ids,
        email_normalized=emails,
    )
    by_ext = {ext: (pk, company) for pk, company, ext, _ in stored if ext}
    by_email = {email: (pk, company) for pk, company, _, email in stored if email}
    unbound = []
    for user in users:
        hit = by_ext.get(user.external_id) if user.external_id else None
        hit = hit or (by_email.get(user.email) if user.email else None)
        if hit is None:
            unbound.append(user)
            continue
        user.pk, user.company_id = hit
    return unbound


def endusers_fill(*, users: list[UserRef], now: datetime) -> None:
    """Write the empty fields identify filled in (never a set one), and ``updated_at``."""
    if not users:
        return
    fields = sorted({name for u in users for name in u.changed})
    # Only the fields some user changed; for the others their current value is re-written,
    # which is the value we read moments ago inside the same transaction.
    if _is_postgres():
        sets = [f"{name} = v.{name}" for name in fields]
        if "email" in fields:
            sets.append("email_normalized = v.email")
        sets.append("updated_at = %s")
        table = _table(EndUser)
        # In pk order, so two workers filling overlapping users lock them in the same order.
        source, param = _recordset(
            [("id", "bigint"), *((name, "text") for name in fields)],
            sorted((u.pk, *(getattr(u, name) for name in fields)) for u in users),
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET {', '.join(sets)}"  # noqa: S608 — our own names
                f" FROM {source} WHERE {table}.id = v.id",
                [now, param],
            )
        return
    objs = []
    for user in users:
        obj = EndUser(pk=user.pk, updated_at=now)
        for name in fields:
            value = getattr(user, name)
            setattr(obj, name, value)
        if "email" in fields:
            obj.email_normalized = user.email
        objs.append(obj)
    update_fields = [*fields, "updated_at"]
    if "email" in fields:
        update_fields.append("email_normalized")
    EndUser.objects.bulk_update(objs, update_fields)


def activities_write(*, specs: list[ActivitySpec]) -> None:
    """Insert activities; a message id already stored is skipped (unique constraint)."""
    specs = [s for s in specs if s.user.pk is not None]
    if not specs:
        return
    if _is_postgres():
        _insert_records(
            Activity,
            (
                ("enduser_id", "bigint"),
                ("company_id", "bigint"),
                ("asset_id", "bigint"),
                ("project_id", "bigint"),
                ("action", "text"),
                ("count", "int"),
                ("occurred_at", "timestamptz"),
                ("received_at", "timestamptz"),
                ("properties", "jsonb"),
                ("message_id", "text"),
            ),
            [
                (
                    s.user.pk,
                    s.user.company_id,
                    s.asset_id,
                    s.project_id,
                    s.action,
                    s.count,
                    s.occurred_at,
                    s.received_at,
                    s.properties,
                    s.message_id,
                )
                for s in specs
            ],
        )
        return
    Activity.objects.bulk_create(
        [
            Activity(
                enduser_id=s.user.pk,
                company_id=s.user.company_id,
                asset_id=s.asset_id,
                project_id=s.project_id,
                action=s.action,
                count=s.count,
                occurred_at=s.occurred_at,
                received_at=s.received_at,
                properties=s.properties,
                message_id=s.message_id,
            )
            for s in specs
        ],
        ignore_conflicts=True,
    )


def metric_values_write(*, specs: list[MetricValueSpec]) -> None:
    """Insert metric values; (message id, metric) already stored is skipped."""
    if not specs:
        return
    if _is_postgres():
        _insert_records(
            MetricValue,
            (
                ("company_id", "bigint"),
                ("metric_id", "bigint"),
                ("value", "float8"),
                ("occurred_at", "timestamptz"),
                ("message_id", "text"),
            ),
            [(s.company_id, s.metric_id, s.value, s.occurred_at, s.message_id) for s in specs],
        )
        return
    MetricValue.objects.bulk_create(
        [
            MetricValue(
                company_id=s.company_id,
                metric_id=s.metric_id,
                value=s.value,
                occurred_at=s.occurred_at,
                message_id=s.message_id,
            )
            for s in specs
        ],
        ignore_conflicts=True,
    )


_OUTCOME_COLUMNS = (
    ("id", "bigint"),
    ("status", "text"),
    ("reason", "text"),
    ("detail", "text"),
    ("user_key", "text"),
    ("email_key", "text"),
    ("company_key", "text"),
    ("enduser_id", "bigint"),
    ("wait_until", "timestamptz"),
    ("processed_at", "timestamptz"),
    ("attempts", "int"),
    ("next_attempt_at", "timestamptz"),
)
# SQLite allows 32,766 variables per statement (DESIGN.md §7): rows per UPDATE, with margin.
_SQLITE_ROWS_PER_UPDATE = 2000


def retry_delay(attempts_before: int, *, base: int, cap: int) -> timedelta:
    """Exponential backoff: base, 2×base, 4×base, … capped."""
    return timedelta(seconds=min(base * 2 ** min(attempts_before, 30), cap))


def inbox_outcomes_write(
    *,
    claim_id: UUID | None,
    events: list[EventFacts],
    outcomes: dict[int, Outcome],
    now: datetime,
    backoff_base: int,
    backoff_max: int,
) -> None:
    """One bulk UPDATE of the claim's rows: outcome, identity keys, enduser, attempts.

    Only rows still held by this claim are written. ``claim_id`` None (PostgreSQL): the
    caller's transaction holds the rows' locks, and rows still ``pending`` are written.
    Otherwise (SQLite's lease) rows still carrying the claim id: a row whose lease lapsed and
    that another worker re-claimed is that worker's to finish. (Django's ``bulk_update`` would be one
    CASE expression per field, quadratic on PostgreSQL and chunked by 999 variables on
    SQLite; this is a single linear statement on both.)
    """
    values = []
    for facts in events:
        outcome = outcomes[facts.row_id]
        failed = outcome.status == InboxStatus.FAILED
        finished = not failed and outcome.status != InboxStatus.WAITING
        values.append(
            (
                facts.row_id,
                str(outcome.status),
                str(outcome.reason),
                outcome.detail,
                facts.user_key,
                facts.email_key,
                facts.company_key,
                outcome.user.pk if outcome.user is not None else None,
                outcome.wait_until,
                now if finished else None,
                facts.attempts + 1 if failed else facts.attempts,
                now + retry_delay(facts.attempts, base=backoff_base, cap=backoff_max)
                if failed
                else None,
            )
        )
    if not values:
        return
    table = connection.ops.quote_name(InboxEvent._meta.db_table)
    names = [name for name, _ in _OUTCOME_COLUMNS]
    set_clause = ", ".join(f"{n} = v.{n}" for n in names[1:])
    if claim_id is None:
        where, held = f"{table}.id = v.id AND {table}.status = %s", str(InboxStatus.PENDING)
    else:
        set_clause += ", claim_id = NULL, claimed_until = NULL"
        # Django stores UUIDs on SQLite as 32 hex characters.
        where, held = f"{table}.id = v.id AND {table}.claim_id = %s", claim_id
        if not _is_postgres():
            held = claim_id.hex
    with connection.cursor() as cursor:
        if _is_postgres():
            source, param = _recordset(_OUTCOME_COLUMNS, values)
            cursor.execute(
                f"UPDATE {table} SET {set_clause} "  # noqa: S608 — our own names only
                f"FROM {source} WHERE {where}",
                [param, held],
            )
            return
        adapt = connection.ops.adapt_datetimefield_value
        row_sql = "(" + ", ".join(["%s"] * len(names)) + ")"
        for start in range(0, len(values), _SQLITE_ROWS_PER_UPDATE):
            chunk = values[start : start + _SQLITE_ROWS_PER_UPDATE]
            params = [adapt(v) if isinstance(v, datetime) else v for row in chunk for v in row]
            values_sql = ", ".join([row_sql] * len(chunk))
            cursor.execute(
                f"WITH v({', '.join(names)}) AS (VALUES {values_sql}) "  # noqa: S608 — our names
                f"UPDATE {table} SET {set_clause} FROM v WHERE {where}",
                [*params, held],
            )


def waiting_requeue(*, user_keys: Iterable[str], emails: Iterable[str]) -> int:
    """Put waiting rows of these users back to pending (their user is now known)."""
    user_keys = sorted(set(user_keys))
    emails = sorted(set(emails))
    if not user_keys and not emails:
        return 0
    if _is_postgres():
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {_table(InboxEvent)} SET status = %s, wait_until = NULL,"  # noqa: S608
                " next_attempt_at = NULL"
                " WHERE status = %s AND (user_key = ANY(%s) OR email_key = ANY(%s))",
                [str(InboxStatus.PENDING), str(InboxStatus.WAITING), user_keys, emails],
            )
            return cursor.rowcount
    return (
        InboxEvent.objects.filter(status=InboxStatus.WAITING)
        .filter(Q(user_key__in=user_keys) | Q(email_key__in=emails))
        .update(status=InboxStatus.PENDING, wait_until=None, next_attempt_at=None)
    )
