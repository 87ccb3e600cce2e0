"""The coalesced drain trigger: leading and trailing edge, and a broker that is down."""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time

import pytest
from celery import Celery
from celery.signals import after_task_publish
from kombu.exceptions import OperationalError

from tests.conftest import uses_redis
from tests.usage.conftest import basic
from usage.ingest import nudge as nudge_module
from usage.ingest.nudge import DRAIN_QUEUE, DRAIN_TASK, Nudger
from usage.models import InboxEvent, InboxStatus

CLOSED_PORT_BROKER = "redis://127.0.0.1:1/0"


def use_broker(app: Celery, url: str) -> Celery:
    # Celery prefers the CELERY_BROKER_URL environment variable over conf.broker_url; the
    # write and read URLs take precedence over both.
    app.conf.broker_url = app.conf.broker_write_url = app.conf.broker_read_url = url
    return app


@pytest.fixture
def publishes():
    """Monotonic times of successful usage.drain_inbox publishes (Celery's own signal)."""
    times: list[float] = []
    lock = threading.Lock()

    def record(sender=None, **kwargs):
        if sender == DRAIN_TASK:
            with lock:
                times.append(time.monotonic())

    after_task_publish.connect(record, weak=False)
    yield times
    after_task_publish.disconnect(record)


@pytest.fixture
def broker_app():
    """A real Celery app on an in-memory broker (or this run's Redis), for counting publishes."""
    if uses_redis():
        from planhat_segment.celery import app

        return app
    return use_broker(Celery("ingest-nudge-test", set_as_current=False), "memory://")


@pytest.fixture
def down_app():
    """A Celery app whose Redis broker is a closed port, with the project's fail-fast options."""
    app = Celery("ingest-broker-down", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    use_broker(app, CLOSED_PORT_BROKER)
    if not uses_redis():
        # settings.py sets these for redis:// brokers only; mirror them under the local broker.
        app.conf.broker_transport_options = {
            "max_retries": 0,
            "socket_timeout": 2,
            "socket_connect_timeout": 1,
        }
    return app


def wait_for(predicate, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_burst_of_nudges_publishes_leading_and_trailing_edge_only(broker_app, publishes):
    nudger = Nudger(interval=0.1, app=broker_app)
    nudger.nudge()
    assert wait_for(lambda: len(publishes) == 1, timeout=2)  # leading edge: at once
    for _ in range(200):  # a burst inside the window that the first publish opened
        nudger.nudge()
    last_nudge = time.monotonic()
    assert last_nudge - publishes[0] < 0.1, "the burst itself took a whole window here"
    assert wait_for(lambda: len(publishes) >= 2, timeout=2)
    time.sleep(0.3)
    assert len(publishes) == 2
    # One trailing publish, a window after the first and after the last nudge: no nudge is
    # left without a drain, and 200 nudges cost one publish.
    assert publishes[1] >= last_nudge
    assert publishes[1] - publishes[0] >= 0.09


def test_nudges_before_the_thread_runs_share_one_publish(broker_app, publishes):
    nudger = Nudger(interval=0.1, app=broker_app)
    for _ in range(200):
        nudger.nudge()
    time.sleep(0.4)
    assert 1 <= len(publishes) <= 2


def test_steady_nudges_publish_about_once_per_window(broker_app, publishes):
    nudger = Nudger(interval=0.1, app=broker_app)
    started = time.monotonic()
    while time.monotonic() - started < 0.6:
        nudger.nudge()
        time.sleep(0.005)
    time.sleep(0.25)
    elapsed = time.monotonic() - started
    assert 3 <= len(publishes) <= elapsed / 0.1 + 1
    gaps = [b - a for a, b in itertools.pairwise(publishes)]
    assert min(gaps) >= 0.09


def test_publish_with_project_settings_lands_in_the_ingest_queue_only():
    # The project's own Celery configuration (queues, routes), on an in-memory broker.
    app = Celery("ingest-queue-test", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    use_broker(app, "memory://")
    app.conf.broker_transport_options = {}
    with app.connection_for_read() as conn:
        # kombu's memory transport is one store per process: clear what other tests left.
        for name in ("default", "warehouse", DRAIN_QUEUE):
            conn.SimpleQueue(name).clear()
    nudger = Nudger(interval=0.1, app=app)
    assert nudger.publish(), nudger.last_error
    with app.connection_for_read() as conn:
        for other in ("default", "warehouse"):
            assert conn.SimpleQueue(other).qsize() == 0
        queue = conn.SimpleQueue(DRAIN_QUEUE)
        message = queue.get(timeout=1)
        assert message.headers["task"] == DRAIN_TASK
        assert json.loads(message.body)[0] == []  # no arguments
        message.ack()
        queue.close()


def test_publish_to_unreachable_broker_fails_fast_and_is_logged(down_app, caplog):
    nudger = Nudger(interval=0.1, app=down_app)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="usage.ingest.nudge"):
        assert nudger.publish() is False
    assert time.monotonic() - started < 2.5
    assert nudger.failed == 1
    # A refused connection, not a configuration error that would fail just as fast.
    assert isinstance(nudger.last_error, OperationalError | ConnectionError), nudger.last_error
    assert any(r.message == "ingest_nudge_failed" for r in caplog.records)


@pytest.mark.redis
def test_project_broker_settings_fail_fast_when_redis_is_unreachable():
    """settings.py's broker options themselves (not a copy) keep a failed publish short."""
    from django.conf import settings

    assert settings.CELERY_BROKER_CONNECTION_TIMEOUT <= 1
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    assert options["max_retries"] == 0 and options["socket_connect_timeout"] <= 2
    app = Celery("ingest-settings-check", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    use_broker(app, CLOSED_PORT_BROKER)
    nudger = Nudger(interval=0.1, app=app)
    started = time.monotonic()
    assert nudger.publish() is False
    assert time.monotonic() - started < 2.5
    assert isinstance(nudger.last_error, OperationalError | ConnectionError), nudger.last_error


@pytest.mark.django_db
def test_stored_rows_register_a_robust_on_commit_nudge(
    client, integration, django_capture_on_commit_callbacks
):
    auth = {"HTTP_AUTHORIZATION": basic(integration.tenant_token)}
    body = json.dumps({"type": "track", "userId": "u", "event": "E", "messageId": "n-1"})
    with django_capture_on_commit_callbacks() as callbacks:
        client.generic("POST", "/dock/segment", body, "application/json", **auth)
    assert callbacks == [nudge_module.nudge]
    # Nothing new stored (a duplicate): nothing to drain, no nudge.
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.generic("POST", "/dock/segment", body, "application/json", **auth)
    assert response.json()["duplicates"] == 1
    assert callbacks == []


class StoppedClock:
    """The nudger's clock, moved only by the test: windows end when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.django_db(transaction=True)
def test_requests_in_a_window_are_coalesced_into_one_trailing_publish(
    client, integration, broker_app, publishes, monkeypatch
):
    clock = StoppedClock()
    nudger = Nudger(interval=0.1, app=broker_app, clock=clock)
    monkeypatch.setattr(nudge_module, "_nudger", nudger)
    auth = {"HTTP_AUTHORIZATION": basic(integration.tenant_token)}

    def post(i: int) -> None:
        body = json.dumps({"type": "track", "userId": "u", "event": "E", "messageId": f"c-{i}"})
        response = client.generic("POST", "/dock/segment", body, "application/json", **auth)
        assert response.status_code == 200

    post(0)
    assert wait_for(lambda: len(publishes) == 1)  # leading edge: at once
    for i in range(1, 20):
        post(i)
    # The clock has not moved: every request fell in the window the first publish opened, so
    # none of them published (nothing can, until the window ends), however slow the machine.
    assert len(publishes) == 1
    clock.now += 0.1  # the window ends: one trailing publish for the 19 requests
    assert wait_for(lambda: len(publishes) == 2)
    assert nudger.published == 2
    assert InboxEvent.objects.count() == 20


@pytest.mark.django_db(transaction=True)
def test_request_answers_fast_and_stores_when_broker_is_down(
    client, integration, down_app, monkeypatch, caplog
):
    nudger = Nudger(interval=0.1, app=down_app)
    monkeypatch.setattr(nudge_module, "_nudger", nudger)
    auth = {"HTTP_AUTHORIZATION": basic(integration.tenant_token)}
    body = json.dumps(
        [
            {"type": "track", "userId": "u", "event": "E", "messageId": "down-1"},
            {"type": "identify", "userId": "u", "messageId": "down-2"},
        ]
    )
    with caplog.at_level(logging.WARNING, logger="usage.ingest.nudge"):
        started = time.monotonic()
        response = client.generic("POST", "/dock/segment", body, "application/json", **auth)
        took = time.monotonic() - started
        assert response.status_code == 200
        assert took < 3
        assert response.json()["accepted"] == 2
        assert set(InboxEvent.objects.values_list("status", flat=True)) == {InboxStatus.PENDING}
        # The publish did run, and failed quietly on the nudger's thread.
        assert wait_for(lambda: nudger.failed >= 1, timeout=5)
    assert nudger.published == 0
    assert isinstance(nudger.last_error, OperationalError | ConnectionError), nudger.last_error
