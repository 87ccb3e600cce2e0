"""Fixtures of the push's tests: a live Segment-compatible sink and an integration aimed at it."""

from __future__ import annotations

import pytest

from .sink import Sink


@pytest.fixture
def sink():
    server = Sink().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fast_push(settings):
    # No pacing and short backoff in tests; the margin is tested on its own.
    settings.WAREHOUSE_PUSH_MAX_EVENTS_PER_SECOND = 0
    settings.WAREHOUSE_PUSH_BACKOFF_SECONDS = 0.01
    settings.WAREHOUSE_PUSH_BACKOFF_MAX_SECONDS = 2
    settings.WAREHOUSE_PUSH_TIMEOUT_SECONDS = 5
    settings.WAREHOUSE_PUSH_SAFETY_MARGIN_SECONDS = 0
    # One batch at a time, so scripted sink answers hit a known batch; concurrency has its
    # own test.
    settings.WAREHOUSE_PUSH_CONCURRENCY = 1


def integration_aim_at(sink):
    """Section 3 on, the write key the sink expects, the sink as the custom base URL.

    Through ``integration_ensure``: transactional tests flush migration-seeded rows.
    """
    from integrations.services import integration_ensure, integration_update

    return integration_update(
        integration=integration_ensure(),
        warehouse_enabled=True,
        write_key=sink.write_key,
        region="custom",
        custom_base_url=sink.url,
    )


@pytest.fixture
def warehouse(db, sink):
    return integration_aim_at(sink)


def push(*, full: bool = False, models: list[str] | None = None, trigger: str = "command"):
    """Start a run and execute it in this process (what `push_to_segment --wait` does)."""
    from warehouse_sync.services import sync_run_execute, sync_run_start

    run = sync_run_start(trigger=trigger, full=full, models=models, enqueue=False)
    return sync_run_execute(run_id=run.pk)
