"""Recovery after an outage: the mechanisms that resume draining within seconds.

Found: after Redis came back, after a worker was killed and restarted, and after PostgreSQL
came back, rows waited 2-3 minutes for the beat sweeper. Outages here go through a TCP proxy
the test owns (never the machine's shared PostgreSQL or Redis). The recovery times
themselves are measured by ``scripts/fault_recovery.py`` (README, "Recovery"), not here.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from celery.signals import task_retry
from django.db import connection, connections
from django.utils import timezone

from planhat_segment.models import Company
from tests.production.support import (
    postgres_test_database_url,
    process_env,
    start,
    stop,
    suite_redis_url,
)
from tests.usage.processing_support import inbox_rows
from usage.ingest.nudge import Nudger
from usage.models import InboxEvent, InboxStatus
from usage.recovery import DrainOnReconnect, inbox_sweep_follow_up

OPEN = (InboxStatus.PENDING, InboxStatus.PROCESSING)


def pending_rows(n: int = 3, **kwargs) -> None:
    Company.objects.create(external_id="ACME", name="Acme")
    inbox_rows(
        [
            {"type": "track", "userId": f"u-{i}", "event": "E", "messageId": f"m-{i}"}
            | {"context": {"groupId": "ACME"}}
            for i in range(n)
        ],
        **kwargs,
    )


def wait_for(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(
        f"{what} not reached; inbox: {list(InboxEvent.objects.values_list('message_id', 'status'))}"
    )


def drained() -> bool:
    return InboxEvent.objects.exists() and not InboxEvent.objects.filter(status__in=OPEN).exists()


# --- the nudger: retried until the broker is back, logged once per outage ----------------------


class FlakyBroker:
    """The edge of the world: a broker that refuses ``failures`` publishes, then takes them."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent = 0
        self.calls = 0

    def send_task(self, *args, **kwargs) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionRefusedError("broker down")
        self.sent += 1


def test_nudger_retries_until_the_broker_takes_it_and_logs_once_per_outage(caplog):
    broker = FlakyBroker(failures=3)
    nudger = Nudger(interval=0.05, app=broker)
    with caplog.at_level(logging.DEBUG, logger="usage.ingest.nudge"):
        nudger.nudge()  # one request during the outage, none after it
        deadline = time.monotonic() + 30
        while broker.sent == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert broker.sent == 1 and broker.calls == 4
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert messages.count("ingest_nudge_failed") == 1
    assert messages.count("ingest_nudge_recovered") == 1
    assert nudger.failing == 0


# --- the sweep: sooner while rows are pending --------------------------------------------------


@pytest.mark.django_db
def test_sweep_drains_rows_left_pending_and_asks_to_run_again_while_some_remain(settings):
    settings.USAGE_SWEEP_SOON_SECONDS = 10
    settings.USAGE_SWEEP_FOLLOW_UPS = 5
    old = timezone.now() - timedelta(seconds=30)
    pending_rows(2, received_at=old)  # their nudge was lost
    # A row not due yet (a retry's backoff) stays pending after the drain.
    later = inbox_rows([{"type": "track", "userId": "x", "event": "E", "messageId": "later"}])
    InboxEvent.objects.filter(pk=later[0].pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5)
    )
    assert inbox_sweep_follow_up(follow_up=0) is True
    assert InboxEvent.objects.filter(status="processed").count() == 2
    assert inbox_sweep_follow_up(follow_up=5) is False  # the chain ends before the next beat
    InboxEvent.objects.filter(message_id="later").delete()
    assert inbox_sweep_follow_up(follow_up=0) is False  # nothing pending: no follow-up


@pytest.mark.django_db
def test_fresh_pending_rows_are_left_to_their_nudge(settings):
    settings.USAGE_SWEEP_SOON_SECONDS = 10
    pending_rows(1)
    inbox_sweep_follow_up(follow_up=0)
    assert InboxEvent.objects.get().status == InboxStatus.PENDING


# --- real workers -------------------------------------------------------------------------------


@pytest.fixture
def short_lived_connections():
    # Worker-thread connections must close after each task, or the test database cannot be
    # flushed and dropped at the end.
    saved = connections.settings["default"]["CONN_MAX_AGE"]
    connections.settings["default"]["CONN_MAX_AGE"] = 0
    yield
    connections.settings["default"]["CONN_MAX_AGE"] = saved


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_worker_that_becomes_ready_drains_what_waited(tmp_path):
    # Rows a killed worker held (or stored while no worker ran) are pending; no nudge and no
    # beat will come. The restarted worker drains them because it became ready.
    pending_rows(3)
    broker = suite_redis_url()
    env = process_env(DATABASE_URL=postgres_test_database_url(), CELERY_BROKER_URL=broker)
    log = tmp_path / "worker.log"
    proc = start(
        [
            "celery",
            "-A",
            "planhat_segment",
            "worker",
            "-Q",
            "ingest",
            "-n",
            "faults-ready@%h",
            "-P",
            "solo",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "INFO",
        ],
        env={**env, "PATH": f"{process_env()['VENV']}/bin:{env.get('PATH', '')}"},
        log=log,
    )
    try:
        wait_for(drained, what="drained by the worker that became ready")
    finally:
        stop(proc)
    assert "usage_drain_requested" in log.read_text()
    assert InboxEvent.objects.filter(status="processed").count() == 3


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_worker_whose_broker_comes_back_drains_what_waited(proxy_to, short_lived_connections):
    # The step is the project app's (usage.recovery registers it); a worker of its own app
    # here, so that only this worker goes through the proxy.
    from planhat_segment.celery import app as project

    assert DrainOnReconnect in project.steps["consumer"]
    from django.conf import settings

    redis = urlsplit(settings.CELERY_BROKER_URL)
    proxy = proxy_to(redis.hostname, redis.port or 6379)
    through = f"redis://127.0.0.1:{proxy.port}{redis.path or ''}"
    app = Celery("faults-reconnect", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.broker_url = app.conf.broker_read_url = app.conf.broker_write_url = through
    app.steps["consumer"].add(DrainOnReconnect)
    app.autodiscover_tasks(["usage"], force=True)
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("ingest")
    with start_worker(
        app, queues=["ingest"], perform_ping_check=False, pool="solo", loglevel="WARNING"
    ):
        # Stored while the broker was away: their nudges were lost.
        proxy.drop()
        pending_rows(3)
        time.sleep(3)  # the worker notices the lost connection and starts reconnecting
        proxy.forward()
        wait_for(drained, what="drained after the broker came back")
    assert InboxEvent.objects.filter(status="processed").count() == 3


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_drain_that_meets_a_database_outage_is_retried_until_it_is_back(
    proxy_to, short_lived_connections
):
    from planhat_segment.celery import app

    pending_rows(3)
    db = connections.settings["default"]
    saved = (db["HOST"], db["PORT"])
    proxy = proxy_to(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))
    retries = []
    lock = threading.Lock()

    def record(sender=None, **kwargs):
        with lock:
            retries.append(getattr(sender, "name", sender))

    task_retry.connect(record, weak=False)
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("ingest")
    try:
        connection.close()
        db["HOST"], db["PORT"] = "127.0.0.1", str(proxy.port)
        with start_worker(
            app, queues=["ingest"], perform_ping_check=False, pool="solo", loglevel="WARNING"
        ):
            proxy.drop()
            app.send_task("usage.drain_inbox", queue="ingest")
            deadline = time.monotonic() + 30
            while not retries and time.monotonic() < deadline:
                time.sleep(0.1)
            assert retries, "the drain was not retried after the database error"
            proxy.forward()
            wait_for(drained, what="drained once the database was back")
    finally:
        task_retry.disconnect(record)
        connection.close()
        db["HOST"], db["PORT"] = saved
    assert "usage.drain_inbox" in retries
    assert InboxEvent.objects.filter(status="processed").count() == 3
