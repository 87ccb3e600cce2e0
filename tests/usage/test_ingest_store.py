"""inbox_store: one statement per request, dedupe, field coverage, and the query budget."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.models import NOT_PROVIDED

from tests.usage.conftest import basic
from usage.ingest.messages import Message
from usage.ingest.services import _POSTGRES_ONE_SQL, _POSTGRES_SQL, _SQLITE_SQL, inbox_store
from usage.models import InboxEvent, InboxStatus

pytestmark = pytest.mark.django_db


def message(message_id: str, occurred_at: datetime | None = None) -> Message:
    payload = {"type": "track", "userId": "u-1", "event": "E", "messageId": message_id}
    return Message(message_id=message_id, type="track", occurred_at=occurred_at, payload=payload)


def test_inbox_store_writes_pending_rows_of_one_request():
    received = datetime(2026, 11, 5, 12, 0, 0, 250000, tzinfo=UTC)
    occurred = datetime(2026, 11, 5, 11, 0, tzinfo=UTC)
    result = inbox_store(messages=[message("a", occurred), message("b")], received_at=received)
    assert (result.accepted, result.duplicates) == (2, 0)
    rows = {r.message_id: r for r in InboxEvent.objects.all()}
    assert {r.request_id for r in rows.values()} == {result.request_id}
    assert all(r.status == InboxStatus.PENDING and r.attempts == 0 for r in rows.values())
    assert all(r.reason == "" and r.detail == "" for r in rows.values())
    assert rows["a"].occurred_at == occurred
    assert rows["b"].occurred_at == received == rows["b"].received_at
    assert rows["a"].payload == {"type": "track", "userId": "u-1", "event": "E", "messageId": "a"}
    # Rows the ORM writes and rows the raw INSERT writes sort and filter alike.
    assert InboxEvent.objects.filter(occurred_at__lt=received).get().message_id == "a"


def test_inbox_store_counts_existing_and_repeated_ids_as_duplicates():
    now = datetime.now(UTC)
    inbox_store(messages=[message("a")], received_at=now)
    result = inbox_store(messages=[message("a"), message("b"), message("b")], received_at=now)
    assert (result.accepted, result.duplicates) == (1, 2)
    assert InboxEvent.objects.count() == 2


def test_inbox_store_with_nothing_to_store_runs_no_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        result = inbox_store(messages=[], received_at=datetime.now(UTC))
    assert result.accepted == 0


def test_inbox_store_takes_a_batch_over_sqlites_variable_limit_in_one_statement(
    django_assert_num_queries,
):
    # 40,000 rows × 10 columns would be 400,000 variables as a multi-row VALUES.
    messages = [message(f"m-{i}") for i in range(40_000)]
    with django_assert_num_queries(1):
        result = inbox_store(messages=messages, received_at=datetime.now(UTC))
    assert result.accepted == 40_000
    assert InboxEvent.objects.count() == 40_000


def test_insert_sets_every_required_inbox_column():
    # The raw INSERT names its columns: a new NOT NULL column without a database default in
    # usage.models would break ingest at run time; this fails first.
    required = {
        f.column
        for f in InboxEvent._meta.concrete_fields
        if not f.null and not f.primary_key and f.db_default is NOT_PROVIDED
    }
    for sql in (_POSTGRES_SQL, _POSTGRES_ONE_SQL, _SQLITE_SQL):
        columns = sql.split("(", 1)[1].split(")", 1)[0]
        named = {c.strip() for c in columns.split(",")}
        assert required <= named, required - named


def test_endpoint_query_budget_with_warm_settings_cache(client, integration, settings):
    settings.INGEST_SETTINGS_CACHE_SECONDS = 5
    auth = {"HTTP_AUTHORIZATION": basic(integration.tenant_token)}
    batch = [
        {"type": "track", "userId": f"u-{i}", "event": "E", "messageId": f"q-{i}"}
        for i in range(1000)
    ]

    def send(items):
        return client.generic(
            "POST", "/v1/batch", json.dumps({"batch": items}), "application/json", **auth
        )

    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as cold:
        assert send(batch[:1]).status_code == 200
    assert len(cold) <= 2  # the settings row, then the INSERT
    with CaptureQueriesContext(connection) as warm:
        response = send(batch[1:])
    assert response.json()["accepted"] == 999
    assert len(warm) == 1, [q["sql"][:80] for q in warm]
    sql = warm[0]["sql"].lstrip()
    if connection.vendor == "postgresql":
        # The insert's own statement timeout travels in the same round trip (SET LOCAL).
        assert sql.startswith("SET LOCAL statement_timeout")
        sql = sql.split(";", 1)[1].lstrip()
    assert sql.upper().startswith("INSERT")


def test_endpoint_query_budget_pinned(client, integration, django_assert_max_num_queries):
    auth = {"HTTP_AUTHORIZATION": basic(integration.tenant_token)}
    body = json.dumps([{"type": "identify", "userId": f"u-{i}"} for i in range(500)])
    client.generic("POST", "/dock/segment", "[]", "application/json", **auth)  # warms the cache
    with django_assert_max_num_queries(1):
        response = client.generic("POST", "/dock/segment", body, "application/json", **auth)
    assert response.json()["accepted"] == 500


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_database_refusing_the_insert_is_503_and_nothing_is_stored(client, integration):
    """A real refusal: a trigger makes PostgreSQL reject every insert into the inbox."""
    table = InboxEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE OR REPLACE FUNCTION ingest_test_refuse() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'disk full (test)' USING ERRCODE = '53100'; END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            f"CREATE TRIGGER ingest_test_refuse BEFORE INSERT ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION ingest_test_refuse()"
        )
    try:
        auth = {"HTTP_AUTHORIZATION": basic(integration.tenant_token)}
        body = json.dumps({"type": "track", "userId": "u", "event": "E", "messageId": "x"})
        response = client.generic("POST", "/dock/segment", body, "application/json", **auth)
        assert response.status_code == 503
        assert int(response["Retry-After"]) > 0
        assert response.json()["error"] == "unavailable"
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER IF EXISTS ingest_test_refuse ON {table}")
            cursor.execute("DROP FUNCTION IF EXISTS ingest_test_refuse()")
    assert not InboxEvent.objects.exists()
    # The same request succeeds once the database takes writes again (Segment's retry).
    response = client.generic("POST", "/dock/segment", body, "application/json", **auth)
    assert response.json()["accepted"] == 1
