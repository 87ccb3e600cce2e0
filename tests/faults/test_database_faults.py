"""A database that hangs, or a statement that cannot finish: ingest answers 503 fast.

Outages go through a TCP proxy the test owns (``tests/faults/proxy.py``) in front of the
machine's PostgreSQL, which is never stopped. The test's own connection is pointed at the
proxy, so the ingest view (called in-process by Django's test client) talks through it.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager

import psycopg
import pytest
from django.db import connection

from integrations.services import integration_ensure
from tests.usage.conftest import basic
from usage.models import InboxEvent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def post(client, token: str, message_id: str):
    body = {"type": "track", "userId": "u-1", "event": "E", "messageId": message_id}
    return client.generic(
        "POST",
        "/v1/track",
        json.dumps(body).encode(),
        content_type="application/json",
        HTTP_AUTHORIZATION=basic(token),
    )


@contextmanager
def through(proxy):
    """The default connection goes through ``proxy`` inside the block, directly after it."""
    saved = {k: connection.settings_dict.get(k) for k in ("HOST", "PORT")}
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(proxy.port))
    try:
        yield
    finally:
        proxy.forward()
        connection.close()
        connection.settings_dict.update(saved)


@pytest.fixture
def token():
    return integration_ensure().tenant_token


@pytest.fixture
def db_proxy(proxy_to):
    settings = connection.settings_dict
    return proxy_to(settings["HOST"] or "127.0.0.1", int(settings["PORT"] or 5432))


def test_database_that_stops_answering_gives_a_fast_503(client, token, db_proxy, settings):
    # Found: with connections accepted and nothing answered, requests hung as long as the
    # database did, then answered 200.
    settings.INGEST_DATABASE_DEADLINE_SECONDS = 1
    settings.INGEST_SETTINGS_CACHE_SECONDS = 60
    with through(db_proxy):
        assert post(client, token, "before").status_code == 200
        db_proxy.hang()
        started = time.monotonic()
        response = post(client, token, "during")
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert response["Retry-After"] == str(settings.INGEST_RETRY_AFTER_SECONDS)
        assert elapsed < 10  # bounded (1 s deadline + the watchdog's tick), not the hang's length
        db_proxy.forward()
        assert post(client, token, "after").status_code == 200
    assert set(InboxEvent.objects.values_list("message_id", flat=True)) == {"before", "after"}


def test_new_connection_to_a_hung_database_is_bounded_by_the_connect_timeout(
    client, token, db_proxy, settings
):
    settings.INGEST_SETTINGS_CACHE_SECONDS = 0
    with through(db_proxy):
        connection.settings_dict["OPTIONS"]["connect_timeout"] = 2
        db_proxy.hang()
        response = post(client, token, "during")
        assert response.status_code == 503
        assert db_proxy.accepted >= 1  # it did try, through the proxy


def test_statement_blocked_in_the_database_is_cut_by_its_own_timeout(client, token, settings):
    # The server answers but the INSERT cannot finish (a lock, a stuck disk): the ingest's
    # SET LOCAL statement_timeout ends it; nothing else of the session is bound by it.
    settings.INGEST_STATEMENT_TIMEOUT_MS = 300
    settings.INGEST_DATABASE_DEADLINE_SECONDS = 30
    post(client, token, "warm")
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    table = InboxEvent._meta.db_table
    with psycopg.connect(**params) as locker:
        locker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        response = post(client, token, "blocked")
        assert response.status_code == 503
        locker.rollback()
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "0"
    assert post(client, token, "after").status_code == 200
    assert set(InboxEvent.objects.values_list("message_id", flat=True)) == {"warm", "after"}
