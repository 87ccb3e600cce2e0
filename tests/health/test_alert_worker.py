"""Queues and a real worker: deliveries are published on ``notifications`` (never the ingest
queue), and on Redis + PostgreSQL a worker runs the daily chain — recompute, evaluation,
delivery — to a signed webhook call on a local receiver."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import connections

from health.alerts import alert_rule_create, webhook_create
from health.models import Alert, Delivery
from health.models_alerts import DeliveryStatus
from health.notifications import alerts_evaluate_queue, notifications_nudge
from health.tasks import recompute_scores
from planhat_segment.celery import app
from tests.factories import EndUserFactory
from tests.usage.rollup_factories import usage_add
from usage.rollup_selectors import utc_today

from .alert_helpers import company
from .receiver import Receiver

SECRET = "worker-test-secret-0123456789"


def _drain(queue: str) -> list[str]:
    """The task names waiting on ``queue`` (consumed)."""
    names = []
    with app.connection_for_read() as conn:
        simple = conn.SimpleQueue(queue)
        try:
            while True:
                try:
                    message = simple.get(timeout=0.5)
                except simple.Empty:
                    break
                names.append(message.headers.get("task"))
                message.ack()
        finally:
            simple.close()
    return names


@pytest.mark.django_db
def test_deliveries_are_published_on_their_own_queue(django_capture_on_commit_callbacks):
    for queue in ("notifications", "default", "ingest"):
        _drain(queue)
    with django_capture_on_commit_callbacks(execute=True):
        notifications_nudge()
        alerts_evaluate_queue(day=dt.date(2026, 3, 15))
    assert _drain("notifications") == ["health.deliver_notifications"]
    assert _drain("default") == ["health.evaluate_alerts"]
    assert _drain("ingest") == []


def _falling_relative_to_today(c) -> None:
    person = EndUserFactory(company=c)
    today = utc_today()
    for n in range(1, 40):
        usage_add(enduser=person, day=today - dt.timedelta(days=n), count=2 if n <= 7 else 10)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_daily_chain_on_a_real_worker_ends_in_a_signed_webhook_call(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.WEBHOOK_TIMEOUT_SECONDS = 2
    connections.settings["default"]["CONN_MAX_AGE"] = 0  # worker threads close their connections
    receiver = Receiver(secret=SECRET).start()
    try:
        hook = webhook_create(data={"name": "Hook", "url": receiver.url + "/ok", "secret": SECRET})
        rule = alert_rule_create(
            data={
                "name": "Usage drop",
                "kind": "usage_drop",
                "drop_percent": 50,
                "window_days": 7,
                "baseline_periods": 4,
            },
            webhooks=[hook],
        )
        _falling_relative_to_today(company(name="Acme"))
        for queue in ("default", "notifications"):
            _drain(queue)
        with start_worker(
            app,
            queues=["default", "notifications"],
            perform_ping_check=False,
            pool="solo",
            loglevel="WARNING",
            shutdown_timeout=20,
        ):
            recompute_scores.apply_async(queue="default")  # the daily pass, as beat sends it
            deadline = time.monotonic() + 60
            delivery = None
            while time.monotonic() < deadline:
                delivery = Delivery.objects.filter(alert__rule=rule).first()
                if delivery is not None and delivery.status != DeliveryStatus.PENDING:
                    break
                time.sleep(0.25)
        assert Alert.objects.filter(rule=rule).count() == 1
        assert delivery is not None
        assert delivery.status == DeliveryStatus.DELIVERED, delivery.last_error
        [call] = receiver.calls_to("/ok")
        assert call.signature_ok
        assert call.json["alert"]["rule"]["name"] == "Usage drop"
    finally:
        receiver.stop()


def test_procfile_runs_the_notifications_queue_apart_from_the_ingest_workers():
    from pathlib import Path

    from django.conf import settings

    lines = (Path(settings.BASE_DIR) / "Procfile").read_text().splitlines()
    consumed: dict[str, set[str]] = {}
    for line in lines:
        name, _, command = line.partition(":")
        if " worker " in command and " -Q " in command:
            queues = command.split(" -Q ", 1)[1].split()[0]
            consumed[name.strip()] = set(queues.split(","))
    every = set().union(*consumed.values())
    assert {q.name for q in settings.CELERY_QUEUES} <= every
    assert [name for name, queues in consumed.items() if "notifications" in queues] == ["notify"]
    assert "ingest" not in consumed["notify"]


def test_schedule_entries_name_registered_tasks_on_their_queues():
    from health.tasks_alerts import alert_schedules

    for entry in alert_schedules():
        task = app.tasks[entry["task"]]
        assert task.queue == entry["queue"]
        assert entry["every_seconds"] > 0
        assert set(entry) == {"name", "task", "queue", "every_seconds", "description"}
