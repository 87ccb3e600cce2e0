"""A real Celery worker on Redis and PostgreSQL: HTTP in, data out, and faults.

The worker runs in a thread (``start_worker``, solo pool) and consumes the ``ingest`` queue
from Redis database 3; events arrive over HTTP through the ingest endpoint, which nudges
``usage.drain_inbox`` after commit. Tests poll the database for the outcome.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import connection, connections

from integrations.models import MetricDefinition
from integrations.services import integration_ensure
from planhat_segment.models import Company, EndUser, Project
from tests.conftest import load_fixture
from tests.usage.processing_support import inbox_rows
from usage.models import Activity, InboxEvent, InboxStatus, MetricValue
from usage.processing import write
from usage.services import inbox_drain, inbox_events_reprocess

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

OPEN = (InboxStatus.PENDING, InboxStatus.PROCESSING)


@pytest.fixture
def worker():
    from planhat_segment.celery import app

    # Worker-thread connections must close after each task, or the test database cannot be
    # flushed and dropped at the end.
    connections.settings["default"]["CONN_MAX_AGE"] = 0
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("ingest")
    with start_worker(
        app,
        queues=["ingest"],
        perform_ping_check=False,
        pool="solo",
        loglevel="WARNING",
        shutdown_timeout=20,
    ):
        yield app


@pytest.fixture
def ingest_auth(db):
    from usage.ingest.auth import integration_cache_clear

    integration_cache_clear()
    token = integration_ensure().tenant_token
    return "Basic " + base64.b64encode(f"{token}:".encode()).decode()


def post(client, auth, path, body):
    response = client.post(
        path, data=json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=auth
    )
    assert response.status_code == 200, response.content
    return response.json()


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(
        f"timed out; inbox: {list(InboxEvent.objects.values_list('message_id', 'status', 'detail'))}"
    )


def settled():
    return not InboxEvent.objects.filter(status__in=OPEN).exists()


def test_worker_turns_http_posts_into_data(worker, client, ingest_auth):
    acme = Company.objects.create(external_id="ACME-001", name="Acme")
    globex = Company.objects.create(external_id="GLOBEX", name="Globex")
    Company.objects.create(external_id="INITECH", name="Initech")
    Project.objects.create(company=globex, external_id="PRJ-9", name="P9")
    for key in ("active_users", "storage_gb", "nps", "seats"):
        MetricDefinition.objects.create(key=key)

    for name in ("identify.json", "track.json", "page.json", "group.json"):
        assert post(client, ingest_auth, "/dock/segment", load_fixture(name))["accepted"] == 1
    post(client, ingest_auth, "/v1/batch", load_fixture("tracking_api_batch.json"))
    post(client, ingest_auth, "/dock/segment", load_fixture("webhook_batch.json"))

    wait_for(lambda: settled() and InboxEvent.objects.count() == 11)

    peter = EndUser.objects.get(external_id="97980cfea0067")
    assert peter.company == acme
    assert set(Activity.objects.filter(enduser=peter).values_list("action", flat=True)) == {
        "Report Downloaded",
        "Viewed Getting Started",
    }
    assert Activity.objects.get(message_id="b-3").count == 3
    values = {
        (v.company.external_id, v.metric.key): v.value
        for v in MetricValue.objects.select_related("company", "metric")
    }
    assert values == {
        ("ACME-001", "active_users"): 42.0,
        ("ACME-001", "storage_gb"): 12.5,
        ("GLOBEX", "active_users"): 17.0,
        ("GLOBEX", "seats"): 25.0,
    }
    reasons = dict(InboxEvent.objects.values_list("message_id", "reason"))
    assert reasons["wh-2"] == "no_identity"
    assert InboxEvent.objects.get(message_id="wh-3").status == InboxStatus.WAITING
    assert EndUser.objects.get(external_id="u-300").company.external_id == "INITECH"


def test_worker_binds_a_track_once_its_identify_arrives_later(worker, client, ingest_auth):
    Company.objects.create(external_id="ACME", name="Acme")
    post(
        client,
        ingest_auth,
        "/v1/track",
        {"userId": "u-late", "event": "Early", "messageId": "early"},
    )
    wait_for(lambda: InboxEvent.objects.filter(message_id="early", status="waiting").exists())

    post(
        client,
        ingest_auth,
        "/v1/identify",
        {"userId": "u-late", "messageId": "ident", "traits": {"company_id": "ACME"}},
    )

    wait_for(lambda: InboxEvent.objects.filter(message_id="early", status="processed").exists())
    assert Activity.objects.get(message_id="early").enduser.external_id == "u-late"


def test_worker_reprocessing_a_claim_twice_never_duplicates(worker, client, ingest_auth):
    Company.objects.create(external_id="GLOBEX", name="Globex")
    MetricDefinition.objects.create(key="seats")
    post(client, ingest_auth, "/v1/batch", load_fixture("tracking_api_batch.json"))
    wait_for(lambda: settled() and InboxEvent.objects.count() == 4)
    counts = (Activity.objects.count(), MetricValue.objects.count(), EndUser.objects.count())

    inbox_events_reprocess(ids=InboxEvent.objects.values_list("pk", flat=True))  # nudges
    wait_for(lambda: settled() and InboxEvent.objects.filter(status="processed").count() == 4)

    assert (
        (Activity.objects.count(), MetricValue.objects.count(), EndUser.objects.count())
        == counts
        == (2, 1, 1)
    )


def test_worker_failing_midway_is_retried_by_the_sweeper(
    worker, client, ingest_auth, monkeypatch, settings
):
    settings.USAGE_RETRY_BACKOFF_SECONDS = 0
    Company.objects.create(external_id="GLOBEX", name="Globex")
    real_write = write.metric_values_write
    failures = []

    def fails_once(**kwargs):  # activities are already written when this raises
        if not failures:
            failures.append(1)
            raise ConnectionError("metric store went away")
        return real_write(**kwargs)

    monkeypatch.setattr(write, "metric_values_write", fails_once)
    MetricDefinition.objects.create(key="seats")
    post(client, ingest_auth, "/v1/batch", load_fixture("tracking_api_batch.json"))
    wait_for(lambda: InboxEvent.objects.filter(status="failed").count() == 4)
    assert "metric store went away" in InboxEvent.objects.first().detail
    assert not Activity.objects.exists()  # the failed claim left nothing half-written

    worker.send_task("usage.sweep_inbox", queue="ingest")
    wait_for(lambda: InboxEvent.objects.filter(status="processed").count() == 4)

    assert Activity.objects.count() == 2
    assert MetricValue.objects.count() == 1
    assert set(InboxEvent.objects.values_list("attempts", flat=True)) == {1}


def test_two_concurrent_drains_create_each_enduser_once(db):
    Company.objects.create(external_id="ACME", name="Acme")
    users = [f"u-{i}" for i in range(25)]
    for r in range(40):
        request = uuid.uuid4()
        inbox_rows(
            [
                {
                    "type": "track",
                    "messageId": f"r{r}-{u}",
                    "userId": u,
                    "event": "E",
                    "context": {"groupId": "ACME", "traits": {"email": f"{u}@acme.io"}},
                }
                for u in users
            ],
            request_id=request,
        )
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def drain():
        try:
            barrier.wait()
            inbox_drain(max_seconds=60, batch_size=50)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=drain) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)

    assert errors == []
    assert EndUser.objects.count() == 25
    assert EndUser.objects.filter(email_normalized="u-3@acme.io").count() == 1
    leftover = list(InboxEvent.objects.exclude(status="processed").values_list("status", "detail"))
    assert leftover == []
    assert Activity.objects.count() == 1000
