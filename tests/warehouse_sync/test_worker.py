"""A real Celery worker on Redis + PostgreSQL processes a run started by sync_run_start."""

from __future__ import annotations

import time

import pytest
from celery.contrib.testing.worker import start_worker

from planhat_segment.celery import app as celery_app
from tests.factories import CompanyFactory, EndUserFactory, LicenseFactory
from warehouse_sync.models import SyncRun, SyncStatus
from warehouse_sync.services import sync_run_start

from .conftest import integration_aim_at


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_worker_processes_a_run_started_by_the_button(sink):
    integration_aim_at(sink)
    company = CompanyFactory()
    EndUserFactory(company=company)
    LicenseFactory(company=company)
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge("warehouse")
    with start_worker(
        celery_app, queues=["warehouse"], perform_ping_check=False, pool="solo", shutdown_timeout=10
    ):
        run = sync_run_start(trigger="manual")  # on_commit: no transaction here, runs now
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            run.refresh_from_db()
            if run.status != SyncStatus.RUNNING:
                break
            time.sleep(0.2)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert run.objects_synced == 3
    assert len(sink.messages) == 3
    assert SyncRun.objects.count() == 1
