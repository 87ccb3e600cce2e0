"""Over real HTTP: Segment's own Python SDK against live_server, and gunicorn with chunked bodies."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from segment.analytics import Client

from tests.conftest import uses_redis
from tests.usage.conftest import basic
from usage.models import InboxEvent, InboxStatus

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _sdk_session_closed():
    # The SDK keeps one module-level keep-alive session: close it before live_server stops, or
    # the server's request thread closes SQLite's shared in-memory connection from another
    # thread after the test (noise, not a failure).
    yield
    from segment.analytics import request

    request._session.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("use_gzip", [False, True])
def test_segment_python_sdk_sync_mode_is_stored(live_server, integration, use_gzip):
    errors: list = []
    client = Client(
        write_key=integration.tenant_token,
        host=live_server.url,
        sync_mode=True,
        gzip=use_gzip,
        max_retries=0,
        on_error=lambda exc, batch: errors.append(exc),
    )
    client.identify("u-sdk", {"email": "sdk@example.com", "company_id": "ACME-001"})
    client.track("u-sdk", "Report Downloaded", {"format": "pdf"})
    client.group("u-sdk", "ACME-001", {"active_users": 42})
    assert errors == []
    rows = list(InboxEvent.objects.order_by("id"))
    assert [r.type for r in rows] == ["identify", "track", "group"]
    assert all(r.status == InboxStatus.PENDING for r in rows)
    assert rows[1].payload["event"] == "Report Downloaded"
    assert rows[2].payload["groupId"] == "ACME-001"
    # The SDK puts writeKey in the body as well as in Basic auth: never stored.
    assert all("writeKey" not in r.payload for r in rows)
    assert rows[0].payload["context"]["library"]["name"] == "analytics-python"


@pytest.mark.django_db(transaction=True)
def test_segment_python_sdk_batched_flush_is_one_request(live_server, integration):
    errors: list = []
    client = Client(
        write_key=integration.tenant_token,
        host=live_server.url,
        gzip=True,
        max_retries=0,
        on_error=lambda exc, batch: errors.append(exc),
    )
    for i in range(25):
        client.track(f"u-{i}", "Signed In", {"n": i})
    client.flush()
    client.join()
    assert errors == []
    assert InboxEvent.objects.count() == 25
    assert InboxEvent.objects.values("request_id").distinct().count() <= 2


@pytest.mark.django_db(transaction=True)
def test_segment_python_sdk_with_wrong_key_sees_401(live_server, integration):
    errors: list = []
    client = Client(
        write_key="wrong",
        host=live_server.url,
        sync_mode=True,
        max_retries=0,
        on_error=lambda exc, batch: errors.append(exc),
    )
    with pytest.raises(Exception) as excinfo:  # sync mode raises the SDK's APIError
        client.track("u-1", "Signed In")
    assert getattr(excinfo.value, "status", None) == 401
    assert not InboxEvent.objects.exists()


# --- gunicorn: what production runs ---------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gunicorn_server(transactional_db):
    """gunicorn serving this test database (PostgreSQL) on 127.0.0.1; stopped afterwards."""
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL if uses_redis() else "memory://",
        "INGEST_MAX_BODY_BYTES": "100000",
        "INGEST_SETTINGS_CACHE_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("TEST_DATABASE_NAME", None)
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = db["PASSWORD"]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "planhat_segment.wsgi:application",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "1",
            "-k",
            "gthread",
            "--threads",
            "2",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(proc.stderr.read().decode()[-2000:]) from None
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _post_chunked(port, path, chunks, headers):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=iter(chunks), headers=headers, encode_chunked=True)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.mark.postgres
def test_gunicorn_reads_chunked_bodies_with_the_limit(gunicorn_server, integration):
    headers = {"Authorization": basic(integration.tenant_token), "Content-Type": "text/plain"}
    body = json.dumps(
        [{"type": "track", "userId": "u", "event": "E", "messageId": f"ch-{i}"} for i in range(3)]
    ).encode()
    status, answer = _post_chunked(
        gunicorn_server, "/dock/segment/", [body[:40], body[40:]], headers
    )
    assert status == 200, answer
    assert json.loads(answer) == {
        "accepted": 3,
        "duplicates": 0,
        "rejected": [],
        "rejected_count": 0,
    }
    # A chunked body over the limit (100,000 bytes here) is cut off while reading.
    status, answer = _post_chunked(
        gunicorn_server, "/dock/segment", [b"[" + b" " * 30_000] * 5, headers
    )
    assert status == 413, answer
    # gzip over chunked, to /v1 with a short form.
    gz = gzip.compress(
        json.dumps({"batch": [{"type": "identify", "userId": "u", "messageId": "ch-gz"}]}).encode()
    )
    status, answer = _post_chunked(
        gunicorn_server, "/v1/b", [gz], {**headers, "Content-Encoding": "gzip"}
    )
    assert status == 200, answer
    assert InboxEvent.objects.count() == 4
