"""Delivery to Segment: retries, rejected write keys, permanent errors, limits, gzip, pacing."""

from __future__ import annotations

import time

import pytest

from integrations.services import integration_update
from planhat_segment.models import Company, EndUser
from tests.factories import CompanyFactory, EndUserFactory
from warehouse_sync.models import FailedObject, SyncBatch, SyncStatus

from .conftest import push

pytestmark = pytest.mark.django_db


@pytest.fixture
def five_companies():
    return [CompanyFactory() for _ in range(5)]


def test_push_honours_429_retry_after_and_succeeds(warehouse, sink, five_companies):
    sink.script("429", retry_after=1)
    started = time.monotonic()
    run = push()
    elapsed = time.monotonic() - started
    assert run.status == SyncStatus.SUCCEEDED
    assert elapsed >= 1.0  # waited as told by Retry-After, not the 0.01 s backoff
    assert [r.status for r in sink.requests] == [429, 200]
    batch = SyncBatch.objects.get(run=run)
    assert batch.attempts == 2
    assert batch.attempt_log == ["HTTP 429"]
    assert len(sink.messages) == 5


def test_push_retries_5xx_and_succeeds(warehouse, sink, five_companies):
    sink.script("500", times=2)
    run = push()
    assert run.status == SyncStatus.SUCCEEDED
    assert [r.status for r in sink.requests] == [500, 500, 200]
    assert SyncBatch.objects.get(run=run).attempts == 3
    assert run.objects_synced == len(sink.messages) == 5


def test_push_retries_dropped_connection_and_succeeds(warehouse, sink, five_companies):
    sink.script("drop")
    run = push()
    assert run.status == SyncStatus.SUCCEEDED
    assert [r.status for r in sink.requests] == [0, 200]
    assert len(sink.messages) == 5


def test_push_slow_answer_within_timeout_succeeds(warehouse, sink, five_companies):
    sink.script("slow", delay=0.3)
    run = push()
    assert run.status == SyncStatus.SUCCEEDED
    assert len(sink.messages) == 5


def test_push_stops_with_write_key_rejected_on_401(warehouse, sink, five_companies):
    sink.script("401")
    run = push()
    assert run.status == SyncStatus.FAILED
    assert "write key rejected" in run.error
    assert sink.messages == []
    assert len(sink.requests) == 1  # 401 is not retried


def test_push_with_wrong_write_key_fails_and_does_not_move_the_mark(
    warehouse, sink, five_companies
):
    integration_update(integration=warehouse, write_key="not-the-key")
    run = push()
    assert run.status == SyncStatus.FAILED
    assert run.error.startswith("write key rejected (HTTP 401")
    integration_update(integration=warehouse, write_key=sink.write_key)
    run = push()
    # The failed run moved no mark: the next incremental run sends everything.
    assert run.status == SyncStatus.SUCCEEDED
    assert len(sink.messages) == 5


def test_push_permanent_400_counts_errors_on_the_model_and_retries_next_run(
    warehouse, sink, settings
):
    settings.WAREHOUSE_PUSH_MAX_BATCH_MESSAGES = 3
    companies = [CompanyFactory() for _ in range(2)]
    users = [EndUserFactory(company=companies[0]) for _ in range(4)]
    # Batches: [c, c, u], [u, u, u]; the second answers 400 (permanent: not retried).
    sink.script("200")  # an unscripted action: normal handling
    sink.script("400", body="bad request")
    run = push()
    assert run.status == SyncStatus.PARTIAL
    assert [r.status for r in sink.requests] == [200, 400]
    results = {r.model: r for r in run.results.all()}
    assert (results["company"].objects_synced, results["company"].errors) == (2, 0)
    assert (results["enduser"].objects_synced, results["enduser"].errors) == (1, 3)
    assert "HTTP 400" in results["enduser"].error_messages[0]
    assert "bad request" in results["enduser"].error_messages[0]
    failed = set(FailedObject.objects.values_list("model", "object_pk"))
    assert failed == {("enduser", u.pk) for u in users[1:]}
    # Next incremental run: only the three failed endusers, then the failure table is empty.
    sink.reset()
    run = push()
    assert run.status == SyncStatus.SUCCEEDED
    assert sorted(m["anonymousId"] for m in sink.messages) == sorted(
        f"planhat:enduser:{u.pk}" for u in users[1:]
    )
    assert FailedObject.objects.count() == 0


def test_push_oversized_object_is_an_error_on_its_model_not_a_dropped_batch(warehouse, sink):
    company = CompanyFactory()
    big = EndUserFactory(company=company, custom={"blob": "x" * 40_000})
    small = EndUserFactory(company=company)
    run = push()
    assert run.status == SyncStatus.PARTIAL
    results = {r.model: r for r in run.results.all()}
    assert (results["enduser"].objects_synced, results["enduser"].errors) == (1, 1)
    assert "over Segment's 32 KB limit" in results["enduser"].error_messages[0]
    assert results["company"].errors == 0
    received = set(sink.by_anonymous_id())
    assert f"planhat:enduser:{small.pk}" in received
    assert f"planhat:enduser:{big.pk}" not in received
    assert all(r.status == 200 for r in sink.requests)
    # Retried next run although unchanged: still too big, still counted.
    sink.reset()
    run = push()
    assert run.results.get(model="enduser").errors == 1
    assert sink.messages == []
    # Shrunk without touching updated_at: only the failure table brings it back.
    EndUser.objects.filter(pk=big.pk).update(custom={"blob": "small"})
    run = push()
    assert run.status == SyncStatus.SUCCEEDED
    assert [m["anonymousId"] for m in sink.messages] == [f"planhat:enduser:{big.pk}"]
    assert FailedObject.objects.count() == 0


def test_push_transient_failures_after_retries_stop_run_as_unreachable(
    warehouse, sink, settings, five_companies
):
    settings.WAREHOUSE_PUSH_MAX_ATTEMPTS = 2
    settings.WAREHOUSE_PUSH_MAX_FAILED_BATCHES = 1
    sink.script("503", times=2)
    run = push()
    assert run.status == SyncStatus.FAILED
    assert "Segment unreachable" in run.error
    assert run.results.get(model="company").errors == 5
    assert FailedObject.objects.filter(model="company").count() == 5
    assert len(sink.requests) == 2


def test_push_batches_stay_within_segment_limits_with_margin(warehouse, sink):
    Company.objects.bulk_create([Company(name=f"C{i}", external_id=f"X-{i}") for i in range(2_600)])
    run = push()
    assert run.status == SyncStatus.SUCCEEDED
    # ~350-byte groups: the 450 KB cap (under Segment's 500 KB) binds before 2,000 messages.
    assert all(r.status == 200 for r in sink.requests)
    assert all(r.messages <= 2_000 for r in sink.requests)
    assert all(r.body_bytes <= 450_000 for r in sink.requests)
    assert max(r.body_bytes for r in sink.requests) > 400_000
    assert sum(r.messages for r in sink.requests) == 2_600
    assert len({m["anonymousId"] for m in sink.messages}) == 2_600


def test_push_batches_split_by_bytes(warehouse, sink, settings):
    settings.WAREHOUSE_PUSH_MAX_BATCH_BYTES = 4_000
    Company.objects.bulk_create(
        [Company(name=f"C{i}", external_id=f"X-{i}", custom={"pad": "p" * 300}) for i in range(40)]
    )
    run = push()
    assert run.status == SyncStatus.SUCCEEDED
    assert len(sink.requests) > 3
    assert max(r.body_bytes for r in sink.requests) <= 4_000
    assert sum(r.messages for r in sink.requests) == 40


@pytest.mark.parametrize("use_gzip", [True, False])
def test_push_gzip_setting(warehouse, sink, settings, five_companies, use_gzip):
    settings.WAREHOUSE_PUSH_GZIP = use_gzip
    push()
    assert [r.gzipped for r in sink.requests] == [use_gzip]
    assert len(sink.messages) == 5


def test_push_pacing_limits_events_per_second(warehouse, sink, settings):
    settings.WAREHOUSE_PUSH_MAX_EVENTS_PER_SECOND = 100
    settings.WAREHOUSE_PUSH_MAX_BATCH_MESSAGES = 50
    Company.objects.bulk_create([Company(name=f"C{i}") for i in range(150)])
    started = time.monotonic()
    push()
    # Three batches of 50 at 100/s: the third may leave one second after the first.
    assert time.monotonic() - started >= 0.95
    assert len(sink.messages) == 150


def test_push_with_two_batches_in_flight_accounts_for_every_object(warehouse, sink, settings):
    settings.WAREHOUSE_PUSH_CONCURRENCY = 2
    settings.WAREHOUSE_PUSH_MAX_BATCH_MESSAGES = 100
    Company.objects.bulk_create([Company(name=f"C{i}") for i in range(1_050)])
    sink.script("500")  # whichever batch gets it is retried
    run = push()
    assert run.status == SyncStatus.SUCCEEDED
    assert run.objects_synced == 1_050
    assert len({m["anonymousId"] for m in sink.messages}) == 1_050
    assert SyncBatch.objects.filter(run=run).count() == 11
    assert sorted(SyncBatch.objects.filter(run=run).values_list("sequence", flat=True)) == list(
        range(1, 12)
    )
    assert SyncBatch.objects.filter(run=run, attempts=2).count() == 1
